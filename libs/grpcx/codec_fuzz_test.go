package grpcx

import (
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// FuzzCodecUnmarshal feeds arbitrary bytes, in one buffer or split in two at split, to
// the codec's Unmarshal of a Frame and a LoaderInput. It must never panic; a refusal is
// 10009; what it accepts marshals and reads back the same; and on bytes where every known
// field has the wire type its declaration gives it, it reads whatever protobuf-go reads,
// the same message.
//
// On other bytes the two may differ, and neither is wrong, as such bytes come from no
// protobuf encoder: protobuf-go keeps a known field of the wrong wire type as an unknown
// field, where vtprotobuf refuses it (or, in a map entry, reads it as if it had the right
// one). vtprotobuf also does not check that strings are UTF-8, which protobuf-go refuses.
func FuzzCodecUnmarshal(f *testing.F) {
	for _, m := range []proto.Message{typicalFrame(), typicalInput(), &atompb.Frame{}, &loaderpb.LoaderInput{PsrIds: []uint32{1, 300}}} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint16(len(b)/2))
	}
	f.Add(notProtobufBytes, uint16(1))
	f.Add([]byte{0x3a, 0x02, 0x22, 0x80}, uint16(0))             // Frame.payload holding a truncated data field
	f.Add([]byte{0xd1, 0x00, 1, 2, 3, 4, 5, 6, 7, 8}, uint16(3)) // unknown field 10 whose tag is not in its shortest form
	f.Fuzz(func(t *testing.T, b []byte, split uint16) {
		data := mem.BufferSlice{mem.SliceBuffer(b)}
		if len(b) > 1 {
			at := int(split) % len(b)
			data = mem.BufferSlice{mem.SliceBuffer(b[:at]), mem.SliceBuffer(b[at:])}
		}
		for _, newMsg := range []func() proto.Message{
			func() proto.Message { return &atompb.Frame{} },
			func() proto.Message { return &loaderpb.LoaderInput{} },
		} {
			got, byProto := newMsg(), newMsg()
			err := Codec{}.Unmarshal(data, got)
			compare := proto.Unmarshal(b, byProto) == nil && wellTyped(b, got.ProtoReflect().Descriptor())
			if err != nil {
				if compare {
					t.Fatalf("%T: codec refused (%v) what protobuf-go reads as %v", got, err, byProto)
				}
				if aserr.CodeOf(err) != aserr.ErrInvalidData.Code {
					t.Fatalf("%T: refusal %v is not 10009", got, err)
				}
				continue
			}
			enc, err := Codec{}.Marshal(got)
			if err != nil {
				t.Fatalf("%T: marshal what was read: %v", got, err)
			}
			again := newMsg()
			if err := (Codec{}).Unmarshal(enc, again); err != nil || !proto.Equal(got, again) {
				t.Fatalf("%T: read %v, marshalled and read back %v (%v)", got, got, again, err)
			}
			// protobuf-go rewrites the tag of an unknown field in its shortest form, so the
			// two are compared as protobuf-go reads them both.
			if compare {
				viaCodec := newMsg()
				if err := proto.Unmarshal(enc.Materialize(), viaCodec); err != nil || !proto.Equal(viaCodec, byProto) {
					t.Fatalf("%T: codec read %v, protobuf-go %v (%v)", got, viaCodec, byProto, err)
				}
			}
			enc.Free()
		}
	})
}

// wellTyped reports whether every field of md in b, nested messages and map entries
// included, has the wire type of its declaration (a repeated scalar packed or not);
// unknown fields may have any.
func wellTyped(b []byte, md protoreflect.MessageDescriptor) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return false
		}
		val := b[:n]
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		if fd == nil {
			continue
		}
		want := wireType(fd.Kind())
		switch {
		case typ == want && fd.Message() != nil:
			inner, _ := protowire.ConsumeBytes(val)
			if !wellTyped(inner, fd.Message()) {
				return false
			}
		case typ == want, fd.IsList() && typ == protowire.BytesType: // packed
		default:
			return false
		}
	}
	return true
}

// wireType is the wire type of a field of kind k.
func wireType(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		return protowire.BytesType
	case protoreflect.GroupKind:
		return protowire.StartGroupType
	}
	return protowire.VarintType
}
