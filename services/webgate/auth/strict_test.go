package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// signWith signs req for headers with algorithm alg and puts the authorization in req, in
// the URL form (base64) or the header form.
func signWith(req *Request, alg string, headers []string, secret string) {
	fns := map[string]func() hash.Hash{"hmac-sha1": sha1.New, "hmac-sha512": sha512.New}
	sig := Sign(secret, SignatureOrigin(*req, headers))
	if fn := fns[alg]; fn != nil {
		m := hmac.New(fn, []byte(secret))
		m.Write([]byte(SignatureOrigin(*req, headers)))
		sig = base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	algField := ""
	if alg != "" {
		algField = fmt.Sprintf(` algorithm="%s",`, alg)
	}
	text := fmt.Sprintf(`api_key="key1",%s headers="%s", signature="%s"`, algField, strings.Join(headers, " "), sig)
	if req.URLForm {
		req.Authorization = base64.StdEncoding.EncodeToString([]byte(text))
	} else {
		req.Authorization = "hmac " + text
	}
}

func requireAuthErr(t *testing.T, want *Error, err error) {
	t.Helper()
	var e *Error
	require.True(t, errors.As(err, &e), "error %v", err)
	assert.Equal(t, want.Status, e.Status, e.Reason)
	assert.Equal(t, want.Message, e.Message, e.Reason)
}

// Every signature must cover host, date and request-line, in the URL and the header form.
func TestSignedHeadersRequired(t *testing.T) {
	a := newAuth(t)
	now := time.Now()
	date := now.UTC().Format(http.TimeFormat)
	for _, urlForm := range []bool{true, false} {
		method := "GET"
		if !urlForm {
			method = "POST"
		}
		base := Request{Method: method, Path: "/v1/private/ist", Host: "gate:8889", Date: date, URLForm: urlForm}
		cases := []struct {
			headers []string
			want    *Error
		}{
			{[]string{"host", "date", "request-line"}, nil},
			{[]string{"request-line", "date", "host"}, nil},
			{[]string{"host", "x-date", "request-line"}, nil},
			{[]string{"date", "request-line"}, ErrUnparsable},
			{[]string{"host", "request-line"}, ErrUnparsable},
			{[]string{"host", "date"}, ErrUnparsable},
			{[]string{"date"}, ErrUnparsable},
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("url=%v/%s", urlForm, strings.Join(tc.headers, "+")), func(t *testing.T) {
				req := base
				signWith(&req, "hmac-sha256", tc.headers, "secret1")
				app, err := a.Authenticate(req, now)
				if tc.want == nil {
					require.NoError(t, err)
					assert.Equal(t, "app1", app.ID)
					return
				}
				requireAuthErr(t, tc.want, err)
			})
		}
	}
}

func TestAlgorithm(t *testing.T) {
	a := newAuth(t)
	now := time.Now()
	hs := []string{"host", "date", "request-line"}
	for _, alg := range []string{"hmac-sha256", "hmac-sha1", "hmac-sha512"} {
		t.Run(alg, func(t *testing.T) {
			req := Request{Method: "GET", Path: "/v1/private/ist", Host: "gate", Date: now.UTC().Format(http.TimeFormat), URLForm: true}
			signWith(&req, alg, hs, "secret1")
			_, err := a.Authenticate(req, now)
			require.NoError(t, err)
			// A signature made with another algorithm than the one named does not hold.
			other := req
			signWith(&other, "hmac-sha256", hs, "secret1")
			if alg != "hmac-sha256" {
				dec, _ := base64.StdEncoding.DecodeString(other.Authorization)
				other.Authorization = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(dec), "hmac-sha256", alg, 1)))
				_, err = a.Authenticate(other, now)
				requireAuthErr(t, ErrMismatch, err)
			}
		})
	}
	for name, alg := range map[string]string{"missing": "", "md5": "hmac-md5", "plain sha256": "sha256"} {
		t.Run(name, func(t *testing.T) {
			req := Request{Method: "GET", Path: "/v1/private/ist", Host: "gate", Date: now.UTC().Format(http.TimeFormat), URLForm: true}
			signWith(&req, alg, hs, "secret1")
			_, err := a.Authenticate(req, now)
			requireAuthErr(t, ErrUnparsable, err)
		})
	}
	_, err := parseParams(`api_key="k", algorithm="hmac-sha256", signature="a", signature="b"`)
	assert.Equal(t, ErrUnparsable, err, "a field given twice")
	_, err = parseParams(`api_key="k", username="k2", algorithm="hmac-sha256", signature="a"`)
	assert.Equal(t, ErrUnparsable, err, "api_key and username together")
	p, err := parseParams(`api_key="k", algorithm="HMAC-SHA256", signature="a"`)
	require.NoError(t, err)
	assert.Equal(t, "hmac-sha256", p.Algorithm)
}

