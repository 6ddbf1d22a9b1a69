package ase

import (
	"hash/fnv"
	"os"
	"sync/atomic"
	"time"
)

// SIDGen generates session ids: 32 characters, unique per gateway process, greppable and
// naming the gateway that issued them, in the layout of ASF's sids:
//
//	ase <pid:4 hex> <counter:4 hex> @ <dc:2> <unix ms:11 hex> <hash of listen addr:6 hex> 2
//
// for example "ase0e4800a1@dx18c2f4a9b3e7d21f52". The counter wraps after 65536 ids, so two
// ids can only repeat if one process issues more than 65536 of them in one millisecond.
// It is safe for concurrent use.
type SIDGen struct {
	prefix  [7]byte // "ase" + pid
	dc      [2]byte
	node    [6]byte
	counter atomic.Uint32
	now     func() time.Time
}

// SIDLen is the length of every generated sid.
const SIDLen = 32

// NewSIDGen returns a generator for data centre dc (first two characters used, padded with
// '0') and the gateway's listen address addr (hashed into the id).
func NewSIDGen(dc, addr string) *SIDGen {
	g := &SIDGen{now: time.Now}
	copy(g.prefix[:], "ase")
	putHex(g.prefix[3:7], uint64(os.Getpid()))
	g.dc = [2]byte{'0', '0'}
	copy(g.dc[:], dc)
	h := fnv.New32a()
	_, _ = h.Write([]byte(addr))
	putHex(g.node[:], uint64(h.Sum32()))
	return g
}

// Next returns a new sid.
func (g *SIDGen) Next() string {
	var b [SIDLen]byte
	copy(b[0:7], g.prefix[:])
	putHex(b[7:11], uint64(g.counter.Add(1)))
	b[11] = '@'
	copy(b[12:14], g.dc[:])
	putHex(b[14:25], uint64(g.now().UnixMilli()))
	copy(b[25:31], g.node[:])
	b[31] = '2'
	return string(b[:])
}

// putHex writes the low 4·len(dst) bits of v as lower-case hex, zero-padded.
func putHex(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}
