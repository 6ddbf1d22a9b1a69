package targets

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/athenaserving/asf/tools/asfbench"
)

func TestASECode(t *testing.T) {
	for body, want := range map[string]int{
		`{"header":{"code":0,"sid":"x"}}`:      0,
		`{"header":{"code": 10110,"sid":"x"}}`: 10110,
		`{"header":{"sid":"x","status":3}}`:    0,
	} {
		got, err := aseCode([]byte(body))
		require.NoError(t, err, body)
		assert.Equal(t, want, got, body)
	}
	_, err := aseCode([]byte(`{"message":"Unauthorized"}`))
	assert.Error(t, err)
}

func FuzzASECode(f *testing.F) {
	f.Add([]byte(`{"header":{"code":10110}}`))
	f.Add([]byte(`"code":-`))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = aseCode(b) })
}

// TestOnceSignsAndReportsErrors checks what webgate would see: a signed URL (verified here
// with the same formula from the spec) and the ASE code turned into an error kind.
func TestOnceSignsAndReportsErrors(t *testing.T) {
	var gotQuery url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.Query()
		w.Header().Set(asfbench.TimingHeader, "webgate=300;atom=200;loader=100;engine=10")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(`{"header":{"code":10110,"message":"licence not enough","sid":"s"}}`))
	}))
	defer srv.Close()
	tg := NewASEOnce(ASEOnceConfig{BaseURL: srv.URL, Service: "echo", AppID: "bench",
		Creds: asfbench.Credentials{APIKey: "k", APISecret: "s"}, PayloadSize: 8})
	defer tg.Close()
	d, err := tg.NewDoer(t.Context(), 0)
	require.NoError(t, err)
	_, err = d.Do(t.Context())
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "code 10110", e.Kind())
	assert.NotEmpty(t, gotQuery.Get("authorization"))
	date, err := http.ParseTime(gotQuery.Get("date"))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), date, 5*time.Second)
	assert.Equal(t, srv.Listener.Addr().String(), gotQuery.Get("host"))
}

func TestOnceParsesTiming(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(asfbench.TimingHeader, "webgate=300;atom=200;loader=100;engine=10")
		_, _ = w.Write([]byte(`{"header":{"code":0,"sid":"s","status":3},"payload":{"input":{"text":"YWJjZGVmZ2g="}}}`))
	}))
	defer srv.Close()
	tg := NewASEOnce(ASEOnceConfig{BaseURL: srv.URL, Service: "echo", AppID: "bench", PayloadSize: 8})
	defer tg.Close()
	d, _ := tg.NewDoer(context.Background(), 0)
	tm, err := d.Do(t.Context())
	require.NoError(t, err)
	assert.True(t, tm.Present)
	assert.Equal(t, 300*time.Microsecond, tm.Webgate)
	assert.Equal(t, 10*time.Microsecond, tm.Engine)
}

// TestWebAPIOnce: the WebAPI 2.0 target posts the envelope to the route, signed, and
// reads the WebAPI 2.0 answer's code.
func TestWebAPIOnce(t *testing.T) {
	var gotPath, gotAuth string
	var gotBody map[string]map[string]any
	var answer atomic.Value
	answer.Store(`{"code":0,"message":"success","sid":"s","data":{"result":"YWJjZA==","status":3}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotAuth = r.URL.Path, r.URL.Query().Get("authorization")
		_ = json.NewDecoder(r.Body).Decode(&gotBody)
		_, _ = w.Write([]byte(answer.Load().(string)))
	}))
	defer srv.Close()
	tg := NewWebAPIOnce(ASEOnceConfig{BaseURL: srv.URL, Service: "echo", AppID: "bench",
		Creds: asfbench.Credentials{APIKey: "k", APISecret: "s"}, PayloadSize: 4}, "/v2/echo")
	defer tg.Close()
	d, err := tg.NewDoer(t.Context(), 0)
	require.NoError(t, err)
	_, err = d.Do(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "/v2/echo", gotPath)
	assert.NotEmpty(t, gotAuth)
	assert.Equal(t, "bench", gotBody["common"]["app_id"])
	assert.Equal(t, "YWJjZA==", gotBody["data"]["text"], "abcd")

	answer.Store(`{"code":10163,"message":"invalid request","sid":"s"}`)
	_, err = d.Do(t.Context())
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "code 10163", e.Kind())
}
