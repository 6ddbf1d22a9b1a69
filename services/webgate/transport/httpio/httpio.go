// Package httpio holds what webgate's HTTP, WebSocket and OIP adapters share on the wire:
// bounded reads of request bodies and messages, gateway-level answers and the timing
// header.
package httpio

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/webgate/gate"
)

// bodyChunk is the first allocation for a body: a buffer grows with the bytes that
// arrive, never ahead of them to the announced Content-Length, so a client that announces
// a large body and sends little holds little memory.
const bodyChunk = 32 << 10

// ReadBody reads the whole body, at most max bytes, within the body read timeout (the
// connection's read deadline, set by the handler), then lifts the deadline so the call that
// follows is not cut by it. The buffer grows as bytes arrive, up to Content-Length when
// the client sent it. A body over max is ErrTooLarge (HTTP 413), before anything is read
// when Content-Length says so.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	return ReadBodyTo(w, r, max, nil)
}

// ReadBodyTo is ReadBody appending to buf[:0] (a reused buffer; nil: one sized for the
// body).
func ReadBodyTo(w http.ResponseWriter, r *http.Request, max int64, buf []byte) ([]byte, error) {
	if r.ContentLength > max {
		return nil, gate.TooLarge("request body larger than %d bytes", max)
	}
	rc := http.NewResponseController(w)
	limit := max
	if r.ContentLength >= 0 {
		limit = r.ContentLength
	}
	if buf == nil {
		buf = make([]byte, 0, min(limit+1, bodyChunk))
	}
	buf, err := ReadLimited(r.Body, limit+1, buf[:0])
	if err != nil {
		return nil, aserr.Newf(aserr.ErrBadRequest.Code, "read request body: %v", err)
	}
	if int64(len(buf)) > max {
		return nil, gate.TooLarge("request body larger than %d bytes", max)
	}
	if r.ContentLength >= 0 && int64(len(buf)) != r.ContentLength {
		return nil, aserr.Newf(aserr.ErrBadRequest.Code, "read request body: %d of %d bytes", len(buf), r.ContentLength)
	}
	_ = rc.SetReadDeadline(time.Time{})
	return buf, nil
}

// ReadLimited reads r to its end or to limit bytes, whichever comes first, appending to b
// (a reused buffer of a typical frame size: io.ReadAll starts at 512 bytes and grows).
func ReadLimited(r io.Reader, limit int64, b []byte) ([]byte, error) {
	for int64(len(b)) < limit {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		room := b[len(b):cap(b)]
		if rest := limit - int64(len(b)); int64(len(room)) > rest {
			room = room[:rest]
		}
		n, err := r.Read(room)
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

// WriteNotFound writes the ASE gateway's unknown-route answer.
func WriteNotFound(w http.ResponseWriter) {
	WriteMessage(w, http.StatusNotFound, "not found")
}

// WriteMessage writes a gateway-level {"message":"..."} body (the shape of spec §5/§6
// gateway answers, as opposed to ASE error responses).
func WriteMessage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"message":` + strconv.Quote(msg) + `}`))
}

// WriteJSON writes v as a JSON body with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// TimingHeader formats X-Asf-Timing: webgate=..;atom=..;loader=..;engine=.. in microseconds.
func TimingHeader(webgate time.Duration, timing map[string]int64) string {
	b := make([]byte, 0, 64)
	b = append(b, "webgate="...)
	b = strconv.AppendInt(b, webgate.Microseconds(), 10)
	for _, k := range [...]struct{ name, key string }{{"atom", "atom_ns"}, {"loader", "loader_ns"}, {"engine", "engine_ns"}} {
		b = append(b, ';')
		b = append(b, k.name...)
		b = append(b, '=')
		b = strconv.AppendInt(b, timing[k.key]/1000, 10)
	}
	return string(b)
}

// ClientIP is the client's address: the TCP peer of r.
func ClientIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
