package e2e

import (
	"regexp"
	"testing"
	"time"

	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
)

// internalDetail matches what must never reach a public client: addresses and transport
// errors of internal hops, Go-rendered codes.
var internalDetail = regexp.MustCompile(`\d{1,3}(\.\d{1,3}){3}|:\d{2,5}\b|(?i)dial tcp|connection refused|rpc error|desc =|\(code \d+\)`)

func checkPublic(t *testing.T, what string, r *asetest.Response) {
	t.Helper()
	if r.Header.Code == 0 {
		t.Fatalf("%s: succeeded: %s", what, r.Raw)
	}
	if m := internalDetail.FindString(r.Header.Message); m != "" || r.Header.Message == "" {
		t.Fatalf("%s: header.message %q carries internal detail %q", what, r.Header.Message, m)
	}
}

// A loader killed under a client: the once request and the session that reach it get an
// error whose message names no internal address or transport error.
func TestUnreachableLoaderMessageCarriesNoAddress(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1})
	c := s.Client()
	mustOK(t, once(t, c, "alive"), "before the kill")

	sess, err := c.Stream(t.Context(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Send(asetest.Frame{Status: 0, Payload: map[string]asetest.Data{"input": asetest.Text("a")}}); err != nil {
		t.Fatal(err)
	}
	if r, err := sess.Recv(10 * time.Second); err != nil || r.Header.Code != 0 {
		t.Fatalf("session before the kill: %v %v", r, err)
	}

	s.Loaders[0].Kill()

	// The session's loader is gone: one error frame.
	_ = sess.Send(asetest.Frame{Status: 1, Payload: map[string]asetest.Data{"input": asetest.Text("b")}})
	for {
		r, err := sess.Recv(10 * time.Second)
		if err != nil {
			t.Fatalf("session after the kill: no error frame: %v", err)
		}
		if r.Header.Code != 0 {
			checkPublic(t, "session", r)
			t.Logf("session error: %d %q", r.Header.Code, r.Header.Message)
			break
		}
	}

	// Once requests while the dead loader is still listed (10222), then after it left (10223).
	seen := map[int]string{}
	suitetest.WaitFor(t, 10*time.Second, func() bool {
		r := once(t, c, "dead")
		checkPublic(t, "once", r)
		seen[r.Header.Code] = r.Header.Message
		return s.LB.Live("echo") == 0 && r.Header.Code == 10223
	})
	t.Logf("codes seen: %v", seen)
	if _, ok := seen[10223]; !ok {
		t.Fatal("no 10223 once the loader left rotation")
	}
}
