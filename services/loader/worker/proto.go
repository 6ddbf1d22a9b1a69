package worker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/loader/engine"
)

// MsgType is the type byte of a worker protocol frame.
type MsgType uint8

// Message types. Parent → child: Init, Fini, Once, Open, Write, Close (the frame id is the
// call id; for Open it is also the new session's id). Child → parent: OK and Err answer a
// call by its id; Result carries one session output, its id is the session id.
const (
	MsgInit  MsgType = 1 // body: map (engine config)
	MsgFini  MsgType = 2 // body: empty
	MsgOnce  MsgType = 3 // body: Request
	MsgOpen  MsgType = 4 // body: SessionParams
	MsgWrite MsgType = 5 // body: uint64 session id, Frame
	MsgClose MsgType = 6 // body: uint64 session id
	// MsgLoadRes loads a personalisation resource (wrapperLoadRes): body uint32 resource
	// id, then the payload list encoded as a Request's inputs.
	MsgLoadRes MsgType = 7
	// MsgUnloadRes unloads one (wrapperUnloadRes): body uint32 resource id.
	MsgUnloadRes MsgType = 8

	MsgOK     MsgType = 16 // body: empty, or Response for Once
	MsgErr    MsgType = 17 // body: error (int32 code, string message)
	MsgResult MsgType = 18 // body: Result
	// MsgTrace reports a span, event or attributes of a traced call while it runs; its id
	// is the call's (trace.go).
	MsgTrace MsgType = 19
)

// String names the message type.
func (t MsgType) String() string {
	switch t {
	case MsgInit:
		return "init"
	case MsgFini:
		return "fini"
	case MsgOnce:
		return "once"
	case MsgOpen:
		return "open"
	case MsgWrite:
		return "write"
	case MsgClose:
		return "close"
	case MsgLoadRes:
		return "loadres"
	case MsgUnloadRes:
		return "unloadres"
	case MsgOK:
		return "ok"
	case MsgErr:
		return "err"
	case MsgResult:
		return "result"
	case MsgTrace:
		return "trace"
	}
	return fmt.Sprintf("msg(%d)", uint8(t))
}

// headerSize is the size of a frame header: uint32 length (of type, id and body), uint8
// type, uint64 id. All integers are big-endian.
const headerSize = 4 + 1 + 8

// maxFrame bounds the length field of a frame (type + id + body).
const maxFrame = 256 << 20

// errMalformed is wrapped by every decoding error.
var errMalformed = errors.New("worker protocol: malformed message")

// Message is one decoded frame.
type Message struct {
	Type MsgType
	ID   uint64
	Body []byte
}

// appendFrame appends a frame with the given type, id and body to dst.
func appendFrame(dst []byte, t MsgType, id uint64, body []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(1+8+len(body)))
	dst = append(dst, byte(t))
	dst = binary.BigEndian.AppendUint64(dst, id)
	return append(dst, body...)
}

