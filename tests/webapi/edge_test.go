// Package webapi tests webgate's WebAPI 2.0 edge through the whole suite with clients
// written from the public protocol descriptions: the WebAPI 2.0 routes get the same HMAC
// authentication (URL and header forms, Digest), per-app limits, IP allow-list and schema
// validation as the ASE routes, with the same HTTP statuses and codes; iFLYTEK's Go SDK's
// OnceAIaaS request succeeds; a dropped WebSocket session resumes with common.cmd retry.
package webapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/athenaserving/asf/tests/webapitest"
)

// apps are the apps of the edge tests; each limit has one app per envelope, so the two
// envelopes do not share a bucket.
var apps = []asetest.Credentials{
	{AppID: "wa-ok", APIKey: "wa-ok-key", APISecret: "wa-ok-secret"},
	{AppID: "wa-ip", APIKey: "wa-ip-key", APISecret: "wa-ip-secret"},
	{AppID: "wa-cap", APIKey: "wa-cap-key", APISecret: "wa-cap-secret"},
	{AppID: "wa-off", APIKey: "wa-off-key", APISecret: "wa-off-secret"},
	{AppID: "wa-qps-ase", APIKey: "wa-qps-ase-key", APISecret: "wa-qps-ase-secret"},
	{AppID: "wa-qps-webapi", APIKey: "wa-qps-webapi-key", APISecret: "wa-qps-webapi-secret"},
	{AppID: "wa-conn-ase", APIKey: "wa-conn-ase-key", APISecret: "wa-conn-ase-secret"},
	{AppID: "wa-conn-webapi", APIKey: "wa-conn-webapi-key", APISecret: "wa-conn-webapi-secret"},
}

func app(id string) asetest.Credentials {
	for _, a := range apps {
		if a.AppID == id {
			return a
		}
	}
	panic("no app " + id)
}

