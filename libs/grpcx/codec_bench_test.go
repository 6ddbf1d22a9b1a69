package grpcx

import (
	"syscall"
	"testing"

	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/protobuf/proto"
)

// BenchmarkCodec compares gRPC's default protobuf codec ("default") with Codec ("vt") on
// the messages of the request path, each with 10 header fields, 5 parameters (where the
// message has them) and one 1280-byte audio item with 4 attributes: marshal, unmarshal
// into a new message (as gRPC does for every message it receives), and both, each codec
// right after the other. ns/op is wall time; cpu-ns/op is the process's CPU time (user and
// system, GC included) per operation, the steadier figure on a machine shared with other
// work. -count repeats each benchmark in a row, so on a busy machine run the whole set
// several times instead, which interleaves the two codecs:
//
//	go test -c -o /tmp/grpcx.test ./grpcx && for i in 1 2 3 4 5 6; do /tmp/grpcx.test -test.run '^$' -test.bench Codec -test.benchmem; done
func BenchmarkCodec(b *testing.B) {
	msgs := []struct {
		name string
		m    proto.Message
		new  func() proto.Message
	}{
		{"Frame", typicalFrame(), func() proto.Message { return new(atompb.Frame) }},
		{"Result", typicalResult(), func() proto.Message { return new(atompb.Result) }},
		{"LoaderInput", typicalInput(), func() proto.Message { return new(loaderpb.LoaderInput) }},
		{"LoaderOutput", typicalOutput(), func() proto.Message { return new(loaderpb.LoaderOutput) }},
	}
	codecs := []struct {
		name  string
		codec encoding.CodecV2
	}{
		{"default", encoding.GetCodecV2(protoenc.Name)},
		{"vt", Codec{}},
	}
	for _, msg := range msgs {
		for _, op := range []string{"marshal", "unmarshal", "both"} {
			for _, c := range codecs {
				b.Run(msg.name+"/"+op+"/"+c.name, func(b *testing.B) {
					wire, err := c.codec.Marshal(msg.m)
					if err != nil {
						b.Fatal(err)
					}
					defer wire.Free()
					b.ReportAllocs()
					cpu0 := cpuTime(b)
					for b.Loop() {
						data := wire
						if op != "unmarshal" {
							if data, err = c.codec.Marshal(msg.m); err != nil {
								b.Fatal(err)
							}
						}
						if op != "marshal" {
							if err := c.codec.Unmarshal(data, msg.new()); err != nil {
								b.Fatal(err)
							}
						}
						if op != "unmarshal" {
							data.Free()
						}
					}
					b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
				})
			}
		}
	}
}

// BenchmarkCodecCall is one loader Once call of typicalInput (answered with its payload)
// over loopback between NewServer and Dial, both in this process, with gRPC's default
// codec on both sides ("default") or Codec ("vt"): cpu-ns/op is the CPU of both sides and
// the GC per call, what the codec saves of a hop. Run it in the same loop as BenchmarkCodec.
func BenchmarkCodecCall(b *testing.B) {
	def := encoding.GetCodecV2(protoenc.Name)
	for _, way := range []string{"default", "vt"} {
		b.Run(way, func(b *testing.B) {
			var srvOpts []grpc.ServerOption
			var dialOpts []grpc.DialOption
			if way == "default" { // given after NewServer's and Dial's own, so they win
				srvOpts = []grpc.ServerOption{grpc.ForceServerCodecV2(def)}
				dialOpts = []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.ForceCodecV2(def))}
			}
			s := NewServer("bench", zerolog.Nop(), nil, srvOpts...)
			loaderpb.RegisterLoaderServer(s, echoLoader{})
			client := loaderpb.NewLoaderClient(codecDial(b, codecServe(b, s.Server), dialOpts...))
			in := typicalInput()
			if _, err := client.Once(b.Context(), in); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				if _, err := client.Once(b.Context(), in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the CPU time the process has used so far (user and system), in nanoseconds.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
