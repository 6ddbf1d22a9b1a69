package webgate

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const echoSchema = `{
 "meta":{"serviceId":"echo","version":"1.0","service":["echo"],
   "echo":{"input":{"input":{"dataType":"text"}},"accept":{"result":{"dataType":"text"}}}},
 "schemainput":{"type":"object","properties":{
   "header":{"type":"object","properties":{"app_id":{"type":"string"},"status":{"type":"integer"}}},
   "payload":{"type":"object","properties":{"input":{"type":"object","properties":{"text":{"type":"string"},"seq":{"type":"integer","maximum":100}}}}}}},
 "schemaoutput":{"properties":{"payload":{"properties":{"input":{"properties":{"seq":{"type":"string"},"final":{"type":"boolean"}}}}}}}
}`

const hangSchema = `{"meta":{"serviceId":"hang","read_timeout":0.3}}`
const asrSchema = `{"meta":{"serviceId":"asr","route":"/asr/v2/recognize"}}`

const appsJSON = `{"apps":[
 {"app_id":"app1","api_key":"key1","api_secret":"secret1","ip_allow":["127.0.0.1/32","::1"],"max_sessions":2},
 {"app_id":"app2","api_key":"key2","api_secret":"secret2","ip_allow":["10.0.0.0/8"]},
 {"app_id":"app3","api_key":"key3","api_secret":"secret3","qps":1},
 {"app_id":"app4","api_key":"key4","api_secret":"secret4","capabilities":["other"]}
]}`

var (
	app1 = creds{"key1", "secret1"}
	app2 = creds{"key2", "secret2"}
	app3 = creds{"key3", "secret3"}
	app4 = creds{"key4", "secret4"}
)

func defaultFiles() map[string]string {
	return map[string]string{
		"capabilities/schema_echo.json": echoSchema,
		"capabilities/schema_hang.json": hangSchema,
		"capabilities/schema_asr.json":  asrSchema,
		"webgate/apps.json":             appsJSON,
	}
}

func onceBody(appID string) string {
	return `{"header":{"app_id":"` + appID + `","status":3},"parameter":{"echo":{"k":1}},"payload":{"input":{"encoding":"utf8","status":3,"seq":1,"text":"aGk="}}}`
}

func frame(appID, cid string, status, seq int) string {
	h := `"app_id":"` + appID + `","status":` + itoa(status)
	if cid != "" {
		h += `,"cid":"` + cid + `"`
	}
	return `{"header":{` + h + `},"payload":{"input":{"status":` + itoa(status) + `,"seq":` + itoa(seq) + `,"text":"aGk="}}}`
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func (e *env) url(path string) string   { return "http://" + e.srv.HTTPAddr() + path }
func (e *env) wsURL(path string) string { return "ws://" + e.srv.HTTPAddr() + path }

func TestServerLifecycle(t *testing.T) {
	atomAddr, fake := startAtom(t)
	srv, err := New(testConfig(atomAddr), zerolog.New(zerolog.NewTestWriter(t)), prometheus.NewRegistry())
	require.NoError(t, err)
	assert.False(t, srv.Ready())
	require.NoError(t, srv.Start(t.Context()))
	assert.True(t, srv.Ready())

	code, _ := get(t, "http://"+srv.AdminAddr()+"/readyz")
	assert.Equal(t, http.StatusOK, code)

	st, body, _ := post(t, "http://"+srv.HTTPAddr()+"/v1/private/echo", `{"header":{"app_id":"a"},"payload":{"input":{"encoding":"utf8","text":"aGk="}}}`)
	require.Equal(t, http.StatusOK, st, body)
	assert.Contains(t, body, `"payload":{"input":{"encoding":"utf8","text":"aGk="}}`)

	_, metrics := get(t, "http://"+srv.AdminAddr()+"/metrics")
	assert.Contains(t, metrics, `asf_webgate_requests_total{capability="echo",code="0",kind="once"} 1`)

	conn, _, err := dialWS(t, "ws://"+srv.HTTPAddr()+"/v1/private/hang")
	require.NoError(t, err)
	send(t, conn, `{"header":{"app_id":"a","status":0},"payload":{"input":{"audio":""}}}`)
	testpoll.Until(t, 5*time.Second, "atom stream", func() bool { return fake.opened.Load() == 1 })
	_, metrics = get(t, "http://"+srv.AdminAddr()+"/metrics")
	assert.Contains(t, metrics, "asf_webgate_sessions_active 1")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	assert.False(t, srv.Ready())
	r := readResponse(t, conn)
	assert.Equal(t, 10222, r.Header.Code, "sessions beyond the drain bound end with a clear code")
	assert.Equal(t, "server shutting down", r.Header.Message)
	assert.Equal(t, websocket.CloseGoingAway, readClose(t, conn).Code)
	testpoll.Until(t, 5*time.Second, "atom stream cancelled", func() bool { return fake.cancelled.Load() == 1 })

	_, err = http.Get("http://" + srv.HTTPAddr() + "/v1/private/echo")
	assert.Error(t, err, "listener closed")
	require.NoError(t, srv.Shutdown(ctx), "idempotent")
	http.DefaultClient.CloseIdleConnections()
}

func TestShutdownLetsSessionsFinish(t *testing.T) {
	e := start(t, func(c *Config) { c.Auth = "off"; c.DrainTimeout = 5 * time.Second }, defaultFiles())
	conn, _, err := dialWS(t, e.wsURL("/v1/private/echo"))
	require.NoError(t, err)
	send(t, conn, frame("a", "", 0, 0))
	readResponse(t, conn)
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(context.Background()) }()
	testpoll.Until(t, 5*time.Second, "not ready", func() bool { return !e.srv.Ready() })
	send(t, conn, frame("a", "", 2, 1))
	r := readResponse(t, conn)
	require.Equal(t, 0, r.Header.Code, r.Header.Message)
	assert.Equal(t, 2, *r.Header.Status, "the running session finished during the drain")
	assert.Equal(t, websocket.CloseNormalClosure, readClose(t, conn).Code)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown did not return after the last session")
	}
}

