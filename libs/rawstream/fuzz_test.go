package rawstream

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FuzzFrames reads whatever a peer may send as frames, a hello and an end status: no
// input panics, no payload exceeds its limit, a payload is what the header said, and a
// well-formed end status round-trips.
func FuzzFrames(f *testing.F) {
	f.Add(appendFrame([]byte(Magic), frameHello, 5), 8)
	f.Add(append(appendFrame(nil, frameMsg, 3), 1, 2, 3), 16)
	f.Add(append(appendFrame(nil, frameEnd, 2), 14, 0), 16)
	f.Add(appendFrame(nil, frameMsg, 1<<31), 1<<20)
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 64)
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		limit = max(0, limit%(1<<16))
		fr := frameReader{r: bufio.NewReaderSize(bytes.NewReader(data), 16)}
		for {
			typ, p, err := fr.next(limit)
			if err != nil {
				break
			}
			if len(p) > limit {
				t.Fatalf("payload of %d bytes over the limit %d", len(p), limit)
			}
			if typ == frameEnd {
				_ = endError(p)
			}
		}
		_, _ = readHello(bufio.NewReader(bytes.NewReader(data)))
		_ = endError(data)
		st := status.New(codes.Code(uint32(len(data))%17), string(data))
		if err := endError(endPayload(st.Err())); status.Code(err) != st.Code() || (err != nil && status.Convert(err).Message() != st.Message()) {
			t.Fatalf("end status %v read back as %v", st.Err(), err)
		}
	})
}

// TestEndPayloadKeepsASECode: an end status carries the ASE code of the handler's error.
func TestEndPayloadKeepsASECode(t *testing.T) {
	err := endError(endPayload(aserr.ErrLicenceFull))
	if status.Code(err) != codes.ResourceExhausted || aserr.CodeOf(grpcx.FromStatus(err)) != aserr.ErrLicenceFull.Code {
		t.Fatalf("got %v", err)
	}
	if err := endError(endPayload(nil)); err != nil {
		t.Fatalf("OK read back as %v", err)
	}
}

// TestDialable: host:port entries and dns:/// targets can be dialled raw; other resolver
// schemes and malformed entries cannot.
func TestDialable(t *testing.T) {
	for target, want := range map[string]bool{
		"atom:9988": true, "10.0.0.1:9988,10.0.0.2:9988": true, "dns:///atom-headless:9988": true, "[::1]:9988": true,
		"": false, "atom": false, "polaris:///atom": false, "unix:///tmp/atom.sock": false, "xds:///atom": false,
	} {
		if got := Dialable(target); got != want {
			t.Errorf("Dialable(%q) = %v, want %v", target, got, want)
		}
	}
}
