package cli_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/sdk/go/ase"
	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/athenaserving/asf/tools/asectl/cli"
)

// echoSchema is a schema for the suite's echo capability with a WebAPI 2.0 route.
const echoSchema = `{
  "meta": {"serviceId": "echo", "version": "v1"},
  "schemainput": {"type": "object", "properties": {"payload": {"type": "object",
    "properties": {"input": {"type": "object"}}, "additionalProperties": false}}},
  "webapi": {
    "route": "/v2/echo",
    "request": {"data": {"mapping": [{"data_type": "text", "rule": [
      {"src": "$.data.text", "dst": "$.payload.input.text"},
      {"src": "$.data.encoding", "dst": "$.payload.input.encoding"},
      {"src": "$.data.status", "dst": "$.payload.input.status"}]}]}},
    "response": {"data": {"mapping": [{"data_type": "text", "rule": [
      {"src": "$.payload.input.text", "dst": "$.data.result"}]}]}}
  }
}`

func TestSchemasAppsAndCalls(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1})
	c := newCtl(t)
	c.login(s)
	dir := t.TempDir()
	file := filepath.Join(dir, "schema_echo.json")
	_ = os.WriteFile(file, []byte(echoSchema), 0o644)
	bad := filepath.Join(dir, "schema_bad.json")
	_ = os.WriteFile(bad, []byte(`{"meta":{}}`), 0o644)

	// schema validate | push | get
	if out := c.ok("schema", "validate", file); !strings.Contains(out, "/v1/private/echo") {
		t.Fatalf("validate:\n%s", out)
	}
	c.fails(cli.ExitError, "schema_bad.json", "schema", "validate", bad)
	c.fails(cli.ExitError, "schema_bad.json", "schema", "push", bad)
	var pushed struct {
		Schemas []struct {
			ID       string `json:"service_id"`
			WebAPI   string `json:"webapi_route"`
			Revision int    `json:"revision"`
		} `json:"schemas"`
	}
	if err := json.Unmarshal([]byte(c.ok("schema", "push", file, "-o", "json")), &pushed); err != nil ||
		pushed.Schemas[0].Revision != 1 || pushed.Schemas[0].WebAPI != "/v2/echo" {
		t.Fatalf("push: %+v %v", pushed, err)
	}
	if out := c.ok("schema", "get", "echo"); out != echoSchema {
		t.Fatalf("get:\n%s", out)
	}
	c.fails(cli.ExitError, "asectl schema push", "schema", "get", "nothing")
	testpoll.Until(t, 10*time.Second, "webgate serves the schema", func() bool { _, ok := s.Webgate.Schemas().Get("echo"); return ok })

	// Calls as webgate's demo app, before any app exists.
	demo := []string{"--app-id", suitetest.DemoApp.AppID, "--api-key", suitetest.DemoApp.APIKey, "--api-secret", suitetest.DemoApp.APISecret}
	if out := c.ok(append([]string{"call", "once", "echo", "--text", "hello"}, demo...)...); out != "hello\n" {
		t.Fatalf("call once: %q", out)
	}

	// A signed URL for curl and other clients.
	signed := strings.TrimSpace(c.ok(append([]string{"call", "sign", "echo"}, demo...)...))
	if !strings.HasPrefix(signed, s.URL()+"/v1/private/echo?authorization=") {
		t.Fatalf("call sign: %s", signed)
	}
	resp, err := http.Post(signed, "application/json", strings.NewReader(`{"header":{"app_id":"e2e"},"payload":{"input":{"text":"aGk="}}}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST to the signed URL: %v %v", resp, err)
	}
	resp.Body.Close()
	if ws := c.ok(append([]string{"call", "sign", "echo", "--method", "get"}, demo...)...); !strings.HasPrefix(ws, "ws://") {
		t.Fatalf("call sign --method get: %s", ws)
	}

	// app create | ls | limits | rotate-key | delete
	var app struct{ AppID, APIKey, APISecret string }
	out := c.ok("app", "create", "app1", "--capabilities", "echo", "--qps", "100", "--save", "-o", "json")
	if err := json.Unmarshal([]byte(out), &struct {
		AppID     *string `json:"app_id"`
		APIKey    *string `json:"api_key"`
		APISecret *string `json:"api_secret"`
	}{&app.AppID, &app.APIKey, &app.APISecret}); err != nil || app.APISecret == "" {
		t.Fatalf("create: %s %v", out, err)
	}
	c.fails(cli.ExitError, "app exists", "app", "create", "app1")
	ls := c.ok("app", "ls")
	if !strings.Contains(ls, "app1") || strings.Contains(ls, app.APISecret) {
		t.Fatalf("ls shows the app without its secret:\n%s", ls)
	}
	if out := c.ok("cfg", "get", "webgate/v1/apps.json"); !strings.Contains(out, app.APIKey) {
		t.Fatalf("apps.json: %s", out)
	}
	// The saved credentials sign calls once webgate applied apps.json (the demo app is gone).
	testpoll.Until(t, 10*time.Second, "webgate accepts app1", func() bool {
		return c.run("call", "once", "echo", "--text", "as app1").out == "as app1\n"
	})
	c.fails(cli.ExitError, "check the app's key", append([]string{"call", "once", "echo"}, demo...)...)
	if out := c.ok("call", "once", "echo", "--text", "header form", "--header-auth"); out != "header form\n" {
		t.Fatalf("header form: %q", out)
	}
	// Payload from stdin, JSON output.
	r := c.runIn(t.Context(), "from stdin", "call", "once", "echo", "--file", "-", "-o", "json")
	var doc struct {
		Header struct {
			Code int    `json:"code"`
			Sid  string `json:"sid"`
		} `json:"header"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.out), &doc) != nil || doc.Header.Sid == "" {
		t.Fatalf("once -o json: %+v", r)
	}
	// Stream: every frame comes back, in order, and ends with status 2.
	if out := c.ok("call", "stream", "echo", "--text", "abcdef", "--frames", "3"); out != "ab\ncd\nef\n" {
		t.Fatalf("stream: %q", out)
	}
	// Audio outputs go to files.
	pcm := filepath.Join(dir, "in.pcm")
	_ = os.WriteFile(pcm, []byte(strings.Repeat("\x01\x02", 1000)), 0o644)
	outDir := filepath.Join(dir, "out")
	c.ok("call", "once", "echo", "--input", "input:audio", "--file", pcm, "--out-dir", outDir, "--wav")
	if b, err := os.ReadFile(filepath.Join(outDir, "input.pcm")); err != nil || len(b) != 2000 {
		t.Fatalf("audio output: %d bytes, %v", len(b), err)
	}
	if b, err := os.ReadFile(filepath.Join(outDir, "input.wav")); err != nil || len(b) != 2044 || string(b[:4]) != "RIFF" {
		t.Fatalf("wav output: %d bytes, %v", len(b), err)
	}
	// Typed parameters and item attributes reach the engine (echo returns the attributes).
	var typed struct {
		Payload map[string]map[string]any `json:"payload"`
	}
	out = c.ok("call", "once", "echo", "--attr", "seq=7", "--attr", "lang=en", "--param-json", "n=3", "-o", "json")
	if err := json.Unmarshal([]byte(out), &typed); err != nil || typed.Payload["input"]["seq"] != 7.0 || typed.Payload["input"]["lang"] != "en" {
		t.Fatalf("attributes: %s %v", out, err)
	}
	c.fails(cli.ExitUsage, "not JSON", "call", "once", "echo", "--param-json", "n={")

	// WebAPI 2.0 on the schema's webapi.route.
	if out := c.ok("call", "once", "/v2/echo", "--webapi", "--text", "hi"); out != "aGk=\n" {
		t.Fatalf("call once --webapi: %q", out)
	}
	if out := c.ok("call", "once", "/v2/echo", "--webapi", "--text", "hi", "-o", "json"); !strings.Contains(out, `"code": 0`) {
		t.Fatalf("call once --webapi -o json: %s", out)
	}
	c.fails(cli.ExitUsage, "webapi.route", "call", "once", "echo", "--webapi")
	if out := c.ok("call", "stream", "/v2/echo", "--webapi", "--text", "abcd", "--frames", "2"); out != "YWI=\nY2Q=\n" {
		t.Fatalf("call stream --webapi: %q", out)
	}

	// Errors carry the edge's code and say what to do.
	c.fails(cli.ExitError, "10163", "call", "once", "echo", "--input", "other:text")
	c.fails(cli.ExitUsage, "not one of", "call", "once", "echo", "--input", "x:blob")
	c.fails(cli.ExitUsage, "key=value", "call", "once", "echo", "--param", "novalue")

	off := c.ok("app", "limits", "app1", "--disable", "--max-sessions", "3")
	if !strings.Contains(off, "true") {
		t.Fatalf("limits: %s", off)
	}
	testpoll.Until(t, 10*time.Second, "webgate refuses the disabled app", func() bool { return c.run("call", "once", "echo").code == cli.ExitError })
	c.ok("app", "limits", "app1", "--enable")
	rot := c.ok("app", "rotate-key", "app1", "--save")
	if !strings.Contains(rot, "api_secret:") || strings.Contains(rot, app.APISecret) {
		t.Fatalf("rotate-key: %s", rot)
	}
	testpoll.Until(t, 10*time.Second, "webgate accepts the new key", func() bool { return c.run("call", "once", "echo").code == 0 })
	c.ok("app", "delete", "app1")
	c.fails(cli.ExitError, "no such app", "app", "delete", "app1")
	if out := c.ok("app", "ls", "-o", "json"); !strings.Contains(out, `"apps": []`) {
		t.Fatalf("ls after delete: %s", out)
	}
}

