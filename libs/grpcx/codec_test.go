package grpcx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	lbpb "github.com/athenaserving/asf/libs/proto/lb/v1"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// typicalPayloadBytes is the size of the audio item of the typical messages: 40 ms of 16 kHz
// 16-bit audio, what a WebSocket session sends per frame.
const typicalPayloadBytes = 1280

func typicalAudio() []byte {
	b := make([]byte, typicalPayloadBytes)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func typicalAudioAttrs() map[string]string {
	return map[string]string{"encoding": "raw", "sample_rate": "16000", "channels": "1", "bit_depth": "16"}
}

// headers and params are the 10 header fields and 5 parameters of a typical frame.
func typicalHeaders() map[string]string {
	return map[string]string{
		"app_id": "app-0001", "uid": "user-42", "did": "device-7", "cid": "c-1",
		"client_ip": "10.1.2.3", "sid": "ase000a1b2c3@dx", "capability": "iat",
		"engine_version": "2", "imei": "356938035643809", "net_type": "wifi",
	}
}

func typicalParams() map[string]string {
	return map[string]string{"language": "zh_cn", "domain": "iat", "accent": "mandarin", "vad_eos": "3000", "ptt": "1"}
}

// typicalFrame is one WebSocket session frame: 10 header fields, 5 parameters and one
// 1280-byte audio item with 4 attributes.
func typicalFrame() *atompb.Frame {
	return &atompb.Frame{
		Capability: "iat", Sid: "ase000a1b2c3@dx", Status: 1,
		Header: typicalHeaders(), Params: typicalParams(),
		Payload: []*atompb.Item{{Name: "audio", DataType: "audio", Attributes: typicalAudioAttrs(), Data: typicalAudio()}},
	}
}

func typicalResult() *atompb.Result {
	return &atompb.Result{
		Sid: "ase000a1b2c3@dx", Status: 1,
		Payload: []*atompb.Item{{Name: "audio", DataType: "audio", Attributes: typicalAudioAttrs(), Data: typicalAudio()}},
		Timing:  map[string]int64{"atom_ns": 51234, "loader_ns": 40211, "engine_ns": 30111},
	}
}

// typicalInput is typicalFrame as atom sends it to a loader.
func typicalInput() *loaderpb.LoaderInput {
	return &loaderpb.LoaderInput{
		ServiceId: "iat", ServiceName: "iat", State: loaderpb.State_STATE_STREAM,
		Headers: typicalHeaders(), Params: typicalParams(),
		Expect: []*loaderpb.MetaDesc{{Name: "result", DataType: loaderpb.DataType_DATA_TYPE_TEXT, Attribute: map[string]string{"encoding": "utf8"}}},
		Pl: []*loaderpb.Payload{{
			Meta: &loaderpb.MetaDesc{Name: "audio", DataType: loaderpb.DataType_DATA_TYPE_AUDIO, Attribute: typicalAudioAttrs()},
			Data: typicalAudio(),
		}},
		SyncId: 7, Status: loaderpb.Status_STATUS_CONTINUE,
	}
}

func typicalOutput() *loaderpb.LoaderOutput {
	return &loaderpb.LoaderOutput{
		ServiceId: "iat", Status: loaderpb.Status_STATUS_CONTINUE,
		Pl: []*loaderpb.Payload{{
			Meta: &loaderpb.MetaDesc{Name: "audio", DataType: loaderpb.DataType_DATA_TYPE_AUDIO, Attribute: typicalAudioAttrs()},
			Data: typicalAudio(),
		}},
		EngineNs: 30111, LoaderNs: 40211,
	}
}

// roundTrip marshals m with the codec and unmarshals the result into a new message of
// m's type.
func codecRoundTrip(t testing.TB, m proto.Message) proto.Message {
	t.Helper()
	data, err := Codec{}.Marshal(m)
	require.NoError(t, err)
	defer data.Free()
	require.Equal(t, proto.Size(m), data.Len(), "%T: marshalled size", m)
	got := m.ProtoReflect().New().Interface()
	require.NoError(t, Codec{}.Unmarshal(data, got))
	return got
}

// fill sets every field of m (one member of each oneof): scalars to non-zero values that
// take several bytes on the wire, two entries in each list and map, nested messages filled
// down to a few levels.
func fillMessage(m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() && o.Fields().Get(0) != fd {
			continue
		}
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for j := range 2 {
				v := mp.NewValue()
				if fd.MapValue().Message() != nil {
					fillMessage(v.Message(), depth+1)
				} else {
					v = testScalar(fd.MapValue(), j)
				}
				mp.Set(testScalar(fd.MapKey(), j).MapKey(), v)
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			for j := range 2 {
				v := l.NewElement()
				if fd.Message() != nil {
					fillMessage(v.Message(), depth+1)
				} else {
					v = testScalar(fd, j)
				}
				l.Append(v)
			}
		case fd.Message() != nil:
			if depth < 4 {
				fillMessage(m.Mutable(fd).Message(), depth+1)
			}
		default:
			m.Set(fd, testScalar(fd, 1))
		}
	}
}

