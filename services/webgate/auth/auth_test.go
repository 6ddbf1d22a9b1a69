package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testApps = []byte(`{"apps":[
 {"app_id":"app1","api_key":"key1","api_secret":"secret1","capabilities":["ist"],"ip_allow":["10.0.0.0/8","::1"],"qps":2,"max_sessions":2},
 {"app_id":"app2","api_key":"key2","api_secret":"secret2","disabled":true}
]}`)

func authz(key, sig, headers string) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf(`api_key="%s", algorithm="hmac-sha256", headers="%s", signature="%s"`, key, headers, sig)))
}

func signedURLRequest(now time.Time, secret string) Request {
	req := Request{Method: "GET", Path: "/v1/private/ist", Host: "gate:8889", Date: now.UTC().Format(http.TimeFormat), URLForm: true}
	sig := Sign(secret, SignatureOrigin(req, []string{"host", "date", "request-line"}))
	req.Authorization = authz("key1", sig, "host date request-line")
	return req
}

func newAuth(t *testing.T) *Authenticator {
	t.Helper()
	set, err := ParseApps(testApps)
	require.NoError(t, err)
	a := NewAuthenticator(0)
	a.SetApps(set)
	return a
}

func TestSignatureOriginMatchesSpec(t *testing.T) {
	req := Request{Method: "GET", Path: "/v1/private/ist", Host: "api.example.com", Date: "Wed, 10 Jul 2019 07:35:43 GMT"}
	assert.Equal(t, "host: api.example.com\ndate: Wed, 10 Jul 2019 07:35:43 GMT\nGET /v1/private/ist HTTP/1.1",
		SignatureOrigin(req, []string{"host", "date", "request-line"}))
}

func TestAuthenticate(t *testing.T) {
	a := newAuth(t)
	now := time.Now()
	app, err := a.Authenticate(signedURLRequest(now, "secret1"), now)
	require.NoError(t, err)
	assert.Equal(t, "app1", app.ID)

	// The hmac username= form is accepted too.
	req := signedURLRequest(now, "secret1")
	p, _ := base64.StdEncoding.DecodeString(req.Authorization)
	req.Authorization = base64.StdEncoding.EncodeToString([]byte("hmac username=" + string(p)[len("api_key="):]))
	_, err = a.Authenticate(req, now)
	require.NoError(t, err)

	cases := map[string]struct {
		mutate func(*Request)
		want   *Error
	}{
		"missing":     {func(r *Request) { r.Authorization = "" }, ErrMissing},
		"no date":     {func(r *Request) { r.Date = "" }, ErrDate},
		"bad date":    {func(r *Request) { r.Date = "yesterday" }, ErrDate},
		"old date":    {func(r *Request) { r.Date = now.Add(-301 * time.Second).UTC().Format(http.TimeFormat) }, ErrDate},
		"future date": {func(r *Request) { r.Date = now.Add(301 * time.Second).UTC().Format(http.TimeFormat) }, ErrDate},
		"not base64":  {func(r *Request) { r.Authorization = "%%%" }, ErrUnparsable},
		"garbage":     {func(r *Request) { r.Authorization = base64.StdEncoding.EncodeToString([]byte("nonsense")) }, ErrUnparsable},
		"wrong algorithm": {func(r *Request) {
			r.Authorization = base64.StdEncoding.EncodeToString([]byte(`api_key="key1", algorithm="md5", signature="x"`))
		}, ErrUnparsable},
		"date unsigned":  {func(r *Request) { r.Authorization = authz("key1", "x", "host request-line") }, ErrUnparsable},
		"unknown key":    {func(r *Request) { r.Authorization = authz("nokey", "x", "host date request-line") }, ErrUnknownKey},
		"disabled app":   {func(r *Request) { r.Authorization = authz("key2", "x", "host date request-line") }, ErrAppDisabled},
		"wrong secret":   {func(r *Request) { *r = signedURLRequest(now, "other") }, ErrMismatch},
		"other path":     {func(r *Request) { r.Path = "/v1/private/tts" }, ErrMismatch},
		"other method":   {func(r *Request) { r.Method = "POST" }, ErrMismatch},
		"other host":     {func(r *Request) { r.Host = "evil:1" }, ErrMismatch},
		"sig not base64": {func(r *Request) { r.Authorization = authz("key1", "***", "host date request-line") }, ErrMismatch},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := signedURLRequest(now, "secret1")
			tc.mutate(&req)
			_, err := a.Authenticate(req, now)
			var e *Error
			require.True(t, errors.As(err, &e), "error %v", err)
			assert.Equal(t, tc.want.Status, e.Status)
			assert.Equal(t, tc.want.Message, e.Message)
		})
	}
}

