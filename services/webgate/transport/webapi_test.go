package transport

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/athenaserving/asf/libs/capability"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoWebAPISchema gives capability echo a WebAPI 2.0 route beside its ASE route (the
// schema the webapi package's tests use too).
var echoWebAPISchema = func() string {
	b, err := os.ReadFile("webapi/testdata/echo_schema.json")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

type webapiResponse struct {
	Code    int                        `json:"code"`
	Message string                     `json:"message"`
	Sid     string                     `json:"sid"`
	Cid     string                     `json:"cid"`
	Data    map[string]json.RawMessage `json:"data"`
}

func webapiGate(t *testing.T) (*edge, *capability.Registry) {
	t.Helper()
	reg := capability.NewRegistry()
	_, err := reg.Put("echo.json", 1, []byte(echoWebAPISchema))
	require.NoError(t, err)
	return startGate(t, func(o *Options) { o.Schemas = reg }), reg
}

func TestWebAPIOnce(t *testing.T) {
	g, _ := webapiGate(t)
	resp, body := post(t, g.srv.URL+"/v2/echo",
		`{"common":{"app_id":"app1","uid":"u"},"business":{"k":"1","mode":"fast"},"data":{"status":2,"text":"aGVsbG8="}}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var r webapiResponse
	require.NoError(t, json.Unmarshal(body, &r))
	assert.Equal(t, 0, r.Code)
	assert.Equal(t, "success", r.Message)
	assert.True(t, strings.HasPrefix(r.Sid, "ase"))
	assert.Equal(t, "3", string(r.Data["status"]))
	// Through the same pipeline: HTTP is once, business is the parameters, the script ran.
	assert.JSONEq(t, `{"status":3,"app_id":"app1","client_ip":"127.0.0.1","params":{"k":"1","mode":"fast","fast":"1"},"input":"hello"}`, string(r.Data["result"]))
	assert.NotEmpty(t, resp.Header.Get("X-Asf-Timing"))

	// The ASE route of the same capability answers in the ASE envelope.
	resp, body = post(t, g.srv.URL+"/v1/private/echo", onceBody)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, string(body), `"header":{"code":0`)
}

func TestWebAPIOnceErrors(t *testing.T) {
	g, _ := webapiGate(t)
	for _, tc := range []struct{ body, msg string }{
		{`{"common":`, "invalid request json"},
		{`[1]`, "must be an object"},
		{`{"common":"x"}`, "common must be an object"},
		{`{"common":{"app_id":"much-too-long"},"data":{"text":"aGk="}}`, "app_id"},
		{`{"common":{"app_id":"app1"},"data":{"text":"***"}}`, "base64"},
	} {
		resp, body := post(t, g.srv.URL+"/v2/echo", tc.body)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, tc.body)
		var r webapiResponse
		require.NoError(t, json.Unmarshal(body, &r), string(body))
		assert.Equal(t, 10163, r.Code, tc.body)
		assert.Contains(t, r.Message, tc.msg, tc.body)
		assert.True(t, strings.HasPrefix(r.Sid, "ase"), string(body))
		assert.NotContains(t, string(body), `"header"`)
	}
}

func TestWebAPIHotReload(t *testing.T) {
	g, reg := webapiGate(t)
	moved := strings.Replace(echoWebAPISchema, `"/v2/echo"`, `"/v2/echo2"`, 1)
	_, err := reg.Put("echo.json", 2, []byte(moved))
	require.NoError(t, err)
	resp, _ := post(t, g.srv.URL+"/v2/echo", `{"common":{"app_id":"app1"},"data":{"text":"aGk="}}`)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, body := post(t, g.srv.URL+"/v2/echo2", `{"common":{"app_id":"app1"},"data":{"text":"aGk="}}`)
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))
}

func dialPath(t *testing.T, g *edge, path string) *websocket.Conn {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(g.srv.URL, "http")+path, nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func readWebAPI(t *testing.T, conn *websocket.Conn) webapiResponse {
	t.Helper()
	_, b, err := conn.ReadMessage()
	require.NoError(t, err)
	var r webapiResponse
	require.NoError(t, json.Unmarshal(b, &r), string(b))
	return r
}

func TestWebAPIStream(t *testing.T) {
	g, _ := webapiGate(t)
	conn := dialPath(t, g, "/v2/echo")
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(
		`{"common":{"app_id":"app1"},"business":{"k":"1"},"data":{"status":0,"seq":0,"text":"YQ=="}}`)))
	r := readWebAPI(t, conn)
	assert.Equal(t, 0, r.Code)
	assert.Equal(t, "0", string(r.Data["status"]))
	assert.JSONEq(t, `{"seq":0}`, string(r.Data["result"]))
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(`{"data":{"status":1,"seq":1,"text":"Yg=="}}`)))
	r = readWebAPI(t, conn)
	assert.Equal(t, "1", string(r.Data["status"]))
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(`{"data":{"status":2,"seq":2,"text":""}}`)))
	r = readWebAPI(t, conn)
	assert.Equal(t, "2", string(r.Data["status"]))
	assert.JSONEq(t, `{"seq":2}`, string(r.Data["result"]))
	_, _, err := conn.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.CloseNormalClosure, ce.Code)
}

func TestWebAPIStreamBadFrame(t *testing.T) {
	g, _ := webapiGate(t)
	conn := dialPath(t, g, "/v2/echo")
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(`{"data":`)))
	r := readWebAPI(t, conn)
	assert.Equal(t, 10163, r.Code)
	assert.NotEmpty(t, r.Sid)
	_, _, err := conn.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
}

func TestWebAPIMultiplex(t *testing.T) {
	g, _ := webapiGate(t)
	conn := dialPath(t, g, "/v2/echo?stream_mode=multiplex")
	send := func(s string) { require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(s))) }
	send(`{"common":{"app_id":"app1","cmd":"kpal","cid":"k"}}`)
	r := readWebAPI(t, conn)
	assert.Equal(t, 0, r.Code)
	assert.Equal(t, "k", r.Cid)
	assert.Nil(t, r.Data)

	send(`{"common":{"app_id":"app1"},"data":{"status":0,"seq":0,"text":"YQ=="}}`)
	r = readWebAPI(t, conn)
	assert.Equal(t, 10163, r.Code)
	assert.Contains(t, r.Message, "common.cid")

	send(`{"common":{"app_id":"app1","cid":"a"},"data":{"status":0,"seq":0,"text":"YQ=="}}`)
	r = readWebAPI(t, conn)
	assert.Equal(t, "a", r.Cid)
	assert.Equal(t, 0, r.Code)
	// close ends sub-session a: its last result comes with status 2.
	send(`{"common":{"cid":"a","cmd":"close"},"data":{"seq":1}}`)
	r = readWebAPI(t, conn)
	assert.Equal(t, "a", r.Cid)
	assert.Equal(t, 0, r.Code, "%+v", r)
	assert.Equal(t, "2", string(r.Data["status"]))

	send(`{"common":{"cid":"b","cmd":"retry"}}`)
	r = readWebAPI(t, conn)
	assert.Equal(t, "b", r.Cid)
	assert.Equal(t, 10163, r.Code)
}

// TestWebAPIAppIDRequired: as ASF's webgate, a once request or a session's first frame
// without common.app_id is refused with 10313 (HTTP 400 on once), before validation.
func TestWebAPIAppIDRequired(t *testing.T) {
	g, _ := webapiGate(t)
	for _, body := range []string{`{"data":{"text":"aGk="}}`, `{"common":{"uid":"u"},"data":{"status":2,"text":"aGk="}}`, `{"common":{"app_id":""},"data":{"text":"aGk="}}`} {
		resp, b := post(t, g.srv.URL+"/v2/echo", body)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
		var r webapiResponse
		require.NoError(t, json.Unmarshal(b, &r), string(b))
		assert.Equal(t, 10313, r.Code, body)
		assert.Equal(t, "app_id cannot be empty", r.Message)
	}
	conn := dialPath(t, g, "/v2/echo")
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(`{"data":{"status":0,"seq":0,"text":"YQ=="}}`)))
	r := readWebAPI(t, conn)
	assert.Equal(t, 10313, r.Code)
	assert.Equal(t, websocket.CloseNormalClosure, readClose(t, conn).Code)
}

// TestWebAPICloseNotValidated: a close (an end frame without data) is not checked against
// schemainput, even one that requires a payload on every frame.
func TestWebAPICloseNotValidated(t *testing.T) {
	reg := capability.NewRegistry()
	strict := strings.Replace(echoWebAPISchema, `"schemainput": {"type": "object", `, `"schemainput": {"type": "object", "required": ["payload"], `, 1)
	require.NotEqual(t, echoWebAPISchema, strict)
	_, err := reg.Put("echo.json", 1, []byte(strict))
	require.NoError(t, err)
	g := startGate(t, func(o *Options) { o.Schemas = reg })
	conn := dialPath(t, g, "/v2/echo?stream_mode=multiplex")
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(`{"common":{"app_id":"app1","cid":"a"},"data":{"status":0,"seq":0,"text":"YQ=="}}`)))
	require.Equal(t, 0, readWebAPI(t, conn).Code)
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(`{"common":{"app_id":"app1","cid":"a","cmd":"close"},"data":{}}`)))
	r := readWebAPI(t, conn)
	assert.Equal(t, 0, r.Code, r.Message)
	assert.Equal(t, "2", string(r.Data["status"]))
	// Frames that carry data still are.
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(`{"common":{"app_id":"much-too-long","cid":"b"},"data":{"status":0,"seq":0,"text":"YQ=="}}`)))
	r = readWebAPI(t, conn)
	assert.Equal(t, "b", r.Cid)
	assert.Equal(t, 10163, r.Code)
}
