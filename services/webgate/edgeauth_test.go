package webgate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/webgate/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	bodyCannotVerify = `{"message":"HMAC signature cannot be verified"}`
	bodyNoMatch      = `{"message":"HMAC signature does not match"}`
	bodyBadDate      = `{"message":"HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication"}`
)

// headerFormPost sends body to path signed in the header form over headers (digest is the
// Digest header sent, "" for none) and returns the status and body of the answer.
func headerFormPost(t *testing.T, e *env, path string, body []byte, headers, digest string, c creds) (int, string) {
	t.Helper()
	date := time.Now().UTC().Format(http.TimeFormat)
	req := auth.Request{Method: http.MethodPost, Path: path, Host: e.srv.HTTPAddr(), Date: date, Digest: digest}
	sig := auth.Sign(c.secret, auth.SignatureOrigin(req, strings.Fields(headers)))
	hr, err := http.NewRequest(http.MethodPost, e.url(path), bytes.NewReader(body))
	require.NoError(t, err)
	hr.Header.Set("Date", date)
	if digest != "" {
		hr.Header.Set("Digest", digest)
	}
	hr.Header.Set("Authorization", fmt.Sprintf(`hmac api_key="%s", algorithm="hmac-sha256", headers="%s", signature="%s"`, c.key, headers, sig))
	resp, err := http.DefaultClient.Do(hr)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// signURLWith is signURL with the signed headers and the date text chosen by the test.
func signURLWith(t *testing.T, rawURL, method string, c creds, headers, date string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	req := auth.Request{Method: method, Path: u.EscapedPath(), Host: u.Host, Date: date}
	sig := auth.Sign(c.secret, auth.SignatureOrigin(req, strings.Fields(headers)))
	authz := fmt.Sprintf(`api_key="%s", algorithm="hmac-sha256", headers="%s", signature="%s"`, c.key, headers, sig)
	q := u.Query()
	q.Set("authorization", base64.StdEncoding.EncodeToString([]byte(authz)))
	q.Set("date", date)
	q.Set("host", u.Host)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestEdgeAuthHeaderFormDigest(t *testing.T) {
	e := start(t, func(c *Config) { c.MaxBodyBytes = 4096 }, defaultFiles())
	body := []byte(onceBody("app1"))
	const path = "/v1/private/echo"

	st, out := headerFormPost(t, e, path, body, "host date request-line digest", auth.BodyDigest(body), app1)
	require.Equal(t, http.StatusOK, st, out)

	// A body whose digest is not signed could be swapped by whoever replays the headers.
	st, out = headerFormPost(t, e, path, body, "host date request-line", "", app1)
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Equal(t, bodyNoMatch, out)
	st, out = headerFormPost(t, e, path, body, "host date request-line", auth.BodyDigest(body), app1)
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Equal(t, bodyNoMatch, out)

	// The signed digest of another body.
	st, out = headerFormPost(t, e, path, body, "host date request-line digest", auth.BodyDigest([]byte("other")), app1)
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Equal(t, bodyNoMatch, out)

	// A bad signature is refused before the body is read; a good one over a body beyond the
	// limit is refused by the bounded read.
	big := bytes.Repeat([]byte("x"), 8192)
	st, out = headerFormPost(t, e, path, big, "host date request-line digest", auth.BodyDigest(big), creds{"key1", "wrong"})
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Equal(t, bodyNoMatch, out)
	st, out = headerFormPost(t, e, path, big, "host date request-line digest", auth.BodyDigest(big), app1)
	assert.Equal(t, http.StatusRequestEntityTooLarge, st)
	var r response
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	assert.Equal(t, 10163, r.Header.Code)
	assert.Contains(t, r.Header.Message, "larger than 4096 bytes")
}

func TestEdgeAuthURLFormRules(t *testing.T) {
	e := start(t, nil, defaultFiles())
	path := e.url("/v1/private/echo")
	now := time.Now().UTC()
	gmt := now.Format(http.TimeFormat)
	cases := []struct {
		name, headers, date string
		status              int
		body                string
	}{
		{"host unsigned", "date request-line", gmt, 401, bodyCannotVerify},
		{"request-line unsigned", "host date", gmt, 401, bodyCannotVerify},
		{"date unsigned", "host request-line", gmt, 401, bodyCannotVerify},
		{"zone +0800", "host date request-line", now.In(time.FixedZone("CST", 8*3600)).Format(time.RFC1123Z), 403, bodyBadDate},
		{"zone CST read as 0 before", "host date request-line", strings.Replace(gmt, "GMT", "CST", 1), 403, bodyBadDate},
		{"zone UTC (Go's time.RFC1123)", "host date request-line", now.Format(time.RFC1123), 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, out, _ := post(t, signURLWith(t, path, "POST", app1, tc.headers, tc.date), onceBody("app1"))
			assert.Equal(t, tc.status, st, out)
			if tc.body != "" {
				assert.Equal(t, tc.body, out)
			}
		})
	}
	// The algorithm is required.
	u, _ := url.Parse(signURL(t, path, "POST", app1, time.Now()))
	q := u.Query()
	dec, _ := base64.StdEncoding.DecodeString(q.Get("authorization"))
	q.Set("authorization", base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(dec), `algorithm="hmac-sha256", `, "", 1))))
	u.RawQuery = q.Encode()
	st, out, _ := post(t, u.String(), onceBody("app1"))
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Equal(t, bodyCannotVerify, out)
}

// With replay-cache on, a signature serves once; off (the default), again until its date
// leaves the skew.
func TestEdgeAuthReplayCache(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint("replay-cache=", on), func(t *testing.T) {
			e := start(t, func(c *Config) { c.ReplayCache = on }, defaultFiles())
			signed := signURL(t, e.url("/v1/private/echo"), "POST", app1, time.Now())
			st, out, _ := post(t, signed, onceBody("app1"))
			require.Equal(t, http.StatusOK, st, out)
			st, out, _ = post(t, signed, onceBody("app1"))
			if !on {
				assert.Equal(t, http.StatusOK, st, out)
				return
			}
			assert.Equal(t, http.StatusUnauthorized, st)
			assert.Equal(t, bodyCannotVerify, out)
			// A fresh signature (another date) still passes.
			st, out, _ = post(t, signURL(t, e.url("/v1/private/echo"), "POST", app1, time.Now().Add(-2*time.Second)), onceBody("app1"))
			assert.Equal(t, http.StatusOK, st, out)
		})
	}
}

func TestConfigSubSessionsAndReplayDefaults(t *testing.T) {
	cfg := DefaultConfig()
	assert.False(t, cfg.ReplayCache)
	assert.Equal(t, auth.DefaultReplayCacheSize, cfg.ReplayCacheSize)
	assert.Equal(t, 16, cfg.MaxSubSessions)
	cfg.MaxSubSessions = -1
	assert.Error(t, cfg.validate())
}