func TestAuthenticateHeaderFormWithDigest(t *testing.T) {
	a := newAuth(t)
	now := time.Now()
	body := []byte(`{"header":{"app_id":"app1"}}`)
	req := Request{Method: "POST", Path: "/v1/private/ist", Host: "gate", Date: now.UTC().Format(http.TimeFormat), Digest: BodyDigest(body), HasBody: true}
	hs := []string{"host", "date", "request-line", "digest"}
	sig := Sign("secret1", SignatureOrigin(req, hs))
	req.Authorization = `hmac api_key="key1", algorithm="hmac-sha256", headers="host date request-line digest", signature="` + sig + `"`
	app, err := a.Authenticate(req, now)
	require.NoError(t, err)
	assert.Equal(t, "app1", app.ID)
	assert.Contains(t, SignatureOrigin(req, hs), "\ndigest: SHA-256=")
	require.NoError(t, VerifyDigest(req.Digest, body))
	assert.Equal(t, ErrDigest, VerifyDigest(req.Digest, []byte(`{"tampered":1}`)))
}

// Real clients put the authorization values in single quotes; they verify exactly like
// double-quoted ones, in the URL form and in the header form.
func TestAuthenticateSingleQuotes(t *testing.T) {
	a := newAuth(t)
	now := time.Now()

	t.Run("url form", func(t *testing.T) {
		req := signedURLRequest(now, "secret1")
		dq, err := base64.StdEncoding.DecodeString(req.Authorization)
		require.NoError(t, err)
		sq := strings.ReplaceAll(string(dq), `"`, `'`)
		require.Contains(t, sq, `api_key='key1', algorithm='hmac-sha256', headers='host date request-line', signature='`)
		req.Authorization = base64.StdEncoding.EncodeToString([]byte(sq))
		app, err := a.Authenticate(req, now)
		require.NoError(t, err)
		assert.Equal(t, "app1", app.ID)

		req.Path = "/v1/private/tts"
		_, err = a.Authenticate(req, now)
		assert.Equal(t, ErrMismatch, err, "a single-quoted signature is still checked")
	})

	t.Run("header form", func(t *testing.T) {
		body := []byte(`{"header":{"app_id":"app1"}}`)
		req := Request{Method: "POST", Path: "/v1/private/ist", Host: "gate", Date: now.UTC().Format(http.TimeFormat), Digest: BodyDigest(body), HasBody: true}
		sig := Sign("secret1", SignatureOrigin(req, []string{"host", "date", "request-line", "digest"}))
		req.Authorization = `hmac api_key='key1', algorithm='hmac-sha256', headers='host date request-line digest', signature='` + sig + `'`
		app, err := a.Authenticate(req, now)
		require.NoError(t, err)
		assert.Equal(t, "app1", app.ID)

		req.Digest = BodyDigest([]byte(`{"tampered":1}`))
		_, err = a.Authenticate(req, now)
		assert.Equal(t, ErrMismatch, err, "the single-quoted headers list still signs digest")
	})

	t.Run("mixed and unterminated", func(t *testing.T) {
		p, err := parseParams(`api_key='k"1', algorithm="hmac-sha256", headers='host date request-line', signature="s'g"`)
		require.NoError(t, err)
		assert.Equal(t, Params{APIKey: `k"1`, Algorithm: "hmac-sha256", Headers: []string{"host", "date", "request-line"}, Signature: "s'g"}, p)
		_, err = parseParams(`api_key='k1", signature='s'`)
		assert.Equal(t, ErrUnparsable, err, "a value opened by ' ends only at '")
		_, err = parseParams(`api_key='k1, signature=s`)
		assert.Equal(t, ErrUnparsable, err)
	})
}

func TestAppsParse(t *testing.T) {
	set, err := ParseApps(testApps)
	require.NoError(t, err)
	app := set.ByID("app1")
	require.NotNil(t, app)
	assert.True(t, app.Allows("ist"))
	assert.False(t, app.Allows("tts"))
	assert.True(t, set.ByID("app2").Allows("anything"))
	assert.True(t, app.AllowsIP("10.1.2.3"))
	assert.True(t, app.AllowsIP("::1"))
	assert.True(t, app.AllowsIP("::ffff:10.0.0.1"))
	assert.False(t, app.AllowsIP("192.168.0.1"))
	assert.False(t, app.AllowsIP("bogus"))
	assert.True(t, set.ByID("app2").AllowsIP("1.2.3.4"))

	for _, doc := range []string{`{"apps":[{"app_id":"a"}]}`, `[{"app_id":"a","api_key":"k","api_secret":"s"},{"app_id":"a","api_key":"k2","api_secret":"s"}]`,
		`[{"app_id":"a","api_key":"k","api_secret":"s","ip_allow":["300.1.1.1"]}]`, `{"apps":`, `[{"app_id":"a","api_key":"k","api_secret":"s","qps":-1}]`} {
		_, err := ParseApps([]byte(doc))
		assert.Error(t, err, doc)
	}
}

