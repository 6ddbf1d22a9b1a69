package rawstream

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Proto is the TLS ALPN name of a stream connection; Magic is what a plaintext one opens
// with (an HTTP/2 connection opens with "PRI * HTTP/2.0").
const (
	Proto = "asf-stream/1"
	Magic = "ASFSTRM1"
)

// Frame types.
const (
	frameHello    byte = 'H' // client: the method; server: accepted (empty)
	frameMsg      byte = 'M' // one message
	frameCloseSnd byte = 'C' // client: no more messages
	frameEnd      byte = 'E' // server: the stream's status (see endPayload)
)

const headerLen = 5

// maxHello bounds a hello's payload (a method name).
const maxHello = 1024

// errFrame marks a malformed frame: the peer is not speaking this protocol.
var errFrame = errors.New("rawstream: malformed frame")

// appendFrame appends a frame header for a payload of n bytes.
func appendFrame(b []byte, typ byte, n int) []byte {
	return binary.BigEndian.AppendUint32(append(b, typ), uint32(n))
}

// frameReader reads frames from a buffered connection.
type frameReader struct {
	r   *bufio.Reader
	buf []byte // payloads that do not fit the reader's buffer
	err error  // set by Conn once the bytes can no longer be read as frames
}

// next reads one frame whose payload is at most limit bytes. The payload is valid until
// the next call. A payload over limit fails with ResourceExhausted (the connection is
// unusable after it: the payload was not read).
func (fr *frameReader) next(limit int) (typ byte, payload []byte, err error) {
	h, err := fr.r.Peek(headerLen)
	if err != nil {
		if errors.Is(err, io.EOF) && len(h) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	typ = h[0]
	n := binary.BigEndian.Uint32(h[1:])
	if _, err := fr.r.Discard(headerLen); err != nil {
		return 0, nil, err
	}
	switch typ {
	case frameHello, frameMsg, frameCloseSnd, frameEnd:
	default:
		return 0, nil, fmt.Errorf("%w: type %#x", errFrame, typ)
	}
	if uint64(n) > uint64(limit) {
		return 0, nil, status.Errorf(codes.ResourceExhausted, "rawstream: frame of %d bytes, more than the %d allowed", n, limit)
	}
	if int(n) <= fr.r.Size() {
		if payload, err = fr.r.Peek(int(n)); err == nil {
			_, err = fr.r.Discard(int(n))
		}
	} else {
		if cap(fr.buf) < int(n) {
			fr.buf = make([]byte, n)
		}
		payload = fr.buf[:n]
		_, err = io.ReadFull(fr.r, payload)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	if cap(fr.buf) > 1<<20 && int(n) <= fr.r.Size() {
		fr.buf = nil // a large message came once: do not keep its buffer
	}
	return typ, payload, nil
}

// endPayload encodes a stream's status: the gRPC code and the ASE code as uvarints, then
// the message (grpcx.StatusParts of err as a gRPC handler's error would go out, ToStatus;
// nil is OK).
func endPayload(err error) []byte {
	c, ase, msg := grpcx.StatusParts(grpcx.ToStatus(err))
	b := binary.AppendUvarint(nil, uint64(c))
	b = binary.AppendUvarint(b, uint64(uint32(ase)))
	return append(b, msg...)
}

// endError decodes an end frame's payload: nil for OK, else the status error it carries.
func endError(p []byte) error {
	c, n := binary.Uvarint(p)
	if n <= 0 || c > uint64(codes.Unauthenticated) {
		return fmt.Errorf("%w: end status", errFrame)
	}
	p = p[n:]
	ase, n := binary.Uvarint(p)
	if n <= 0 || ase > 1<<31-1 {
		return fmt.Errorf("%w: end code", errFrame)
	}
	if codes.Code(c) == codes.OK {
		return nil
	}
	return grpcx.StatusFromParts(codes.Code(c), int(ase), string(p[n:]))
}

// brokenError is a connection failure as a gRPC stream reports it: Unavailable, with the
// ASE network code.
func brokenError(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	return grpcx.ToStatus(fmt.Errorf("rawstream: connection: %w: %w", err, aserr.ErrNetwork))
}