func appsJSON() []byte {
	var b strings.Builder
	b.WriteString(`{"apps":[`)
	for i, a := range append([]asetest.Credentials{suitetest.DemoApp}, apps...) {
		if i > 0 {
			b.WriteString(",")
		}
		extra := ""
		switch {
		case a.AppID == "wa-ip":
			extra = `,"ip_allow":["10.0.0.0/8"]`
		case a.AppID == "wa-cap":
			extra = `,"capabilities":["other"]`
		case a.AppID == "wa-off":
			extra = `,"disabled":true`
		case strings.HasPrefix(a.AppID, "wa-qps-"):
			extra = `,"qps":0.01` // one request, then none for 100 s
		case strings.HasPrefix(a.AppID, "wa-conn-"):
			extra = `,"max_sessions":1`
		}
		fmt.Fprintf(&b, `{"app_id":%q,"api_key":%q,"api_secret":%q%s}`, a.AppID, a.APIKey, a.APISecret, extra)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// startEdge starts a suite with echo loaders, the echo schema with its webapi block and
// the apps above.
func startEdge(t *testing.T) *suitetest.Suite {
	t.Helper()
	return startEdgeWith(t, suitetest.Options{Loaders: 1})
}

func startEdgeWith(t *testing.T, o suitetest.Options) *suitetest.Suite {
	t.Helper()
	s := suitetest.Start(t, o)
	s.PushConfig("webgate", "apps.json", appsJSON())
	s.PushSchema(filepath.Join("testdata", "schema_echo.json"))
	c := webapiClient(s, app("wa-ok"))
	suitetest.WaitFor(t, 10*time.Second, func() bool { // the apps file is applied
		r, err := c.Post(t.Context(), "/v2/echo", echoRequest(c, "ready"), webapitest.URLForm)
		return err == nil && r.Code == 0
	})
	return s
}

func webapiClient(s *suitetest.Suite, a asetest.Credentials) *webapitest.Client {
	return webapitest.New(s.URL(), webapitest.Credentials{AppID: a.AppID, APIKey: a.APIKey, APISecret: a.APISecret})
}

// echoRequest is a WebAPI 2.0 once request of the echo capability.
func echoRequest(c *webapitest.Client, text string) webapitest.Request {
	return webapitest.Request{Common: c.Common(), Business: map[string]any{"domain": "test"},
		Data: map[string]any{"status": 2, "text": webapitest.B64([]byte(text))}}
}

// echoFrame is the same request in the ASE envelope.
func echoFrame(text string) asetest.Frame {
	return asetest.Frame{Status: 3, Params: map[string]any{"domain": "test"}, Payload: map[string]asetest.Data{"input": asetest.Text(text)}}
}

// outcome is what an envelope answered: the HTTP status, the code of its envelope (0 for a
// gateway refusal's {"message"} body) and the message.
type outcome struct {
	status int
	code   int
	msg    string
}

func (o outcome) String() string { return fmt.Sprintf("HTTP %d code %d %q", o.status, o.code, o.msg) }

// refusal is a gateway refusal's body.
type refusal struct {
	Message string `json:"message"`
}

func aseOutcome(t *testing.T, r *asetest.Response, err error) outcome {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if r.Header.Code == 0 && r.HTTPStatus != http.StatusOK {
		var ref refusal
		_ = json.Unmarshal(r.Raw, &ref)
		return outcome{r.HTTPStatus, 0, ref.Message}
	}
	return outcome{r.HTTPStatus, r.Header.Code, r.Header.Message}
}

func webapiOutcome(t *testing.T, r *webapitest.Response, err error) outcome {
	t.Helper()
	if err != nil && r == nil {
		t.Fatal(err)
	}
	if err != nil { // not JSON of the envelope
		t.Fatalf("answer %q: %v", r.Raw, err)
	}
	if r.Code == 0 && r.HTTPStatus != http.StatusOK {
		var ref refusal
		_ = json.Unmarshal(r.Raw, &ref)
		return outcome{r.HTTPStatus, 0, ref.Message}
	}
	if r.Code != 0 && strings.Contains(string(r.Raw), `"header"`) {
		t.Fatalf("a WebAPI 2.0 error in the ASE envelope: %s", r.Raw)
	}
	return outcome{r.HTTPStatus, r.Code, r.Message}
}

// TestWebAPIEdgeMatchesASE sends each case once to the ASE route and once to the WebAPI
// 2.0 route of the same capability and requires the same HTTP status and code (and, for
// gateway refusals, the same body).
func TestWebAPIEdgeMatchesASE(t *testing.T) {
	s := startEdge(t)
	ctx := t.Context()
	ok := outcome{200, 0, ""}
	type sendFn func(t *testing.T) outcome
	cases := []struct {
		name         string
		ase, webapi  sendFn
		want         outcome
		wantContains string
	}{{
		name: "URL form",
		ase:  aseOnce(s, "wa-ok", "hi", nil), webapi: webapiOnce(s, "wa-ok", "hi", nil),
		want: ok,
	}, {
		name: "header form with Digest",
		ase: func(t *testing.T) outcome {
			c := asetest.New(s.URL(), ptr(app("wa-ok")))
			c.HeaderForm = true
			r, err := c.Once(ctx, "echo", echoFrame("hi"))
			return aseOutcome(t, r, err)
		},
		webapi: func(t *testing.T) outcome {
			c := webapiClient(s, app("wa-ok"))
			r, err := c.Post(ctx, "/v2/echo", echoRequest(c, "hi"), webapitest.HeaderForm)
			return webapiOutcome(t, r, err)
		},
		want: ok,
	}, {
		name: "body changed after signing",
		ase: func(t *testing.T) outcome {
			a := app("wa-ok")
			r, err := tampered(ctx, s.URL()+"/v1/private/echo", echoFrame("hi").JSON("echo", a.AppID),
				func(r *http.Request, b []byte) { asetest.SignHeaders(r, b, a, time.Now()) })
			return aseOutcome(t, r, err)
		},
		webapi: func(t *testing.T) outcome {
			c := webapiClient(s, app("wa-ok"))
			b, _ := json.Marshal(echoRequest(c, "hi"))
			r, err := tampered(ctx, s.URL()+"/v2/echo", b, c.SignHeaders)
			return aseOutcome(t, r, err)
		},
		want: outcome{401, 0, "HMAC signature does not match"},
	}, {
		name: "wrong secret",
		ase: func(t *testing.T) outcome {
			a := app("wa-ok")
			a.APISecret += "x"
			r, err := asetest.New(s.URL(), &a).Once(ctx, "echo", echoFrame("hi"))
			return aseOutcome(t, r, err)
		},
		webapi: func(t *testing.T) outcome {
			a := app("wa-ok")
			a.APISecret += "x"
			c := webapiClient(s, a)
			r, err := c.Post(ctx, "/v2/echo", echoRequest(c, "hi"), webapitest.URLForm)
			return webapiOutcome(t, r, err)
		},
		want: outcome{401, 0, "HMAC signature does not match"},
	}, {
		name: "date an hour old",
		ase: func(t *testing.T) outcome {
			c := asetest.New(s.URL(), ptr(app("wa-ok")))
			c.Now = func() time.Time { return time.Now().Add(-time.Hour) }
			r, err := c.Once(ctx, "echo", echoFrame("hi"))
			return aseOutcome(t, r, err)
		},
		webapi: func(t *testing.T) outcome {
			c := webapiClient(s, app("wa-ok"))
			c.Now = func() time.Time { return time.Now().Add(-time.Hour) }
			r, err := c.Post(ctx, "/v2/echo", echoRequest(c, "hi"), webapitest.HeaderForm)
			return webapiOutcome(t, r, err)
		},
		want:         outcome{403, 0, ""},
		wantContains: "a valid date or x-date header is required",
	}, {
		name: "unsigned",
		ase: func(t *testing.T) outcome {
			r, err := asetest.New(s.URL(), nil).Post(ctx, "/v1/private/echo", echoFrame("hi").JSON("echo", "wa-ok"))
			return aseOutcome(t, r, err)
		},
		webapi: func(t *testing.T) outcome {
			c := webapiClient(s, app("wa-ok"))
			r, err := c.Post(ctx, "/v2/echo", echoRequest(c, "hi"), webapitest.Unsigned)
			return webapiOutcome(t, r, err)
		},
		want: outcome{401, 0, "Unauthorized"},
	}, {
		name: "disabled app",
		ase:  aseOnce(s, "wa-off", "hi", nil), webapi: webapiOnce(s, "wa-off", "hi", nil),
		want: outcome{401, 0, "HMAC signature cannot be verified"},
	}, {
		name: "IP not in the allow-list",
		ase:  aseOnce(s, "wa-ip", "hi", nil), webapi: webapiOnce(s, "wa-ip", "hi", nil),
		want: outcome{403, 0, "Your IP address is not allowed"},
	}, {
		name: "capability not allowed",
		ase:  aseOnce(s, "wa-cap", "hi", nil), webapi: webapiOnce(s, "wa-cap", "hi", nil),
		want: outcome{403, 0, "You cannot consume this service"},
	}, {
		name:   "app_id of another app",
		ase:    aseOnce(s, "wa-ok", "hi", func(f *asetest.Frame) { f.AppID = "wa-ip" }),
		webapi: webapiOnce(s, "wa-ok", "hi", func(r *webapitest.Request) { r.Common["app_id"] = "wa-ip" }),
		want:   outcome{400, 10313, "app_id and api_key does not match"},
	}, {
		name:         "schema: parameter not in the schema",
		ase:          aseOnce(s, "wa-ok", "hi", func(f *asetest.Frame) { f.Params["speed"] = "fast" }),
		webapi:       webapiOnce(s, "wa-ok", "hi", func(r *webapitest.Request) { r.Business["speed"] = "fast" }),
		want:         outcome{400, 10163, ""},
		wantContains: "speed",
	}, {
		name:         "schema: text over its maxLength",
		ase:          aseOnce(s, "wa-ok", strings.Repeat("x", 4000), nil),
		webapi:       webapiOnce(s, "wa-ok", strings.Repeat("x", 4000), nil),
		want:         outcome{400, 10163, ""},
		wantContains: "maxLength",
	}, {
		name: "QPS limit",
		ase: func(t *testing.T) outcome {
			c := asetest.New(s.URL(), ptr(app("wa-qps-ase")))
			if r, err := c.Once(ctx, "echo", echoFrame("1")); err != nil || r.Header.Code != 0 {
				t.Fatalf("first request: %v %v", r, err)
			}
			r, err := c.Once(ctx, "echo", echoFrame("2"))
			return aseOutcome(t, r, err)
		},
		webapi: func(t *testing.T) outcome {
			c := webapiClient(s, app("wa-qps-webapi"))
			if r, err := c.Post(ctx, "/v2/echo", echoRequest(c, "1"), webapitest.URLForm); err != nil || r.Code != 0 {
				t.Fatalf("first request: %v %v", r, err)
			}
			r, err := c.Post(ctx, "/v2/echo", echoRequest(c, "2"), webapitest.URLForm)
			return webapiOutcome(t, r, err)
		},
		want: outcome{429, 11202, "qps limit exceeded"},
	}, {
		name: "concurrent sessions",
		ase: func(t *testing.T) outcome {
			c := asetest.New(s.URL(), ptr(app("wa-conn-ase")))
			first, err := c.Stream(ctx, "echo")
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			_, err = c.Stream(ctx, "echo")
			de, isDial := err.(*asetest.DialError)
			if !isDial {
				t.Fatalf("second session: %v", err)
			}
			return outcome{de.Status, 0, refusalMessage(de.Body)}
		},
		webapi: func(t *testing.T) outcome {
			c := webapiClient(s, app("wa-conn-webapi"))
			first, err := c.Dial(ctx, "/v2/echo", webapitest.URLForm)
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			_, err = c.Dial(ctx, "/v2/echo", webapitest.URLForm)
			de, isDial := err.(*webapitest.DialError)
			if !isDial {
				t.Fatalf("second session: %v", err)
			}
			return outcome{de.HTTPStatus, 0, refusalMessage(de.Body)}
		},
		want: outcome{403, 0, "max connections exceeded"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, w := tc.ase(t), tc.webapi(t)
			t.Logf("ASE: %v; WebAPI 2.0: %v", a, w)
			for env, got := range map[string]outcome{"ASE": a, "WebAPI 2.0": w} {
				if got.status != tc.want.status || got.code != tc.want.code {
					t.Errorf("%s: %v, want HTTP %d code %d", env, got, tc.want.status, tc.want.code)
				}
				if tc.want.msg != "" && got.msg != tc.want.msg {
					t.Errorf("%s: message %q, want %q", env, got.msg, tc.want.msg)
				}
				if tc.wantContains != "" && !strings.Contains(got.msg, tc.wantContains) {
					t.Errorf("%s: message %q does not say %q", env, got.msg, tc.wantContains)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// aseOnce sends text as appID to the ASE route (URL form), edit changing the frame.
func aseOnce(s *suitetest.Suite, appID, text string, edit func(*asetest.Frame)) func(t *testing.T) outcome {
	return func(t *testing.T) outcome {
		f := echoFrame(text)
		if edit != nil {
			edit(&f)
		}
		r, err := asetest.New(s.URL(), ptr(app(appID))).Once(t.Context(), "echo", f)
		return aseOutcome(t, r, err)
	}
}

// webapiOnce sends text as appID to the WebAPI 2.0 route (URL form), edit changing the
// request.
func webapiOnce(s *suitetest.Suite, appID, text string, edit func(*webapitest.Request)) func(t *testing.T) outcome {
	return func(t *testing.T) outcome {
		c := webapiClient(s, app(appID))
		req := echoRequest(c, text)
		if edit != nil {
			edit(&req)
		}
		r, err := c.Post(t.Context(), "/v2/echo", req, webapitest.URLForm)
		return webapiOutcome(t, r, err)
	}
}

func refusalMessage(body string) string {
	var ref refusal
	_ = json.Unmarshal([]byte(body), &ref)
	return ref.Message
}

// tampered signs body with sign (header form) and sends another body of the same length.
func tampered(ctx context.Context, target string, body []byte, sign func(*http.Request, []byte)) (*asetest.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	sign(req, body)
	other := bytes.Replace(body, []byte(`"aGk="`), []byte(`"aGo="`), 1) // "hi" → "hj"
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(other)), int64(len(other))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return &asetest.Response{HTTPStatus: resp.StatusCode, Raw: b.Bytes()}, nil
}
