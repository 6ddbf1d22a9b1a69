// Package e2e holds the cross-service tests: all five services in one process, driven
// through webgate like a real client.
package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/gorilla/websocket"
)

type respHeader struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	SID     string `json:"sid"`
	Status  int    `json:"status"`
}

type response struct {
	Header  respHeader                `json:"header"`
	Payload map[string]map[string]any `json:"payload"`
}

func onceBody(text string) []byte {
	return []byte(fmt.Sprintf(`{"header":{"app_id":"e2e","uid":"u1","status":3},"parameter":{"echo":{}},`+
		`"payload":{"input":{"encoding":"utf8","status":3,"text":%q}}}`, base64.StdEncoding.EncodeToString([]byte(text))))
}

func postOnce(t *testing.T, url, text string) (int, response) {
	t.Helper()
	resp, err := http.Post(url+"/v1/private/echo", "application/json", bytes.NewReader(onceBody(text)))
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("response %q: %v", b, err)
	}
	return resp.StatusCode, r
}

func decodeText(t *testing.T, item map[string]any) string {
	t.Helper()
	s, _ := item["text"].(string)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("output text %q: %v", s, err)
	}
	return string(b)
}

func TestOnceOverHTTP(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2})
	status, r := postOnce(t, s.URL(), "hello athena")
	if status != http.StatusOK || r.Header.Code != 0 || r.Header.SID == "" {
		t.Fatalf("status %d header %+v", status, r.Header)
	}
	if got := decodeText(t, r.Payload["input"]); got != "hello athena" {
		t.Fatalf("echo = %q", got)
	}
}

func TestUnknownCapabilityAndBadJSON(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1})
	resp, err := http.Post(s.URL()+"/v1/private/nosuch", "application/json", bytes.NewReader(onceBody("x")))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), `"not found"`) {
		t.Fatalf("unknown capability: %d %s", resp.StatusCode, b)
	}
	resp, err = http.Post(s.URL()+"/v1/private/echo", "application/json", strings.NewReader(`{"header":`))
	if err != nil {
		t.Fatal(err)
	}
	var r response
	_ = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || r.Header.Code != 10163 || r.Header.SID == "" {
		t.Fatalf("bad json: %d %+v", resp.StatusCode, r.Header)
	}
}

// streamSession runs one WebSocket session of three frames (status 0, 1, 2) against the
// echo capability and returns the result statuses; every result must echo its frame.
func streamSession(t *testing.T, base string) []int {
	t.Helper()
	ws := "ws" + strings.TrimPrefix(base, "http") + "/v1/private/echo"
	c, _, err := websocket.DefaultDialer.Dial(ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, st := range []int{0, 1, 2} {
		frame := map[string]any{
			"header":  map[string]any{"app_id": "e2e", "status": st},
			"payload": map[string]any{"input": map[string]any{"encoding": "raw", "status": st, "seq": i, "audio": base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("frame-%d", i)))}},
		}
		if i == 0 {
			frame["parameter"] = map[string]any{"echo": map[string]any{}}
		}
		if err := c.WriteJSON(frame); err != nil {
			t.Fatal(err)
		}
	}
	var statuses []int
	sid := ""
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var r response
		if err := c.ReadJSON(&r); err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				return statuses
			}
			t.Fatalf("read: %v (statuses so far %v)", err, statuses)
		}
		if r.Header.Code != 0 {
			t.Fatalf("error frame: %+v", r.Header)
		}
		if sid == "" {
			sid = r.Header.SID
		}
		if r.Header.SID != sid || sid == "" {
			t.Fatalf("sid changed or empty: %q vs %q", r.Header.SID, sid)
		}
		audio, _ := base64.StdEncoding.DecodeString(r.Payload["input"]["audio"].(string))
		if want := fmt.Sprintf("frame-%d", len(statuses)); string(audio) != want {
			t.Fatalf("result %d = %q, want %q", len(statuses), audio, want)
		}
		statuses = append(statuses, r.Header.Status)
	}
}

func TestStreamOverWebSocket(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2})
	if got := fmt.Sprint(streamSession(t, s.URL())); got != "[0 1 2]" {
		t.Fatalf("statuses = %v, want [0 1 2]", got)
	}
}

// Two atom replicas behind one webgate: sessions spread over both, and each session is
// served whole by one replica (its three frames, one loader session).
func TestTwoAtomReplicas(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2, Atoms: 2})
	const n = 20
	for i := 0; i < n; i++ {
		if got := fmt.Sprint(streamSession(t, s.URL())); got != "[0 1 2]" {
			t.Fatalf("session %d statuses = %v", i, got)
		}
	}
	a := s.Counter("atom-0", "asf_atom_sessions_total")
	b := s.Counter("atom-1", "asf_atom_sessions_total")
	if a+b != n || a == 0 || b == 0 {
		t.Fatalf("sessions per atom replica: %v and %v of %d", a, b, n)
	}
	t.Logf("atom-0 served %v sessions, atom-1 %v", a, b)
}

func TestOnceSpreadsOverLoadersAndSurvivesLoaderDeath(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2})
	const n = 200
	for i := 0; i < n; i++ {
		if status, r := postOnce(t, s.URL(), fmt.Sprint("req-", i)); status != 200 || r.Header.Code != 0 {
			t.Fatalf("request %d: %d %+v", i, status, r.Header)
		}
	}
	a := s.Counter("loader-0", "asf_loader_once_requests_total")
	b := s.Counter("loader-1", "asf_loader_once_requests_total")
	if a+b != n || a < 0.3*n || b < 0.3*n {
		t.Fatalf("spread: loader0=%v loader1=%v of %d (each must serve ≥30%%)", a, b, n)
	}

	s.Loaders[0].Kill()
	killed := time.Now()
	// Requests keep succeeding while the dead loader is still in the view: atom retries
	// on the other one.
	for i := 0; i < 20; i++ {
		if status, r := postOnce(t, s.URL(), "after-kill"); status != 200 || r.Header.Code != 0 {
			t.Fatalf("after kill %d: %d %+v", i, status, r.Header)
		}
	}
	suitetest.WaitFor(t, 5*time.Second, func() bool { return s.LB.Live("echo") == 1 })
	t.Logf("killed loader left rotation after %s", time.Since(killed).Round(time.Millisecond))
	if left := time.Since(killed); left > 3500*time.Millisecond {
		t.Fatalf("killed loader left rotation after %s, want ≤ 3 s", left)
	}
	before := s.Counter("loader-1", "asf_loader_once_requests_total")
	for i := 0; i < 20; i++ {
		if status, r := postOnce(t, s.URL(), "after-evict"); status != 200 || r.Header.Code != 0 {
			t.Fatalf("after evict %d: %d %+v", i, status, r.Header)
		}
	}
	if got := s.Counter("loader-1", "asf_loader_once_requests_total") - before; got != 20 {
		t.Fatalf("surviving loader served %v of 20", got)
	}
}