// scalar is the j-th test value of a scalar field (distinct for j = 0 and 1, so it serves
// as a map key too).
func testScalar(fd protoreflect.FieldDescriptor, j int) protoreflect.Value {
	n := int64(j + 1)
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(j%2 == 1)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values() // the last value: non-zero when the enum has several
		return protoreflect.ValueOfEnum(vals.Get(max(vals.Len()-1-j, 0)).Number())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(-n * 123457))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(n * 300001))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(-n << 40)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(n) << 40)
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(n) + 0.5)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(float64(n) + 0.25)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(fmt.Sprintf("%s-%d-é", fd.Name(), j))
	case protoreflect.BytesKind:
		b := make([]byte, 200+j)
		for i := range b {
			b[i] = byte(i + j)
		}
		return protoreflect.ValueOfBytes(b)
	}
	panic(fmt.Sprintf("no test value for %s (%s)", fd.FullName(), fd.Kind()))
}

// projectFiles are the proto files of libs/proto; the request path's messages have
// vtprotobuf code, polaris' (fastFile false) go through protobuf-go, which checks UTF-8.
var projectFiles = []protoreflect.FileDescriptor{
	atompb.File_atom_v1_atom_proto,
	loaderpb.File_loader_v1_loader_proto,
	lbpb.File_lb_v1_lb_proto,
	polarispb.File_polaris_v1_polaris_proto,
}

// fastFile tells whether the messages of fd have vtprotobuf code (scripts/proto-gen.sh).
func fastFile(fd protoreflect.FileDescriptor) bool {
	return fd != polarispb.File_polaris_v1_polaris_proto
}

// projectMessages lists every message type of libs/proto, nested ones included (map
// entries left out).
func projectMessages(t *testing.T) []protoreflect.MessageType {
	t.Helper()
	var out []protoreflect.MessageType
	var walk func(protoreflect.MessageDescriptors)
	walk = func(mds protoreflect.MessageDescriptors) {
		for i := 0; i < mds.Len(); i++ {
			md := mds.Get(i)
			if md.IsMapEntry() {
				continue
			}
			mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
			require.NoError(t, err)
			out = append(out, mt)
			walk(md.Messages())
		}
	}
	for _, fd := range projectFiles {
		walk(fd.Messages())
	}
	require.NotEmpty(t, out)
	return out
}

// TestCodecRoundTripsEveryMessage round-trips every message of libs/proto, with every
// field set, through the codec, and checks that protobuf-go reads what the codec writes
// and the other way round, so a peer with gRPC's default codec sees the same messages.
func TestCodecRoundTripsEveryMessage(t *testing.T) {
	for _, mt := range projectMessages(t) {
		name := string(mt.Descriptor().FullName())
		t.Run(name, func(t *testing.T) {
			m := mt.New()
			_, fast := m.Interface().(vtMessage)
			require.Equal(t, fastFile(mt.Descriptor().ParentFile()), fast, "%s: vtprotobuf code present %v: run make proto", name, fast)
			fillMessage(m, 0)
			want := m.Interface()
			require.True(t, proto.Equal(want, codecRoundTrip(t, want)), "codec → codec")

			data, err := Codec{}.Marshal(want)
			require.NoError(t, err)
			byProto := mt.New().Interface()
			require.NoError(t, proto.Unmarshal(data.Materialize(), byProto))
			data.Free()
			require.True(t, proto.Equal(want, byProto), "codec → protobuf-go")

			wire, err := proto.Marshal(want)
			require.NoError(t, err)
			byCodec := mt.New().Interface()
			require.NoError(t, Codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, byCodec))
			require.True(t, proto.Equal(want, byCodec), "protobuf-go → codec")

			empty := mt.New().Interface()
			require.True(t, proto.Equal(empty, codecRoundTrip(t, empty)), "empty message")
		})
	}
}