// Dates are RFC 1123 in GMT; other zones are refused, not read as offset 0.
func TestDateZones(t *testing.T) {
	a := newAuth(t)
	now := time.Date(2024, 3, 5, 7, 35, 43, 0, time.UTC)
	cases := map[string]bool{
		"Tue, 05 Mar 2024 07:35:43 GMT":       true,
		"Tue, 5 Mar 2024 07:35:43 GMT":        true,
		"Tue, 05 Mar 2024 07:35:43 UTC":       true, // time.RFC1123 of a UTC time (Go clients)
		"Tue, 05 Mar 2024 15:35:43 CST":       false,
		"Tue, 05 Mar 2024 07:35:43 CST":       false, // would be read as offset 0 before
		"Tue, 05 Mar 2024 07:35:43 PST":       false,
		"Tue, 05 Mar 2024 15:35:43 +0800":     false,
		"Tue, 05 Mar 2024 07:35:43 +0000":     false,
		"Tue, 05 Mar 2024 07:35:43 gmt":       false,
		"Tue, 05 Mar 2024 07:35:43":           false,
		"Tuesday, 05-Mar-24 07:35:43 GMT":     false, // RFC 850
		"Tue Mar  5 07:35:43 2024":            false, // ANSI C
		"2024-03-05T07:35:43Z":                false,
		"Tue, 05 Mar 2024 07:35:43 GMT ":      false,
		"Tue, 05 Mar 2024 07:35:43 GMT+08":    false,
		"Tue, 05 Mar 2024 07:35:43 GMT\nx: y": false,
		"Tue, 05 Mar 2024 07:35:43 UTC GMT":   false,
		" Tue, 05 Mar 2024 07:35:43 GMT":      false,
	}
	for date, ok := range cases {
		t.Run(date, func(t *testing.T) {
			for _, urlForm := range []bool{true, false} {
				req := Request{Method: "GET", Path: "/v1/private/ist", Host: "gate", Date: date, URLForm: urlForm}
				signWith(&req, "hmac-sha256", []string{"host", "date", "request-line"}, "secret1")
				_, err := a.Authenticate(req, now)
				if ok {
					require.NoError(t, err)
				} else {
					requireAuthErr(t, ErrDate, err)
				}
			}
		})
	}
}

// In the header form a request with a body signs digest; the body is checked apart.
func TestDigestRequiredWithBody(t *testing.T) {
	a := newAuth(t)
	now := time.Now()
	body := []byte(`{"header":{"app_id":"app1"}}`)
	date := now.UTC().Format(http.TimeFormat)
	withDigest := []string{"host", "date", "request-line", "digest"}
	noDigest := []string{"host", "date", "request-line"}
	cases := []struct {
		name    string
		req     Request
		headers []string
		want    *Error
	}{
		{"body, digest signed", Request{Method: "POST", Digest: BodyDigest(body), HasBody: true}, withDigest, nil},
		{"body, digest unsigned", Request{Method: "POST", Digest: BodyDigest(body), HasBody: true}, noDigest, ErrDigest},
		{"body, no digest at all", Request{Method: "POST", HasBody: true}, noDigest, ErrDigest},
		{"digest signed, header missing", Request{Method: "POST", HasBody: true}, withDigest, ErrDigest},
		{"no body, nothing to digest", Request{Method: "GET"}, noDigest, nil},
		{"no body, empty digest signed", Request{Method: "POST", Digest: BodyDigest(nil)}, withDigest, nil},
		{"url form, body, no digest", Request{Method: "POST", HasBody: true, URLForm: true}, noDigest, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Path, req.Host, req.Date = "/v1/private/ist", "gate", date
			signWith(&req, "hmac-sha256", tc.headers, "secret1")
			_, err := a.Authenticate(req, now)
			if tc.want != nil {
				requireAuthErr(t, tc.want, err)
				return
			}
			require.NoError(t, err)
		})
	}
	// The signed digest value is part of the signature: changing it breaks the signature,
	// keeping it with another body fails VerifyDigest.
	req := Request{Method: "POST", Path: "/v1/private/ist", Host: "gate", Date: date, Digest: BodyDigest(body), HasBody: true}
	signWith(&req, "hmac-sha256", withDigest, "secret1")
	swapped := req
	swapped.Digest = BodyDigest([]byte("other"))
	_, err := a.Authenticate(swapped, now)
	requireAuthErr(t, ErrMismatch, err)
	requireAuthErr(t, ErrDigest, VerifyDigest(req.Digest, []byte("other")))
	requireAuthErr(t, ErrDigest, VerifyDigest("", body))
	requireAuthErr(t, ErrDigest, VerifyDigest(strings.Replace(req.Digest, "SHA-256=", "sha-256=", 1), body))
	require.NoError(t, VerifyDigest(req.Digest, body))
}

