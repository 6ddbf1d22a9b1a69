package webapi

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/athenaserving/asf/tests/webapitest"
)

// logBuf is a process log that tests read while it is written.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// has reports whether a line holds every one of parts.
func (l *logBuf) has(parts ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(l.b.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// TestWebAPIRetryThroughSuite: a recognition-like session whose network drops is resumed
// by its app on a new, newly signed WebSocket with common.cmd retry and its sid; another
// app cannot take it.
func TestWebAPIRetryThroughSuite(t *testing.T) {
	logs := &logBuf{}
	s := startEdgeWith(t, suitetest.Options{Loaders: 1, LogTo: func(process string) io.Writer {
		if process == "webgate" {
			return logs
		}
		return io.Discard
	}})
	ctx := t.Context()
	owner := webapiClient(s, app("wa-ok"))
	frame := func(status int, text string) webapitest.Request {
		return webapitest.Request{Data: map[string]any{"status": status, "text": webapitest.B64([]byte(text))}}
	}
	conn, err := owner.Dial(ctx, "/v2/echo", webapitest.URLForm)
	if err != nil {
		t.Fatal(err)
	}
	first := frame(0, "a")
	first.Common = owner.Common()
	if err := conn.Send(first); err != nil {
		t.Fatal(err)
	}
	r, err := conn.Recv(10 * time.Second)
	if err != nil || r.Code != 0 {
		t.Fatalf("first result: %+v %v", r, err)
	}
	sid := r.Sid
	_ = conn.Drop()
	suitetest.WaitFor(t, 5*time.Second, func() bool { return logs.has("session waits for a retry", sid) })

	retry := func(c *webapitest.Client) *webapitest.Conn {
		t.Helper()
		conn, err := c.Dial(ctx, "/v2/echo", webapitest.URLForm)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		if err := conn.Send(webapitest.Request{Common: map[string]any{"app_id": c.Creds.AppID, "cmd": "retry", "sid": sid}}); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	d := suitetest.DemoApp
	stranger := retry(webapitest.New(s.URL(), webapitest.Credentials{AppID: d.AppID, APIKey: d.APIKey, APISecret: d.APISecret}))
	if r, err := stranger.Recv(10 * time.Second); err != nil || r.Code != 10165 {
		t.Fatalf("retry by another app: %+v %v, want code 10165", r, err)
	}

	again := retry(owner)
	for i, st := range []int{1, 2} {
		if err := again.Send(frame(st, string(rune('b'+i)))); err != nil {
			t.Fatal(err)
		}
		r, err := again.Recv(10 * time.Second)
		if err != nil || r.Code != 0 {
			t.Fatalf("frame %d after the retry: %+v %v", i, r, err)
		}
		got, _ := r.Bytes("result")
		if r.Sid != sid || string(got) != string(rune('b'+i)) || r.Status() != st {
			t.Fatalf("frame %d after the retry: %s", i, r.Raw)
		}
	}
	if _, err := again.Recv(10 * time.Second); !webapitest.IsClose(err, 1000) {
		t.Fatalf("after the last result: %v, want close 1000", err)
	}
}