func TestConfigValidation(t *testing.T) {
	cfg := testConfig("")
	_, err := New(cfg, zerolog.Nop(), nil)
	assert.Error(t, err)
	cfg = testConfig("127.0.0.1:1")
	cfg.ReadTimeout = 0
	_, err = New(cfg, zerolog.Nop(), nil)
	assert.Error(t, err)
	cfg = testConfig("127.0.0.1:1")
	cfg.Auth = "maybe"
	_, err = New(cfg, zerolog.Nop(), nil)
	assert.Error(t, err)
	cfg = testConfig("127.0.0.1:1")
	cfg.Auth, cfg.DemoApp = "on", "only-an-id"
	_, err = New(cfg, zerolog.Nop(), nil)
	assert.Error(t, err)
}

func TestAuthFailuresExactBodies(t *testing.T) {
	e := start(t, nil, defaultFiles())
	now := time.Now()
	path := e.url("/v1/private/echo")
	garbage := path + "?authorization=" + base64.StdEncoding.EncodeToString([]byte("garbage")) + "&date=" + strings.ReplaceAll(now.UTC().Format(http.TimeFormat), " ", "%20") + "&host=x"
	cases := []struct {
		name, url, body string
		status          int
		want            string
	}{
		{"no authorization", path, onceBody("app1"), 401, `{"message":"Unauthorized"}`},
		{"unparsable", garbage, onceBody("app1"), 401, `{"message":"HMAC signature cannot be verified"}`},
		{"unknown key", signURL(t, path, "POST", creds{"nokey", "x"}, now), onceBody("app1"), 401, `{"message":"HMAC signature cannot be verified"}`},
		{"signature mismatch", signURL(t, path, "POST", creds{"key1", "wrong"}, now), onceBody("app1"), 401, `{"message":"HMAC signature does not match"}`},
		{"signed for GET", signURL(t, path, "GET", app1, now), onceBody("app1"), 401, `{"message":"HMAC signature does not match"}`},
		{"date skew", signURL(t, path, "POST", app1, now.Add(-301*time.Second)), onceBody("app1"), 403, `{"message":"HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication"}`},
		{"ip not allowed", signURL(t, path, "POST", app2, now), onceBody("app2"), 403, `{"message":"Your IP address is not allowed"}`},
		{"capability not allowed", signURL(t, path, "POST", app4, now), onceBody("app4"), 403, `{"message":"You cannot consume this service"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body, _ := post(t, tc.url, tc.body)
			assert.Equal(t, tc.status, st)
			assert.Equal(t, tc.want, body)
		})
	}
	t.Run("app_id mismatch", func(t *testing.T) {
		st, body, _ := post(t, signURL(t, path, "POST", app1, now), onceBody("someone-else"))
		assert.Equal(t, http.StatusBadRequest, st)
		var r response
		require.NoError(t, json.Unmarshal([]byte(body), &r))
		assert.Equal(t, 10313, r.Header.Code)
		assert.Equal(t, "app_id and api_key does not match", r.Header.Message)
	})
	t.Run("websocket without authorization", func(t *testing.T) {
		_, resp, err := dialWS(t, e.wsURL("/v1/private/echo"))
		require.Error(t, err)
		require.NotNil(t, resp)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		b, _ := io.ReadAll(resp.Body)
		assert.Equal(t, `{"message":"Unauthorized"}`, string(b))
	})
	t.Run("websocket app_id mismatch", func(t *testing.T) {
		conn, _, err := dialWS(t, signURL(t, e.wsURL("/v1/private/echo"), "GET", app1, now))
		require.NoError(t, err)
		send(t, conn, frame("nobody", "", 0, 0))
		r := readResponse(t, conn)
		assert.Equal(t, 10313, r.Header.Code)
		ce := readClose(t, conn)
		assert.Equal(t, websocket.CloseNormalClosure, ce.Code)
		assert.Equal(t, "app_id and api_key does not match", ce.Text)
	})
	t.Run("success", func(t *testing.T) {
		st, body, _ := post(t, signURL(t, path, "POST", app1, now), onceBody("app1"))
		require.Equal(t, http.StatusOK, st, body)
		assert.Equal(t, "app1", e.atom.lastCall().GetHeader()["app_id"])
	})
	assert.Equal(t, 2.0, metricValue(t, e.reg, "asf_webgate_auth_failures_total", map[string]string{"reason": "mismatch"}))
	assert.Equal(t, 1.0, metricValue(t, e.reg, "asf_webgate_auth_failures_total", map[string]string{"reason": "date"}))
}

func TestAuthHeaderFormWithDigest(t *testing.T) {
	e := start(t, nil, defaultFiles())
	body := []byte(onceBody("app1"))
	sum := sha256.Sum256(body)
	digest := "SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])
	date := time.Now().UTC().Format(http.TimeFormat)
	host := e.srv.HTTPAddr()
	origin := "host: " + host + "\ndate: " + date + "\nPOST /v1/private/echo HTTP/1.1\ndigest: " + digest
	m := hmac.New(sha256.New, []byte("secret1"))
	m.Write([]byte(origin))
	sig := base64.StdEncoding.EncodeToString(m.Sum(nil))
	do := func(b []byte) (int, string) {
		req, err := http.NewRequest(http.MethodPost, e.url("/v1/private/echo"), bytes.NewReader(b))
		require.NoError(t, err)
		req.Header.Set("Date", date)
		req.Header.Set("Digest", digest)
		req.Header.Set("Authorization", `hmac api_key="key1", algorithm="hmac-sha256", headers="host date request-line digest", signature="`+sig+`"`)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	st, out := do(body)
	require.Equal(t, http.StatusOK, st, out)
	st, out = do(bytes.Replace(body, []byte("aGk="), []byte("aGE="), 1))
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Equal(t, `{"message":"HMAC signature does not match"}`, out)
}

func TestQPSLimit(t *testing.T) {
	e := start(t, nil, defaultFiles())
	path := e.url("/v1/private/echo")
	st, body, _ := post(t, signURL(t, path, "POST", app3, time.Now()), onceBody("app3"))
	require.Equal(t, http.StatusOK, st, body)
	st, body, _ = post(t, signURL(t, path, "POST", app3, time.Now()), onceBody("app3"))
	assert.Equal(t, http.StatusTooManyRequests, st)
	var r response
	require.NoError(t, json.Unmarshal([]byte(body), &r), body)
	assert.Equal(t, 11202, r.Header.Code)
	assert.Equal(t, "qps limit exceeded", r.Header.Message)
	assert.NotEmpty(t, r.Header.Sid)
}

func TestConnectionLimitsAndHotReload(t *testing.T) {
	e := start(t, nil, defaultFiles())
	open := func() *websocket.Conn {
		conn, _, err := dialWS(t, signURL(t, e.wsURL("/v1/private/echo"), "GET", app1, time.Now()))
		require.NoError(t, err)
		send(t, conn, frame("app1", "", 0, 0))
		readResponse(t, conn)
		return conn
	}
	c1, c2 := open(), open()
	_, resp, err := dialWS(t, signURL(t, e.wsURL("/v1/private/echo"), "GET", app1, time.Now()))
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	b, _ := io.ReadAll(resp.Body)
	assert.Equal(t, `{"message":"max connections exceeded"}`, string(b))

	// Lowering the limit closes the newest excess connection with a clear code.
	rev := e.polaris.push("webgate", "apps.json", strings.Replace(appsJSON, `"max_sessions":2`, `"max_sessions":1`, 1))
	r := readResponse(t, c2)
	assert.Equal(t, 11203, r.Header.Code)
	assert.Equal(t, "max connections exceeded", r.Header.Message)
	ce := readClose(t, c2)
	assert.Equal(t, websocket.CloseNormalClosure, ce.Code)
	assert.Equal(t, "max connections exceeded", ce.Text)
	testpoll.Until(t, 5*time.Second, "apply report", func() bool { r := e.polaris.report(rev); return r != nil && r.GetApplied() })

	// The surviving session goes on.
	send(t, c1, frame("app1", "", 2, 1))
	r = readResponse(t, c1)
	require.Equal(t, 0, r.Header.Code, r.Header.Message)
	assert.Equal(t, websocket.CloseNormalClosure, readClose(t, c1).Code)
	testpoll.Until(t, 5*time.Second, "leases released", func() bool { return e.srv.limiter.Active("app1") == 0 })

	// A bad apps revision is rejected and the previous apps stay.
	rev = e.polaris.push("webgate", "apps.json", `{"apps":[{"app_id":"x"}]}`)
	testpoll.Until(t, 5*time.Second, "reject report", func() bool { r := e.polaris.report(rev); return r != nil && !r.GetApplied() && r.GetReason() != "" })
	st, body, _ := post(t, signURL(t, e.url("/v1/private/echo"), "POST", app1, time.Now()), onceBody("app1"))
	require.Equal(t, http.StatusOK, st, body)

	// Revoking the key applies to the next request at once.
	rev = e.polaris.push("webgate", "apps.json", `{"apps":[{"app_id":"app3","api_key":"key3","api_secret":"secret3"}]}`)
	testpoll.Until(t, 5*time.Second, "apply report", func() bool { r := e.polaris.report(rev); return r != nil })
	st, body, _ = post(t, signURL(t, e.url("/v1/private/echo"), "POST", app1, time.Now()), onceBody("app1"))
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Equal(t, `{"message":"HMAC signature cannot be verified"}`, body)
}

func TestDemoAppWithoutAppsConfig(t *testing.T) {
	files := defaultFiles()
	delete(files, "webgate/apps.json")
	e := start(t, func(c *Config) { c.DemoApp = "demo:dkey:dsecret" }, files)
	st, body, _ := post(t, signURL(t, e.url("/v1/private/echo"), "POST", creds{"dkey", "dsecret"}, time.Now()), onceBody("demo"))
	require.Equal(t, http.StatusOK, st, body)
	// Once an apps config exists, it replaces the demo app.
	rev := e.polaris.push("webgate", "apps.json", appsJSON)
	testpoll.Until(t, 5*time.Second, "apply", func() bool { return e.polaris.report(rev) != nil })
	st, _, _ = post(t, signURL(t, e.url("/v1/private/echo"), "POST", creds{"dkey", "dsecret"}, time.Now()), onceBody("demo"))
	assert.Equal(t, http.StatusUnauthorized, st)
}

func TestSchemaValidationAndRouting(t *testing.T) {
	e := start(t, func(c *Config) { c.Auth = "off"; c.RequireSchema = true }, defaultFiles())
	st, body, _ := post(t, e.url("/v1/private/echo"), `{"header":{"app_id":"a"},"payload":{"input":{"seq":1000,"text":""}}}`)
	assert.Equal(t, http.StatusBadRequest, st)
	var r response
	require.NoError(t, json.Unmarshal([]byte(body), &r), body)
	assert.Equal(t, 10163, r.Header.Code)
	assert.Contains(t, r.Header.Message, "/payload/input/seq")
	assert.Contains(t, r.Header.Message, "100")

	// schemaoutput types the echoed attributes: seq is a string for capability echo.
	st, body, _ = post(t, e.url("/v1/private/echo"), onceBody("a"))
	require.Equal(t, http.StatusOK, st, body)
	assert.Contains(t, body, `"seq":"1"`)
	assert.Contains(t, body, `"status":3`)

	st, body, _ = post(t, e.url("/asr/v2/recognize"), onceBody("a"))
	require.Equal(t, http.StatusOK, st, body)
	assert.Equal(t, "asr", e.atom.lastCall().GetCapability(), "found by the schema's route")
	st, _, _ = post(t, e.url("/v1/private/anything?serviceId=echo"), onceBody("a"))
	assert.Equal(t, http.StatusOK, st)

	for _, p := range []string{"/v1/private/unknown", "/nowhere", "/v1/private/"} {
		st, body, _ = post(t, e.url(p), onceBody("a"))
		assert.Equal(t, http.StatusNotFound, st, p)
		assert.Equal(t, `{"message":"not found"}`, body, p)
	}
}

func TestSchemaHotReloadMidSession(t *testing.T) {
	e := start(t, func(c *Config) { c.Auth = "off" }, defaultFiles())
	conn, _, err := dialWS(t, e.wsURL("/v1/private/echo"))
	require.NoError(t, err)
	send(t, conn, frame("a", "", 0, 0))
	r := readResponse(t, conn)
	require.Equal(t, 0, r.Header.Code, r.Header.Message)
	assert.Equal(t, `"0"`, string(r.Payload["input"]["seq"]))

	// A new revision types seq as a number and forbids seq > 1; the running session keeps
	// the revision it started with.
	v2 := strings.Replace(strings.Replace(echoSchema, `"seq":{"type":"string"}`, `"seq":{"type":"integer"}`, 1), `"maximum":100`, `"maximum":1`, 1)
	rev := e.polaris.push("capabilities", "schema_echo.json", v2)
	testpoll.Until(t, 5*time.Second, "schema applied", func() bool { s, _ := e.srv.Schemas().Get("echo"); return s.Revision() == rev })

	send(t, conn, frame("a", "", 1, 5))
	r = readResponse(t, conn)
	require.Equal(t, 0, r.Header.Code, r.Header.Message)
	assert.Equal(t, `"5"`, string(r.Payload["input"]["seq"]))
	send(t, conn, frame("a", "", 2, 6))
	r = readResponse(t, conn)
	require.Equal(t, 0, r.Header.Code, r.Header.Message)
	assert.Equal(t, 2, *r.Header.Status)
	assert.Equal(t, websocket.CloseNormalClosure, readClose(t, conn).Code)

	conn2, _, err := dialWS(t, e.wsURL("/v1/private/echo"))
	require.NoError(t, err)
	send(t, conn2, frame("a", "", 0, 1))
	r = readResponse(t, conn2)
	require.Equal(t, 0, r.Header.Code, r.Header.Message)
	assert.Equal(t, `1`, string(r.Payload["input"]["seq"]), "new sessions use the new revision")
	send(t, conn2, frame("a", "", 1, 2))
	r = readResponse(t, conn2)
	assert.Equal(t, 10163, r.Header.Code)

	// A broken revision is refused and reported; the previous one stays.
	bad := e.polaris.push("capabilities", "schema_echo.json", `{"meta":{"serviceId":"echo"},"schemainput":{"type":42}}`)
	testpoll.Until(t, 5*time.Second, "rejection", func() bool { r := e.polaris.report(bad); return r != nil && !r.GetApplied() })
	s, _ := e.srv.Schemas().Get("echo")
	assert.Equal(t, rev, s.Revision())
}

func TestMultiplexIsolation(t *testing.T) {
	e := start(t, nil, defaultFiles())
	conn, _, err := dialWS(t, signURL(t, e.wsURL("/v1/private/echo"), "GET", app1, time.Now())+"&stream_mode=multiplex")
	require.NoError(t, err)
	send(t, conn, frame("app1", "a", 0, 0))
	send(t, conn, frame("app1", "b", 0, 0))
	got := map[string]response{}
	for range 2 {
		r := readResponse(t, conn)
		got[r.Header.Cid] = r
	}
	require.Equal(t, 0, got["a"].Header.Code)
	require.Equal(t, 0, got["b"].Header.Code)
	assert.NotEqual(t, got["a"].Header.Sid, got["b"].Header.Sid, "one sid per sub-session")

	send(t, conn, `{"header":{"cid":"b","status":1},"payload":{"input":{"text":"%%"}}}`)
	r := readResponse(t, conn)
	assert.Equal(t, "b", r.Header.Cid)
	assert.Equal(t, 10163, r.Header.Code)
	send(t, conn, `{"header":{"status":1},"payload":{"input":{"text":""}}}`)
	r = readResponse(t, conn)
	assert.Equal(t, 10163, r.Header.Code)
	assert.Contains(t, r.Header.Message, "cid")

	send(t, conn, frame("app1", "a", 1, 1))
	send(t, conn, frame("app1", "a", 2, 2))
	for i := 1; i <= 2; i++ {
		r = readResponse(t, conn)
		assert.Equal(t, "a", r.Header.Cid)
		require.Equal(t, 0, r.Header.Code, r.Header.Message)
		assert.Equal(t, i, *r.Header.Status)
	}
	// The socket stays open for new sub-sessions.
	send(t, conn, frame("app1", "c", 0, 0))
	r = readResponse(t, conn)
	assert.Equal(t, "c", r.Header.Cid)
	assert.Equal(t, 0, r.Header.Code)
	require.NoError(t, conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")))
	testpoll.Until(t, 5*time.Second, "streams ended", func() bool {
		return metricValue(t, e.reg, "asf_webgate_sessions_active", nil) == 0
	})
	assert.Equal(t, 2.0, metricValue(t, e.reg, "asf_webgate_requests_total", map[string]string{"capability": "echo", "kind": "stream", "code": "10222"})+
		metricValue(t, e.reg, "asf_webgate_requests_total", map[string]string{"capability": "echo", "kind": "stream", "code": "10163"}))
}

func TestWebSocketLimitsAndTimeouts(t *testing.T) {
	e := start(t, func(c *Config) { c.Auth = "off"; c.MaxFrameBytes = 256; c.MaxPayloadBytes = 4 }, defaultFiles())
	conn, _, err := dialWS(t, e.wsURL("/v1/private/echo"))
	require.NoError(t, err)
	send(t, conn, `{"payload":{"input":{"text":"`+strings.Repeat("A", 400)+`"}}}`)
	r := readResponse(t, conn)
	assert.Equal(t, 10163, r.Header.Code)
	assert.Contains(t, r.Header.Message, "larger than 256 bytes")
	assert.Equal(t, websocket.CloseNormalClosure, readClose(t, conn).Code)

	conn, _, err = dialWS(t, e.wsURL("/v1/private/echo"))
	require.NoError(t, err)
	send(t, conn, `{"header":{"app_id":"a"},"payload":{"input":{"text":"AAAAAAAA"}}}`)
	r = readResponse(t, conn)
	assert.Equal(t, 10163, r.Header.Code)
	assert.Contains(t, r.Header.Message, "decoded payload of 6 bytes is larger than 4 bytes")

	// hang's schema sets read_timeout 0.3 s, overriding the default 15 s.
	conn, _, err = dialWS(t, e.wsURL("/v1/private/hang"))
	require.NoError(t, err)
	send(t, conn, frame("a", "", 0, 0))
	r = readResponse(t, conn)
	assert.Equal(t, 10200, r.Header.Code)
	assert.Equal(t, "read timeout", readClose(t, conn).Text)
	testpoll.Until(t, 5*time.Second, "stream aborted", func() bool { return e.atom.cancelled.Load() == 1 })
}

func TestAbnormalCloseAbortsAtomStream(t *testing.T) {
	e := start(t, func(c *Config) { c.Auth = "off" }, defaultFiles())
	conn, _, err := dialWS(t, e.wsURL("/v1/private/hang"))
	require.NoError(t, err)
	send(t, conn, frame("a", "", 0, 0))
	testpoll.Until(t, 5*time.Second, "stream", func() bool { return e.atom.opened.Load() == 1 })
	require.NoError(t, conn.UnderlyingConn().Close())
	testpoll.Until(t, 5*time.Second, "stream aborted", func() bool { return e.atom.cancelled.Load() == 1 })
}

func TestOIP(t *testing.T) {
	e := start(t, func(c *Config) { c.RequireSchema = true }, defaultFiles())
	e.polaris.registry.setLoaders("echo", loaderState("echo", "1.0", "127.0.0.1:5090", true))
	st, body := get(t, e.url("/v2/health/live"))
	assert.Equal(t, 200, st)
	assert.JSONEq(t, `{"live":true}`, body)
	st, body = get(t, e.url("/v2/health/ready"))
	assert.Equal(t, 200, st)
	assert.JSONEq(t, `{"ready":true}`, body)

	st, body = get(t, signURL(t, e.url("/v2/models/echo"), "GET", app1, time.Now()))
	require.Equal(t, 200, st, body)
	assert.JSONEq(t, `{"name":"echo","platform":"asf","versions":["1.0"],"inputs":[{"name":"input","datatype":"BYTES","shape":[-1]}],"outputs":[{"name":"result","datatype":"BYTES","shape":[-1]}]}`, body)
	st, body = get(t, signURL(t, e.url("/v2/models/echo/ready"), "GET", app1, time.Now()))
	assert.Equal(t, 200, st)
	assert.JSONEq(t, `{"name":"echo","ready":true}`, body)
	st, _ = get(t, e.url("/v2/models/echo"))
	assert.Equal(t, 401, st, "models need authentication")

	infer := `{"id":"r1","parameters":{"eos":1000},"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","parameters":{"encoding":"utf8"},"data":["hello"]},
	  {"name":"pcm","shape":[2],"datatype":"INT16","data":[1,-2]}],"outputs":[{"name":"result","parameters":{"format":"json"}}]}`
	st, body, hdr := post(t, signURL(t, e.url("/v2/models/echo/infer"), "POST", app1, time.Now()), infer)
	require.Equal(t, 200, st, body)
	assert.NotEmpty(t, hdr.Get("X-Asf-Sid"))
	var out struct {
		ModelName, ModelVersion, ID string
		Outputs                     []struct {
			Name       string
			Datatype   string
			Data       []string
			Parameters map[string]any
		}
	}
	require.NoError(t, json.Unmarshal([]byte(strings.NewReplacer("model_name", "ModelName", "model_version", "ModelVersion").Replace(body)), &out))
	assert.Equal(t, "echo", out.ModelName)
	assert.Equal(t, "1.0", out.ModelVersion)
	assert.Equal(t, "r1", out.ID)
	require.Len(t, out.Outputs, 2)
	assert.Equal(t, "input", out.Outputs[0].Name)
	assert.Equal(t, []string{"hello"}, out.Outputs[0].Data)
	assert.Equal(t, "utf8", out.Outputs[0].Parameters["encoding"])
	assert.Equal(t, "text", out.Outputs[0].Parameters["data_type"])
	assert.Equal(t, "pcm", out.Outputs[1].Name)
	assert.Equal(t, []string{base64.StdEncoding.EncodeToString([]byte{1, 0, 0xfe, 0xff})}, out.Outputs[1].Data)
	assert.Equal(t, "base64", out.Outputs[1].Parameters["content_encoding"])
	f := e.atom.lastCall()
	assert.Equal(t, "app1", f.GetHeader()["app_id"])
	assert.Equal(t, "1000", f.GetParams()["eos"])
	assert.Equal(t, "json", f.GetAccepts()["result"].GetAttributes()["format"])

	st, body, _ = post(t, signURL(t, e.url("/v2/models/nope/infer"), "POST", app1, time.Now()), infer)
	assert.Equal(t, 404, st)
	assert.Contains(t, body, `"error"`)
	st, body, _ = post(t, signURL(t, e.url("/v2/models/echo/infer"), "POST", app1, time.Now()), `{"inputs":[]}`)
	assert.Equal(t, 400, st)
	assert.JSONEq(t, `{"error":"infer request has no inputs"}`, body)
}

func TestShutdownWithoutStart(t *testing.T) {
	srv, err := New(testConfig("127.0.0.1:1"), zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, srv.Shutdown(context.Background()))
}
