package forward

import (
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
)

const goodSpec = `
upstreams: [http://127.0.0.1:1/a, https://api.example.com/b]
method: post
timeout: 2s
retries: 1
headers: {X-Tenant: acme, X-Key: "env:FWD_KEY"}
auth: {type: bearer, token: "env:FWD_TOKEN"}
text: plain
request:
  mapping:
    - data_type: text
      rule:
        - {src: $.payload.text.text, dst: $.body.q}
        - {src: $.parameter.translate.to, dst: $.query.to}
response:
  mapping:
    - data_type: text
      rule: [{src: $.body.translation, dst: $.payload.result.text}]
session:
  upstreams: [ws://127.0.0.1:1/ws]
`

func env(k string) string {
	return map[string]string{"FWD_KEY": "k1", "FWD_TOKEN": "t1"}[k]
}

func TestParseSpec(t *testing.T) {
	s, err := ParseSpec([]byte(goodSpec), env)
	if err != nil {
		t.Fatal(err)
	}
	if s.Method != "POST" || s.Timeout != 2*time.Second || s.Retries != 1 || len(s.Upstreams) != 2 || !s.PlainText {
		t.Fatalf("spec %+v", s)
	}
	if s.Headers["X-Key"] != "k1" || s.Auth.Type != AuthBearer || s.Auth.Token != "t1" {
		t.Fatalf("headers %v auth %+v", s.Headers, s.Auth)
	}
	if s.Request.Len() != 2 || s.Response.Len() != 1 || s.SessionRequest != s.Request || s.SessionResponse != s.Response {
		t.Fatal("mappings")
	}
	// Defaults, and JSON is accepted.
	s, err = ParseSpec([]byte(`{"upstreams":["http://h/x"],"auth":{"type":"hmac","api_key":"k","api_secret":"s","form":"url","app_id":"a1"}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Method != "POST" || s.Timeout != DefaultTimeout || s.Retries != DefaultRetries || s.MaxResponseBytes != DefaultMaxResponseBytes ||
		s.Request.Len() != 0 || !s.Auth.URLForm || s.Auth.AppID != "a1" {
		t.Fatalf("defaults %+v", s)
	}
}

// A bad spec is refused with 10107 and a message naming the key (and, for a rule, the
// rule and the reason).
func TestParseSpecRefusals(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{``, "empty"},
		{`upstreams: http://h`, "cannot unmarshal"},
		{`upstreams: [http://h]
colour: red`, "field colour not found"},
		{`method: GET`, "at least one URL"},
		{`upstreams: [ftp://h/x]`, `"ftp://h/x": want a http:// or https:// URL`},
		{`upstreams: ["http:///x"]`, "no host"},
		{`session: {upstreams: [http://h/x]}`, "want a ws:// or wss:// URL"},
		{`{upstreams: [http://h], method: DELETE}`, `method "DELETE"`},
		{`{upstreams: [http://h], timeout: -1s}`, "timeout -1s"},
		{`{upstreams: [http://h], timeout: soon}`, "cannot unmarshal"},
		{`{upstreams: [http://h], retries: 11}`, "retries 11"},
		{`{upstreams: [http://h], text: utf16}`, `text "utf16"`},
		{`{upstreams: [http://h], auth: {type: basic}}`, `auth.type "basic"`},
		{`{upstreams: [http://h], auth: {token: x}}`, "credentials given without auth.type"},
		{`{upstreams: [http://h], auth: {type: bearer}}`, "needs auth.token"},
		{`{upstreams: [http://h], auth: {type: bearer, token: "env:NOPE"}}`, "NOPE is empty"},
		{`{upstreams: [http://h], auth: {type: hmac, api_key: k}}`, "needs auth.api_key and auth.api_secret"},
		{`{upstreams: [http://h], auth: {type: hmac, api_key: k, api_secret: s, form: body}}`, `auth.form "body"`},
		{`{upstreams: [http://h], headers: {"Bad Name": x}}`, "not a valid header"},
		{`{upstreams: [http://h], ca: /nonexistent/ca.pem}`, "ca:"},
		{`{upstreams: [http://h], request: {mapping: [{data_type: text, rule: [{src: $.body.q, dst: $.body.q}]}]}}`,
			`src: path "$.body.q" must start with $.header or $.parameter or $.payload`},
		{`{upstreams: [http://h], response: {mapping: [{data_type: audio, rule: [{src: $.body.a, dst: $.payload.out.text}]}]}}`,
			"data field text does not match data_type audio"},
		{`{upstreams: [http://h], response: {mapping: {data_type: text, rule: [{src: $.body.a, dst: $.header}]}}}`, "must name a field below"},
		{`{upstreams: [http://h], session: {request: {mapping: 3}}}`, "session.request.mapping"},
	} {
		_, err := ParseSpec([]byte(tc.spec), env)
		if err == nil || aserr.CodeOf(err) != aserr.ErrInvalidParam.Code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant 10107 with %q", tc.spec, err, tc.want)
		}
	}
}

func TestReadSpecMissingFile(t *testing.T) {
	_, err := ReadSpec(t.TempDir()+"/none.yaml", nil)
	if aserr.CodeOf(err) != aserr.ErrInvalidParam.Code {
		t.Fatalf("got %v", err)
	}
}

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(goodSpec))
	f.Add([]byte(`{"upstreams":["http://h/x"],"auth":{"type":"hmac","api_key":"k","api_secret":"s"}}`))
	f.Add([]byte(`upstreams: [http://h]
request: {mapping: [{data_type: text, rule: [{value: {a: [1, 2]}, dst: $.body.x}]}]}`))
	f.Add([]byte("upstreams: [&a http://h, *a]\nheaders: {a: *a}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSpec(b, env)
		if err != nil {
			if aserr.CodeOf(err) != aserr.ErrInvalidParam.Code {
				t.Fatalf("error without 10107: %v", err)
			}
			return
		}
		if len(s.Upstreams)+len(s.SessionUpstreams) == 0 || s.Timeout <= 0 || s.MaxResponseBytes <= 0 {
			t.Fatalf("accepted an unusable spec: %+v", s)
		}
	})
}
