package grpcx

import (
	"strconv"
	"testing"

	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"google.golang.org/protobuf/proto"
)

func TestEnvelopeBytes(t *testing.T) {
	for _, tc := range []struct{ p, want int64 }{
		{0, 4*((DefaultMaxPayloadBytes+2)/3) + EnvelopeAllowance},
		{64 << 10, 87384 + EnvelopeAllowance},
		{3, 4 + EnvelopeAllowance},
		{4, 8 + EnvelopeAllowance},
	} {
		if got := EnvelopeBytes(tc.p); got != tc.want {
			t.Errorf("EnvelopeBytes(%d) = %d, want %d", tc.p, got, tc.want)
		}
	}
	if ResultBytes(64<<10) != MaxResultBytes || MessageBytes(1<<40) != 1<<31-1 {
		t.Fatalf("ResultBytes %d, MessageBytes(1 TiB) %d", ResultBytes(64<<10), MessageBytes(1<<40))
	}
}

// TestMessageBytesBoundsFrames builds the largest frames an envelope of E(P) bytes can
// carry — all payload, and no payload but as many tiny header members as fit — and checks
// that their protobuf form fits M(P).
func TestMessageBytesBoundsFrames(t *testing.T) {
	for _, p := range []int64{64 << 10, 1 << 20} {
		env, m := EnvelopeBytes(p), MessageBytes(p)
		full := &atompb.Frame{Sid: string(make([]byte, 32)), Capability: "echo", Header: map[string]string{"app_id": "a", "client_ip": "255.255.255.255"},
			Payload: []*atompb.Item{{Name: "input", DataType: "text", Data: make([]byte, p)}}}
		for i := 0; int64(len(`{"header":{},"payload":{"input":{"text":""}}}`))+4*((p+2)/3)+int64(8*i) < env; i++ {
			full.Header["k"+strconv.Itoa(i)] = "0" // `"kNN":0,`
		}
		if n := proto.Size(full); n > m {
			t.Errorf("P=%d: a full frame is %d bytes, over M=%d", p, n, m)
		}
		tiny := &atompb.Frame{Header: map[string]string{"": "0"}}
		// `"":0,` is the smallest member (5 bytes), `"k":0,` the smallest with a distinct key.
		for i, n := int64(0), int64(5); n < env; i++ {
			k := strconv.FormatInt(i, 36)
			tiny.Header[k] = "0"
			n += int64(len(k)) + 5
		}
		if n := proto.Size(tiny); n > m {
			t.Errorf("P=%d: a frame of tiny header members is %d bytes, over M=%d", p, n, m)
		}
	}
}