// readFrame reads one frame from r. It returns io.EOF on a clean end before a header.
func readFrame(r io.Reader) (Message, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return Message{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 9 || n > maxFrame {
		return Message{}, fmt.Errorf("frame length %d: %w", n, errMalformed)
	}
	if _, err := io.ReadFull(r, hdr[4:]); err != nil {
		return Message{}, unexpected(err)
	}
	m := Message{Type: MsgType(hdr[4]), ID: binary.BigEndian.Uint64(hdr[5:])}
	if n > 9 {
		m.Body = make([]byte, n-9)
		if _, err := io.ReadFull(r, m.Body); err != nil {
			return Message{}, unexpected(err)
		}
	}
	return m, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Encoder appends protocol values to a byte slice: strings and bytes as uint32 length +
// bytes, maps as uint32 count + sorted key/value pairs, lists as uint32 count + items.
type Encoder struct{ B []byte }

func (e *Encoder) u8(v uint8)   { e.B = append(e.B, v) }
func (e *Encoder) u32(v uint32) { e.B = binary.BigEndian.AppendUint32(e.B, v) }
func (e *Encoder) u64(v uint64) { e.B = binary.BigEndian.AppendUint64(e.B, v) }
func (e *Encoder) str(s string) { e.u32(uint32(len(s))); e.B = append(e.B, s...) }
func (e *Encoder) bytes(b []byte) {
	e.u32(uint32(len(b)))
	e.B = append(e.B, b...)
}

func (e *Encoder) strmap(m map[string]string) {
	e.u32(uint32(len(m)))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

func (e *Encoder) meta(m engine.Meta) {
	e.str(m.Name)
	e.u8(uint8(m.Type))
	e.strmap(m.Attrs)
}

func (e *Encoder) metas(ms []engine.Meta) {
	e.u32(uint32(len(ms)))
	for _, m := range ms {
		e.meta(m)
	}
}

func (e *Encoder) payloads(ps []engine.Payload) {
	e.u32(uint32(len(ps)))
	for _, p := range ps {
		e.meta(p.Meta)
		e.bytes(p.Data)
	}
}

func (e *Encoder) u32s(v []uint32) {
	e.u32(uint32(len(v)))
	for _, x := range v {
		e.u32(x)
	}
}

// Map encodes an Init configuration.
func (e *Encoder) Map(m map[string]string) { e.strmap(m) }

// Request encodes a once request: tag, headers, params, expect, inputs, psr ids.
func (e *Encoder) Request(r engine.Request) {
	e.str(r.Tag)
	e.strmap(r.Headers)
	e.strmap(r.Params)
	e.metas(r.Expect)
	e.payloads(r.Inputs)
	e.u32s(r.PsrIDs)
}

// Response encodes a once response: its outputs.
func (e *Encoder) Response(r engine.Response) { e.payloads(r.Outputs) }

// SessionParams encodes session parameters: tag, headers, params, expect, psr ids.
func (e *Encoder) SessionParams(p engine.SessionParams) {
	e.str(p.Tag)
	e.strmap(p.Headers)
	e.strmap(p.Params)
	e.metas(p.Expect)
	e.u32s(p.PsrIDs)
}

// Write encodes a session write: session id, sync id, status, inputs.
func (e *Encoder) Write(sid uint64, f engine.Frame) {
	e.u64(sid)
	e.u32(uint32(f.SyncID))
	e.u8(uint8(f.Status))
	e.payloads(f.Inputs)
}

// SessionID encodes a bare session id (Close).
func (e *Encoder) SessionID(sid uint64) { e.u64(sid) }

// LoadRes encodes a resource load: resource id, payloads.
func (e *Encoder) LoadRes(id uint32, data []engine.Payload) {
	e.u32(id)
	e.payloads(data)
}

// ResID encodes a bare resource id (UnloadRes).
func (e *Encoder) ResID(id uint32) { e.u32(id) }

// Result encodes a session result: status, outputs, error code (0 = none) and message,
// engine nanoseconds.
func (e *Encoder) Result(r engine.Result) {
	e.u8(uint8(r.Status))
	e.payloads(r.Outputs)
	code, msg := errorParts(r.Err)
	e.u32(uint32(int32(code)))
	e.str(msg)
	e.u64(uint64(r.Engine))
}

// Error encodes an error as its aserr code and message.
func (e *Encoder) Error(err error) {
	code, msg := errorParts(err)
	e.u32(uint32(int32(code)))
	e.str(msg)
}

func errorParts(err error) (int, string) {
	if err == nil {
		return 0, ""
	}
	return aserr.CodeOf(err), aserr.MessageOf(err)
}

// Decoder reads protocol values from a byte slice. The first error sticks: later reads
// return zero values and Err reports it.
type Decoder struct {
	b   []byte
	err error
}

// newDecoder returns a decoder over b.
func newDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Err is the first decoding error, wrapping errMalformed.
func (d *Decoder) Err() error { return d.err }

// Done reports errMalformed when bytes are left over, else the first error.
func (d *Decoder) Done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes: %w", len(d.b), errMalformed)
	}
	return d.err
}

func (d *Decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: short or invalid: %w", what, errMalformed)
	}
	d.b = nil
}