// The SDK against the real edge: multiplexed sub-sessions and WebAPI 2.0.
func TestSDKAgainstTheEdge(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1})
	file := filepath.Join(t.TempDir(), "schema_echo.json")
	_ = os.WriteFile(file, []byte(echoSchema), 0o644)
	s.PushSchema(file)
	cl := ase.New(s.URL(), ase.Credentials{AppID: suitetest.DemoApp.AppID, APIKey: suitetest.DemoApp.APIKey, APISecret: suitetest.DemoApp.APISecret})

	m, err := cl.Multiplex(t.Context(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	subs := map[string]*ase.SubSession{}
	for _, cid := range []string{"a", "b", "c"} {
		sub, err := m.Session(cid)
		if err != nil {
			t.Fatal(err)
		}
		subs[cid] = sub
		if err := sub.Send(ase.StatusBegin, ase.Request{Payload: []ase.Input{ase.Text("input", cid+"0")}}); err != nil {
			t.Fatal(err)
		}
	}
	for cid, sub := range subs {
		if err := sub.Send(ase.StatusEnd, ase.Request{Payload: []ase.Input{ase.Text("input", cid+"1")}}); err != nil {
			t.Fatal(err)
		}
	}
	for cid, sub := range subs {
		var got []string
		for {
			r, err := sub.Recv(t.Context())
			if err != nil {
				break
			}
			if r.Cid != cid || r.Sid == "" {
				t.Fatalf("result of %s: %+v", cid, r)
			}
			got = append(got, string(r.Outputs["input"].Data))
		}
		if strings.Join(got, ",") != cid+"0,"+cid+"1" {
			t.Fatalf("sub-session %s: %v", cid, got)
		}
	}

	w, err := cl.WebAPIOnce(t.Context(), "/v2/echo", ase.WebAPIRequest{Data: map[string]any{"encoding": "utf8", "text": "aGVsbG8="}})
	if err != nil || w.Code != 0 || w.Sid == "" || string(w.Data["result"]) != `"aGVsbG8="` {
		t.Fatalf("WebAPI once: %+v %v", w, err)
	}
	_, err = cl.WebAPIOnce(t.Context(), "/v2/echo", ase.WebAPIRequest{Data: map[string]any{"encoding": "utf8", "text": "not base64!"}})
	if ase.CodeOf(err) != 10163 || ase.SidOf(err) == "" {
		t.Fatalf("WebAPI error: %v", err)
	}
	ws, err := cl.WebAPIStream(t.Context(), "/v2/echo")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for i, st := range []int{ase.StatusBegin, ase.StatusEnd} {
		if err := ws.Send(st, ase.WebAPIRequest{Data: map[string]any{"encoding": "utf8", "text": []string{"YQ==", "Yg=="}[i]}}); err != nil {
			t.Fatal(err)
		}
	}
	var statuses []int
	for {
		r, err := ws.Recv()
		if err != nil {
			break
		}
		statuses = append(statuses, r.Status)
	}
	if len(statuses) != 2 || statuses[1] != ase.StatusEnd {
		t.Fatalf("WebAPI stream statuses %v", statuses)
	}
	// A wrong secret is refused by the real verifier with its exact message.
	bad := ase.New(s.URL(), ase.Credentials{AppID: "e2e", APIKey: suitetest.DemoApp.APIKey, APISecret: "wrong"})
	bad.HeaderAuth = true
	_, err = bad.Once(t.Context(), "echo", ase.Request{Payload: []ase.Input{ase.Text("input", "x")}})
	var ae *ase.Error
	if !errorsAs(err, &ae) || ae.HTTPStatus != 401 || ae.Message != "HMAC signature does not match" {
		t.Fatalf("wrong secret: %#v", err)
	}
}