func TestLimiterQPS(t *testing.T) {
	set, _ := ParseApps(testApps)
	app := set.ByID("app1")
	l := NewLimiter()
	clock := time.Unix(1000, 0)
	l.now = func() time.Time { return clock }
	assert.True(t, l.Allow(app))
	assert.True(t, l.Allow(app))
	assert.False(t, l.Allow(app), "burst of 2 spent")
	clock = clock.Add(500 * time.Millisecond)
	assert.True(t, l.Allow(app), "one token back after 0.5 s at 2 qps")
	assert.False(t, l.Allow(app))
	assert.True(t, l.Allow(set.ByID("app2")), "no limit")
}

func TestLimiterConcurrencyAndEnforce(t *testing.T) {
	set, _ := ParseApps(testApps)
	app := set.ByID("app1")
	l := NewLimiter()
	var mu sync.Mutex
	kicked := []int{}
	kick := func(i int) func() { return func() { mu.Lock(); kicked = append(kicked, i); mu.Unlock() } }
	l1, ok := l.Acquire(app, kick(1))
	require.True(t, ok)
	l2, ok := l.Acquire(app, kick(2))
	require.True(t, ok)
	_, ok = l.Acquire(app, nil)
	assert.False(t, ok, "max_sessions 2")
	l.Release(l2)
	l.Release(l2)
	l2, ok = l.Acquire(app, kick(2))
	require.True(t, ok)

	lowered, err := ParseApps([]byte(`[{"app_id":"app1","api_key":"key1","api_secret":"s","max_sessions":1}]`))
	require.NoError(t, err)
	assert.Equal(t, 1, l.Enforce(lowered))
	assert.Equal(t, []int{2}, kicked, "the newest connection goes")
	assert.Equal(t, 0, l.Enforce(lowered), "a kicked lease is not kicked twice")
	l.Release(l2)
	l.Release(l1)
	assert.Equal(t, 0, l.Active("app1"))
}

func FuzzParseParams(f *testing.F) {
	f.Add(`api_key="k", algorithm="hmac-sha256", headers="host date request-line", signature="c2ln"`)
	f.Add(`hmac username="k", algorithm="hmac-sha256", headers="host date request-line digest", signature="x"`)
	f.Add(`api_key=k,signature=s`)
	f.Add(`a="`)
	f.Add(`api_key='k', algorithm='hmac-sha256', headers='host date request-line', signature='c2ln'`)
	f.Add(`hmac api_key='k', headers="host date request-line", signature='x"y'`)
	f.Add(`a='`)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseParams(s)
		if err == nil && (p.APIKey == "" || p.Signature == "" || algorithms[p.Algorithm] == nil) {
			t.Fatalf("accepted %q without key, signature or a known algorithm", s)
		}
		// Single quotes parse exactly like double quotes: with no ' in s, turning every "
		// into ' gives the same outcome and the same fields (their " turned into ' too).
		if strings.Contains(s, "'") {
			return
		}
		sq := func(v string) string { return strings.ReplaceAll(v, `"`, "'") }
		p2, err2 := parseParams(sq(s))
		if (err == nil) != (err2 == nil) {
			t.Fatalf("%q: err %v, single-quoted err %v", s, err, err2)
		}
		if err != nil {
			return
		}
		want := Params{APIKey: sq(p.APIKey), Algorithm: sq(p.Algorithm), Signature: sq(p.Signature)}
		for _, h := range p.Headers {
			want.Headers = append(want.Headers, sq(h))
		}
		if !reflect.DeepEqual(want, p2) {
			t.Fatalf("%q: single-quoted fields %+v, want %+v", s, p2, want)
		}
	})
}

func FuzzAuthenticate(f *testing.F) {
	now := time.Unix(1700000000, 0)
	good := signedURLRequest(now, "secret1")
	f.Add(good.Authorization, good.Date, good.Host, good.Path)
	f.Add("", "", "", "")
	f.Add("aGVsbG8=", "Mon, 02 Jan 2006 15:04:05 GMT", "h", "/")
	set, _ := ParseApps(testApps)
	a := NewAuthenticator(0)
	a.SetApps(set)
	f.Fuzz(func(t *testing.T, authorization, date, host, path string) {
		req := Request{Method: "GET", Path: path, Host: host, Date: date, Authorization: authorization, URLForm: true}
		app, err := a.Authenticate(req, now)
		if err == nil && (app == nil || app.ID != "app1") {
			t.Fatalf("authenticated %v", app)
		}
		var e *Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
