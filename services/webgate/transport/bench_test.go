package transport

import (
	"encoding/base64"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/athenaserving/asf/libs/capability"
	"github.com/gorilla/websocket"
)

// benchFrame is a typical streaming frame: 40 ms of 16 kHz 16-bit PCM.
func benchFrame(status int) []byte {
	audio := base64.StdEncoding.EncodeToString(make([]byte, 1280))
	return []byte(`{"header":{"app_id":"app1","status":` + strconv.Itoa(status) + `},"payload":{"input":{"encoding":"raw","status":` +
		strconv.Itoa(status) + `,"seq":1,"text":"` + audio + `"}}}`)
}

// BenchmarkWebSocketFrame measures one frame round trip (client → webgate → fake atom →
// webgate → client) of a long WebSocket session through the real handler and a real gRPC
// connection; b.N frames share one session.
func BenchmarkWebSocketFrame(b *testing.B) {
	sch, err := os.ReadFile("../../../deploy/compose/config/asf/default/capabilities/v1/schema_echo.json")
	if err != nil {
		b.Skip("echo schema not found:", err)
	}
	reg := capability.NewRegistry()
	if _, err := reg.Put("schema_echo.json", 1, sch); err != nil {
		b.Fatal(err)
	}
	g := startGate(b, func(o *Options) { o.Schemas = reg })
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
