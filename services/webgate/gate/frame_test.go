package gate

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/capability"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
)

// statusUnset is the status a WebSocket adapter gives a frame without header.status
// until its sub-session decides.
const statusUnset int32 = -1

const fuzzSchema = `{"meta":{"serviceId":"c","c":{"input":{"input":{"dataType":"audio"}}}},
 "schemainput":{"type":"object","properties":{"header":{"type":"object","properties":{"app_id":{"type":"string"}}},
   "payload":{"type":"object","properties":{"input":{"type":"object","properties":{"seq":{"type":"integer"}}}}}}}}`

// FuzzDecodeFrame drives the frame decoder: ASE parsing, payload limits and schema validation of first and later frames. Every failure must carry an
// ASE code the client can act on.
func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(`{"header":{"app_id":"a","cid":"x","status":0},"payload":{"input":{"seq":1,"audio":"AAEC"}}}`), true)
	f.Add([]byte(`{"header":{"cid":7},"payload":{"input":{"audio":"%%"}}}`), false)
	f.Add([]byte(`{"payload":{"input":{"seq":"x"}}}`), false)
	f.Add([]byte(`[]`), true)
	f.Add([]byte("{\"header\":{\"app_id\":\"a\",\"uid\":\"\xff\"},\"payload\":{\"input\":{\"audio\":\"AA==\"}}}"), true)
	f.Add([]byte("{\"parameter\":{\"c\":{\"r\":{\"f\xc3\":\"x\"}}},\"payload\":{\"in\xe2\x82put\":{\"audio\":\"AA==\"}}}"), false)
	sch, err := capability.Parse([]byte(fuzzSchema))
	if err != nil {
		f.Fatal(err)
	}
	g := &Gate{opts: Options{MaxPayloadBytes: 64}, log: zerolog.Nop()}
	info := &Request{Capability: "c", Schema: sch, SID: "s"}
	firstDoc := map[string]any{"header": map[string]any{"app_id": "a"}}
	f.Fuzz(func(t *testing.T, data []byte, first bool) {
		fr, _, err := g.DecodeFrame(context.Background(), info, data, statusUnset, first, firstDoc)
		if err != nil {
			if code := aserr.CodeOf(err); code != aserr.ErrBadRequest.Code {
				t.Fatalf("code %d for %q: %v", code, data, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if fr.GetSid() != "s" || (!first && fr.GetHeader() != nil) {
			t.Fatalf("frame %v", fr)
		}
		n := 0
		for _, it := range fr.GetPayload() {
			n += len(it.GetData())
		}
		if n > 64 {
			t.Fatalf("payload of %d bytes accepted", n)
		}
		// Whatever is accepted reaches atom: it must marshal (protobuf strings are UTF-8).
		if _, err := proto.Marshal(fr); err != nil {
			t.Fatalf("accepted frame does not marshal: %v (%q)", err, data)
		}
	})
}

// benchFrame is a typical streaming frame: 40 ms of 16 kHz 16-bit PCM.
func benchFrame(status int) []byte {
	audio := base64.StdEncoding.EncodeToString(make([]byte, 1280))
	return []byte(`{"header":{"app_id":"app1","status":` + strconv.Itoa(status) + `},"payload":{"input":{"encoding":"raw","status":` +
		strconv.Itoa(status) + `,"seq":1,"text":"` + audio + `"}}}`)
}

func echoSchema(b *testing.B) *capability.Schema {
	data, err := os.ReadFile("../../../deploy/compose/config/asf/default/capabilities/v1/schema_echo.json")
	if err != nil {
		b.Skip("echo schema not found:", err)
	}
	s, err := capability.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkDecodeFrame decodes and validates a later WebSocket frame of the echo capability
// (ASE parsing plus schemainput validation), as the streaming path does for every frame.
func BenchmarkDecodeFrame(b *testing.B) {
	for _, withSchema := range []bool{false, true} {
		name := "noschema"
		info := &Request{Capability: "echo", SID: "s", ClientIP: "127.0.0.1"}
		if withSchema {
			name = "schema"
			info.Schema = echoSchema(b)
		}
		b.Run(name, func(b *testing.B) {
			g := &Gate{}
			data := benchFrame(1)
			firstDoc := map[string]any{"header": map[string]any{"app_id": "app1"}}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := g.DecodeFrame(context.Background(), info, data, statusUnset, false, firstDoc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