func TestCodecRoundTripsTypicalMessages(t *testing.T) {
	for _, m := range []proto.Message{typicalFrame(), typicalResult(), typicalInput(), typicalOutput()} {
		require.True(t, proto.Equal(m, codecRoundTrip(t, m)), "%T", m)
	}
}

// TestCodecUnmarshalReplaces checks that Unmarshal replaces what the message held, as
// proto.Unmarshal does, rather than merging into it.
func TestCodecUnmarshalReplaces(t *testing.T) {
	data, err := Codec{}.Marshal(&atompb.Frame{Sid: "new", Header: map[string]string{"a": "1"}})
	require.NoError(t, err)
	defer data.Free()
	got := typicalFrame()
	require.NoError(t, Codec{}.Unmarshal(data, got))
	require.True(t, proto.Equal(&atompb.Frame{Sid: "new", Header: map[string]string{"a": "1"}}, got), "got %v", got)
}

// TestCodecReadsMessagesInPieces unmarshals a message that arrived in many buffers.
func TestCodecReadsMessagesInPieces(t *testing.T) {
	want := typicalInput()
	wire, err := proto.Marshal(want)
	require.NoError(t, err)
	var data mem.BufferSlice
	for rest := wire; len(rest) > 0; {
		n := min(7, len(rest))
		data = append(data, mem.SliceBuffer(rest[:n]))
		rest = rest[n:]
	}
	got := &loaderpb.LoaderInput{}
	require.NoError(t, Codec{}.Unmarshal(data, got))
	require.True(t, proto.Equal(want, got))
}

// TestCodecUnmarshalCopies checks that an unmarshalled message keeps none of the wire
// buffer, which gRPC frees and reuses once Unmarshal returns: overwriting the buffer
// afterwards changes nothing in the message.
func TestCodecUnmarshalCopies(t *testing.T) {
	for _, want := range []proto.Message{typicalFrame(), typicalInput(), typicalOutput(), typicalResult()} {
		wire, err := proto.Marshal(want)
		require.NoError(t, err)
		got := want.ProtoReflect().New().Interface()
		require.NoError(t, Codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, got))
		for i := range wire {
			wire[i] = 0xff
		}
		require.True(t, proto.Equal(want, got), "%T changed with the wire buffer", want)
	}
}

// TestCodecFallsBackToProtobufGo covers messages without vtprotobuf code, small and
// large (a pooled buffer).
func TestCodecFallsBackToProtobufGo(t *testing.T) {
	small := &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}
	large := wrapperspb.Bytes(bytes.Repeat([]byte("x"), 4*typicalPayloadBytes))
	for _, m := range []proto.Message{small, large} {
		_, fast := m.(vtMessage)
		require.False(t, fast, "%T", m)
		require.True(t, proto.Equal(m, codecRoundTrip(t, m)), "%T", m)
	}
}

func TestCodecErrorsCarryCodes(t *testing.T) {
	_, err := Codec{}.Marshal("not a message")
	require.Error(t, err)
	require.Equal(t, aserr.ErrInternal.Code, aserr.CodeOf(err))

	require.Equal(t, aserr.ErrInternal.Code, aserr.CodeOf(Codec{}.Unmarshal(nil, new(int))))

	garbage := mem.BufferSlice{mem.SliceBuffer{0x0a, 0xff, 0xff}} // field 1, length beyond the end
	for _, m := range []proto.Message{&atompb.Frame{}, &healthpb.HealthCheckRequest{}} {
		err := Codec{}.Unmarshal(garbage, m)
		require.Error(t, err, "%T", m)
		require.Equal(t, aserr.ErrInvalidData.Code, aserr.CodeOf(err), "%T: %v", m, err)
	}
}

