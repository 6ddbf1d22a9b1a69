package transport

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/athenaserving/asf/libs/capability"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// benchFrame is a typical streaming frame: 40 ms of 16 kHz 16-bit PCM.
func benchFrame(status int) []byte {
	audio := base64.StdEncoding.EncodeToString(make([]byte, 1280))
	return []byte(`{"header":{"app_id":"app1","status":` + strconv.Itoa(status) + `},"payload":{"input":{"encoding":"raw","status":` +
		strconv.Itoa(status) + `,"seq":1,"text":"` + audio + `"}}}`)
}

// benchLog is the gate's logger in benchmarks: info, the production level, to nowhere.
var benchLog = zerolog.New(io.Discard).Level(zerolog.InfoLevel)

// echoSchemas is a registry holding the echo capability's schema of the compose deployment.
func echoSchemas(b *testing.B) *capability.Registry {
	sch, err := os.ReadFile("../../../deploy/compose/config/asf/default/capabilities/v1/schema_echo.json")
	if err != nil {
		b.Skip("echo schema not found:", err)
	}
	reg := capability.NewRegistry()
	if _, err := reg.Put("schema_echo.json", 1, sch); err != nil {
		b.Fatal(err)
	}
	return reg
}

// BenchmarkWebSocketFrame measures one frame round trip (client → webgate → fake atom →
// webgate → client) of a long WebSocket session through the real handler and a real gRPC
// connection; b.N frames share one session.
func BenchmarkWebSocketFrame(b *testing.B) {
	reg := echoSchemas(b)
	g := startGateLogged(b, &fakeAtom{}, &fakeAtom{}, func(o *Options) { o.Schemas = reg }, benchLog)
	url := "ws" + strings.TrimPrefix(g.srv.URL, "http") + "/v1/private/echo"
	conn, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	_ = resp.Body.Close()
	defer conn.Close()
	first := []byte(frame(0, 0))
	later := benchFrame(1)
	if err := conn.WriteMessage(websocket.TextMessage, first); err != nil {
		b.Fatal(err)
	}
	if _, _, err := conn.ReadMessage(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(later)))
	b.ReportAllocs()
	for b.Loop() {
		if err := conn.WriteMessage(websocket.TextMessage, later); err != nil {
			b.Fatal(err)
		}
		if _, _, err := conn.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = conn.WriteMessage(websocket.TextMessage, []byte(frame(2, 2)))
	_, _, _ = conn.ReadMessage()
}

// echoAtom answers every once call with the frame's payload, as the echo engine does,
// at the least cost an atom can have, so a benchmark measures webgate.
type echoAtom struct {
	atompb.UnimplementedAtomServer
}

func (echoAtom) Call(_ context.Context, fr *atompb.Frame) (*atompb.Result, error) {
	return &atompb.Result{Sid: fr.GetSid(), Status: 3, Payload: fr.GetPayload(),
		Timing: map[string]int64{"atom_ns": 5000, "loader_ns": 4000, "engine_ns": 3000}}, nil
}

// BenchmarkOnce measures one once request (client → webgate's HTTP handler → atom over
// gRPC → webgate → client) of the echo capability with its schema and 1 KB of text, as
// the suite's once scenario sends it; the client reuses its connection.
func BenchmarkOnce(b *testing.B) {
	reg := echoSchemas(b)
	g := startGateLogged(b, &fakeAtom{}, echoAtom{}, func(o *Options) { o.Schemas = reg }, benchLog)
	url := g.srv.URL + "/v1/private/echo"
	body := []byte(`{"header":{"app_id":"app1","status":3},"parameter":{"echo":{}},"payload":{"input":{"encoding":"utf8","status":3,"text":"` +
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("athena "), 150)) + `"}}}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	var rd bytes.Reader
	buf := make([]byte, 0, 8192)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		resp, err := client.Post(url, "application/json", &rd)
		if err != nil {
			b.Fatal(err)
		}
		buf, err = readAll(resp.Body, buf[:0])
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d, err %v: %s", resp.StatusCode, err, buf)
		}
	}
}

func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