func TestReplayCache(t *testing.T) {
	now := time.Now()
	fresh := func(at time.Time, path string) Request {
		req := Request{Method: "GET", Path: path, Host: "gate", Date: at.UTC().Format(http.TimeFormat), URLForm: true}
		signWith(&req, "hmac-sha256", []string{"host", "date", "request-line"}, "secret1")
		return req
	}

	t.Run("off by default", func(t *testing.T) {
		a := newAuth(t)
		req := fresh(now, "/v1/private/ist")
		for range 3 {
			_, err := a.Authenticate(req, now)
			require.NoError(t, err)
		}
	})

	t.Run("second use refused", func(t *testing.T) {
		a := newAuth(t)
		a.SetReplayCache(NewReplayCache(0))
		req := fresh(now, "/v1/private/ist")
		_, err := a.Authenticate(req, now)
		require.NoError(t, err)
		_, err = a.Authenticate(req, now.Add(time.Second))
		requireAuthErr(t, ErrReplay, err)
		assert.Equal(t, 401, ErrReplay.Status)
		// Another signature (other path) passes; a forged one is refused as a mismatch
		// and does not take a place in the cache.
		_, err = a.Authenticate(fresh(now, "/v1/private/tts"), now)
		require.NoError(t, err)
		bad := req
		bad.Path = "/v1/private/x"
		_, err = a.Authenticate(bad, now)
		requireAuthErr(t, ErrMismatch, err)
		assert.Equal(t, 2, a.replay.Len())
		// Once the date leaves the skew the date check refuses it, and the cache forgets it.
		later := now.Add(MaxSkew + 2*time.Second)
		_, err = a.Authenticate(req, later)
		requireAuthErr(t, ErrDate, err)
		_, err = a.Authenticate(fresh(later, "/v1/private/ist"), later)
		require.NoError(t, err)
		assert.Equal(t, 1, a.replay.Len())
	})

	t.Run("bounded", func(t *testing.T) {
		c := NewReplayCache(4)
		exp := now.Add(MaxSkew)
		sig := func(i int) []byte { return []byte(fmt.Sprintf("signature-%06d-xxxxxxxx", i)) }
		for i := range 10 {
			require.True(t, c.Check(sig(i), exp, now))
			require.False(t, c.Check(sig(i), exp, now))
			assert.LessOrEqual(t, c.Len(), 4)
		}
		assert.Equal(t, int64(6), c.Evictions())
		assert.True(t, c.Check(sig(0), exp, now), "the oldest went first")
		assert.False(t, c.Check(sig(9), exp, now), "the newest stay")
		assert.True(t, c.Check(sig(9), exp, exp), "expired")
		assert.Equal(t, 1, c.Len())
	})
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"Tue, 05 Mar 2024 07:35:43 GMT", "Tue, 5 Mar 2024 07:35:43 UTC", "Tue, 05 Mar 2024 15:35:43 +0800",
		"Tue, 05 Mar 2024 07:35:43 CST", "Tuesday, 05-Mar-24 07:35:43 GMT", "", "UTC", " UTC"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := parseDate(s)
		if err != nil {
			return
		}
		if !strings.HasSuffix(s, " GMT") && !strings.HasSuffix(s, " UTC") {
			t.Fatalf("accepted %q without GMT", s)
		}
		if _, off := tm.Zone(); off != 0 {
			t.Fatalf("%q: offset %d", s, off)
		}
	})
}

func FuzzAuthenticateHeaderForm(f *testing.F) {
	now := time.Unix(1700000000, 0)
	date := now.UTC().Format(http.TimeFormat)
	body := []byte(`{"a":1}`)
	good := Request{Method: "POST", Path: "/v1/private/ist", Host: "gate", Date: date, Digest: BodyDigest(body), HasBody: true}
	signWith(&good, "hmac-sha256", []string{"host", "date", "request-line", "digest"}, "secret1")
	f.Add(good.Authorization, good.Date, good.Digest, true)
	f.Add(strings.Replace(good.Authorization, " digest", "", 1), good.Date, good.Digest, true)
	f.Add(`hmac api_key='key1', algorithm='hmac-sha1', headers='host date request-line', signature='x'`, date, "", false)
	f.Add("", "", "", false)
	set, _ := ParseApps(testApps)
	a := NewAuthenticator(0)
	a.SetApps(set)
	a.SetReplayCache(NewReplayCache(64))
	f.Fuzz(func(t *testing.T, authorization, date, digest string, hasBody bool) {
		req := Request{Method: "POST", Path: "/v1/private/ist", Host: "gate", Date: date, Digest: digest, HasBody: hasBody, Authorization: authorization}
		app, err := a.Authenticate(req, now)
		var e *Error
		if err != nil {
			if !errors.As(err, &e) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if app == nil || app.ID != "app1" {
			t.Fatalf("authenticated %v", app)
		}
		p, perr := parseParams(authorization)
		if perr != nil || !signs(p.Headers, "host") || !signs(p.Headers, "request-line") {
			t.Fatalf("accepted %q", authorization)
		}
		if hasBody && (!signs(p.Headers, "digest") || digest == "") {
			t.Fatalf("accepted a body without a signed digest: %q", authorization)
		}
		if _, off := mustDate(t, date).Zone(); off != 0 {
			t.Fatalf("accepted date %q", date)
		}
	})
}

func mustDate(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := parseDate(s)
	if err != nil {
		t.Fatalf("accepted unparsable date %q", s)
	}
	return tm
}