// echoLoader answers every input with an output that carries its payload, and its
// sid header as err.
type echoLoader struct {
	loaderpb.UnimplementedLoaderServer
}

func echoOutput(in *loaderpb.LoaderInput) *loaderpb.LoaderOutput {
	return &loaderpb.LoaderOutput{ServiceId: in.GetServiceId(), Err: in.GetHeaders()["sid"], Status: in.GetStatus(), Pl: in.GetPl()}
}

func (echoLoader) Once(_ context.Context, in *loaderpb.LoaderInput) (*loaderpb.LoaderOutput, error) {
	return echoOutput(in), nil
}

func (echoLoader) Session(ss grpc.BidiStreamingServer[loaderpb.LoaderInput, loaderpb.LoaderOutput]) error {
	for {
		in, err := ss.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ss.Send(echoOutput(in)); err != nil {
			return err
		}
	}
}

// serve runs s on 127.0.0.1:0 until the test ends and returns its address.
func codecServe(t testing.TB, s *grpc.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return ln.Addr().String()
}

func codecDial(t testing.TB, addr string, extra ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cc, err := Dial(addr, extra...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func TestCodecEndToEnd(t *testing.T) {
	s := NewServer("test", zerolog.Nop(), nil)
	loaderpb.RegisterLoaderServer(s, echoLoader{})
	cc := codecDial(t, codecServe(t, s.Server))
	client := loaderpb.NewLoaderClient(cc)

	in := typicalInput()
	out, err := client.Once(t.Context(), in)
	require.NoError(t, err)
	require.True(t, proto.Equal(echoOutput(in), out), "once: got %v", out)

	stream, err := client.Session(t.Context())
	require.NoError(t, err)
	for i, st := range []loaderpb.Status{loaderpb.Status_STATUS_BEGIN, loaderpb.Status_STATUS_CONTINUE, loaderpb.Status_STATUS_END} {
		in := typicalInput()
		in.SyncId, in.Status = int32(i), st
		require.NoError(t, stream.Send(in))
		out, err := stream.Recv()
		require.NoError(t, err)
		require.True(t, proto.Equal(echoOutput(in), out), "frame %d: got %v", i, out)
	}
	require.NoError(t, stream.CloseSend())
	_, err = stream.Recv()
	require.ErrorIs(t, err, io.EOF)

	// grpc.health.v1 has no vtprotobuf code: the codec's fallback on both sides.
	s.SetServing(true)
	resp, err := healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{Service: "asf.loader.v1.Loader"})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
}

// rawCodec sends and receives messages as they are on the wire ([]byte), to reach a peer
// with bytes its codec must refuse.
type rawCodec struct{}

func (rawCodec) Name() string { return CodecName }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// notProtobufBytes is a message no protobuf decoder accepts: field 1, length beyond the end.
var notProtobufBytes = []byte{0x0a, 0xff, 0xff}

// TestCodecOnBothSides checks that NewServer and Dial install the codec: each refuses a
// malformed message with the codec's own error.
func TestCodecOnBothSides(t *testing.T) {
	s := NewServer("test", zerolog.Nop(), nil)
	loaderpb.RegisterLoaderServer(s, echoLoader{})
	raw, err := grpc.NewClient(codecServe(t, s.Server), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	require.NoError(t, err)
	t.Cleanup(func() { _ = raw.Close() })
	var reply []byte
	err = raw.Invoke(t.Context(), loaderpb.Loader_Once_FullMethodName, &notProtobufBytes, &reply)
	require.Equal(t, codes.Internal, status.Code(err), "%v", err)
	require.True(t, strings.Contains(err.Error(), "grpcx codec: unmarshal"), "server: %v", err)

	rawServer := grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		var in []byte
		if err := ss.RecvMsg(&in); err != nil {
			return err
		}
		return ss.SendMsg(&notProtobufBytes)
	}))
	_, err = loaderpb.NewLoaderClient(codecDial(t, codecServe(t, rawServer))).Once(t.Context(), typicalInput())
	require.Equal(t, codes.Internal, status.Code(err), "%v", err)
	require.True(t, strings.Contains(err.Error(), "grpcx codec: unmarshal"), "client: %v", err)
}