func (d *Decoder) u8() uint8 {
	if len(d.b) < 1 {
		d.fail("u8")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *Decoder) u32() uint32 {
	if len(d.b) < 4 {
		d.fail("u32")
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *Decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail("u64")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *Decoder) raw() []byte {
	n := d.u32()
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(d.b)) {
		d.fail("bytes")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *Decoder) str() string { return string(d.raw()) }

// bytes returns the next byte string as a slice of the decoder's input, not a copy: a
// decoded payload keeps its frame's body alive, and that body must not be reused (readFrame
// allocates every body afresh).
func (d *Decoder) bytes() []byte {
	v := d.raw()
	if len(v) == 0 {
		return nil
	}
	return v
}

// count reads a list length; each item takes at least min bytes, which bounds the
// allocation a hostile length can cause.
func (d *Decoder) count(min int) int {
	n := d.u32()
	if d.err != nil {
		return 0
	}
	if uint64(n)*uint64(min) > uint64(len(d.b)) {
		d.fail("count")
		return 0
	}
	return int(n)
}

func (d *Decoder) strmap() map[string]string {
	n := d.count(8)
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := d.str()
		m[k] = d.str()
	}
	if d.err != nil {
		return nil
	}
	return m
}

func (d *Decoder) dataType() engine.DataType {
	t := d.u8()
	if t > uint8(engine.DataOther) {
		d.fail("data type")
	}
	return engine.DataType(t)
}

func (d *Decoder) status() engine.Status {
	s := d.u8()
	if s > uint8(engine.StatusOnce) {
		d.fail("status")
	}
	return engine.Status(s)
}

func (d *Decoder) meta() engine.Meta {
	return engine.Meta{Name: d.str(), Type: d.dataType(), Attrs: d.strmap()}
}

func (d *Decoder) metas() []engine.Meta {
	n := d.count(9)
	if n == 0 {
		return nil
	}
	out := make([]engine.Meta, n)
	for i := range out {
		out[i] = d.meta()
	}
	return out
}

func (d *Decoder) payloads() []engine.Payload {
	n := d.count(13)
	if n == 0 {
		return nil
	}
	out := make([]engine.Payload, n)
	for i := range out {
		out[i].Meta = d.meta()
		out[i].Data = d.bytes()
	}
	return out
}

func (d *Decoder) u32s() []uint32 {
	n := d.count(4)
	if n == 0 {
		return nil
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = d.u32()
	}
	return out
}

// Map decodes an Init configuration.
func (d *Decoder) Map() map[string]string { return d.strmap() }

// Request decodes a once request.
func (d *Decoder) Request() engine.Request {
	return engine.Request{Tag: d.str(), Headers: d.strmap(), Params: d.strmap(), Expect: d.metas(), Inputs: d.payloads(), PsrIDs: d.u32s()}
}

// Response decodes a once response.
func (d *Decoder) Response() engine.Response { return engine.Response{Outputs: d.payloads()} }

// SessionParams decodes session parameters.
func (d *Decoder) SessionParams() engine.SessionParams {
	return engine.SessionParams{Tag: d.str(), Headers: d.strmap(), Params: d.strmap(), Expect: d.metas(), PsrIDs: d.u32s()}
}

// Write decodes a session write.
func (d *Decoder) Write() (uint64, engine.Frame) {
	sid := d.u64()
	f := engine.Frame{SyncID: int32(d.u32()), Status: d.status(), Inputs: d.payloads()}
	return sid, f
}

// SessionID decodes a bare session id.
func (d *Decoder) SessionID() uint64 { return d.u64() }

// LoadRes decodes a resource load.
func (d *Decoder) LoadRes() (uint32, []engine.Payload) {
	id := d.u32()
	return id, d.payloads()
}

// ResID decodes a bare resource id.
func (d *Decoder) ResID() uint32 { return d.u32() }

// Result decodes a session result; a non-zero code becomes an *aserr.Error.
func (d *Decoder) Result() engine.Result {
	r := engine.Result{Status: d.status(), Outputs: d.payloads()}
	r.Err = codeError(int32(d.u32()), d.str())
	ns := d.u64()
	if ns > math.MaxInt64 {
		d.fail("engine time")
	}
	r.Engine = time.Duration(ns)
	return r
}

// Error decodes an error. An Err message always means failure, so code 0 decodes as an
// internal error (11502).
func (d *Decoder) Error() error {
	code, msg := int32(d.u32()), d.str()
	if err := codeError(code, msg); err != nil {
		return err
	}
	return aserr.Newf(aserr.ErrInternal.Code, "engine error without a code: %s", msg)
}

func codeError(code int32, msg string) error {
	if code == 0 {
		return nil
	}
	return aserr.Received(int(code), msg) // the worker rendered the message, reasons included
}
