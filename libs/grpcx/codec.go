package grpcx

import (
	"fmt"

	"github.com/athenaserving/asf/libs/aserr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// CodecName is the name of Codec: gRPC's own protobuf codec's, since the bytes on the wire
// are the same and a peer with grpc-go's default codec reads them unchanged.
const CodecName = "proto"

// Codec is the gRPC codec of every server NewServer builds and every connection Dial
// opens. It marshals and unmarshals the messages of libs/proto through the reflection-free
// code protoc-gen-go-vtproto generates beside them (MarshalToSizedBufferVT, UnmarshalVT,
// SizeVT) — the request path's messages: atom, lb, loader — and any other message (polaris'
// control plane, grpc.health.v1, reflection) with protobuf-go, as gRPC's
// default codec does. Buffers are handled as in that codec: a message larger than gRPC's
// pooling threshold is marshalled into a buffer of gRPC's pool, which gRPC frees once it
// has been written, and a received message is read from gRPC's buffer in place unless it
// arrived in several pieces.
//
// The generated UnmarshalVT copies bytes and strings out of the wire buffer (it is
// generated without unmarshal_unsafe), so an unmarshalled message never aliases a buffer
// gRPC frees or reuses after Unmarshal returns.
//
// The generated code reads and writes what protobuf-go does, with two differences. It
// does not check that strings are UTF-8, marshalling or unmarshalling: webgate refuses
// such client input before it reaches gRPC (ase.CheckUTF8), and an engine's text that is
// not UTF-8 travels on rather than failing the loader's send (webgate renders it as U+FFFD).
// polaris' messages have no vtprotobuf code, so registrations and config names are still
// checked. And a known field of the
// wrong wire type, which no encoder writes, is an error rather than an unknown field
// (FuzzCodecUnmarshal).
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

// vtMessage is what the vtprotobuf code of libs/proto adds to a generated message, and
// the Reset every generated message has.
type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT(dAtA []byte) (int, error)
	UnmarshalVT(dAtA []byte) error
	Reset()
}

// CodecServerOption installs Codec on a server (NewServer does).
func CodecServerOption() grpc.ServerOption { return grpc.ForceServerCodecV2(Codec{}) }

// CodecDialOption makes Codec the codec of every call on a connection (Dial does). A call
// option given to a single call (grpc.ForceCodecV2, grpc.CallContentSubtype) still
// overrides it.
func CodecDialOption() grpc.DialOption {
	return grpc.WithDefaultCallOptions(grpc.ForceCodecV2(Codec{}))
}

// Name returns CodecName.
func (Codec) Name() string { return CodecName }

// Marshal encodes v, a protobuf message, into one buffer.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(vtMessage); ok {
		size := m.SizeVT()
		buf, b := alloc(size)
		if _, err := m.MarshalToSizedBufferVT(b); err != nil {
			free(buf)
			return nil, fmt.Errorf("grpcx codec: marshal %T: %w: %w", v, err, aserr.ErrInternal)
		}
		return wrap(buf, b), nil
	}
	pm := messageOf(v)
	if pm == nil {
		return nil, fmt.Errorf("grpcx codec: marshal %T: not a protobuf message: %w", v, aserr.ErrInternal)
	}
	// UseCachedSize reuses the sizes proto.Size has just cached in the message, which holds
	// as long as nothing changes it concurrently (gRPC's default codec relies on the same).
	size := proto.Size(pm)
	buf, b := alloc(size)
	if _, err := (proto.MarshalOptions{UseCachedSize: true}).MarshalAppend(b[:0], pm); err != nil {
		free(buf)
		return nil, fmt.Errorf("grpcx codec: marshal %T: %w: %w", v, err, aserr.ErrInternal)
	}
	return wrap(buf, b), nil
}

// Unmarshal decodes data into v, a protobuf message, replacing its contents as
// proto.Unmarshal does.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	b, tmp := contiguous(data)
	if tmp != nil {
		defer tmp.Free()
	}
	var err error
	if m, ok := v.(vtMessage); ok {
		m.Reset()
		err = m.UnmarshalVT(b)
	} else if pm := messageOf(v); pm != nil {
		err = proto.Unmarshal(b, pm)
	} else {
		return fmt.Errorf("grpcx codec: unmarshal into %T: not a protobuf message: %w", v, aserr.ErrInternal)
	}
	if err != nil {
		return fmt.Errorf("grpcx codec: unmarshal %T: %w: %w", v, err, aserr.ErrInvalidData)
	}
	return nil
}

// contiguous returns data as one slice: the only buffer's bytes in place, or, when data
// came in several buffers, a copy into a pooled buffer tmp that the caller frees once it
// is done with the bytes.
func contiguous(data mem.BufferSlice) (b []byte, tmp mem.Buffer) {
	switch len(data) {
	case 0:
		return nil, nil
	case 1:
		return data[0].ReadOnlyData(), nil
	}
	tmp = data.MaterializeToBuffer(mem.DefaultBufferPool())
	return tmp.ReadOnlyData(), tmp
}

// alloc returns a slice of size bytes to marshal into: from gRPC's buffer pool (buf, to
// be returned with wrap or free) above the pooling threshold, else a plain allocation
// (buf nil), as gRPC's default codec does.
func alloc(size int) (buf *[]byte, b []byte) {
	if mem.IsBelowBufferPoolingThreshold(size) {
		return nil, make([]byte, size)
	}
	buf = mem.DefaultBufferPool().Get(size)
	return buf, (*buf)[:size]
}

// wrap turns what alloc returned, now filled, into the one-buffer slice Marshal returns;
// a pooled buffer goes back to the pool when gRPC frees it.
func wrap(buf *[]byte, b []byte) mem.BufferSlice {
	if buf == nil {
		return mem.BufferSlice{mem.SliceBuffer(b)}
	}
	*buf = b
	return mem.BufferSlice{mem.NewBuffer(buf, mem.DefaultBufferPool())}
}

// free returns an unused pooled buffer from alloc.
func free(buf *[]byte) {
	if buf != nil {
		mem.DefaultBufferPool().Put(buf)
	}
}

// messageOf returns v as a protobuf-go message (v1 messages adapted), or nil.
func messageOf(v any) proto.Message {
	switch m := v.(type) {
	case protoadapt.MessageV2:
		return m
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(m)
	}
	return nil
}
