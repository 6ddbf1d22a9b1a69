package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
)

// An engine output the request did not ask for fails with 10106, and the loader's reason
// (which output) reaches the client's header.message through atom and webgate, for a
// once request and a session.
func TestUnexpectedOutputReasonReachesClient(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1})
	c := s.Client()
	const reason = `output "input" not among the expected outputs`

	// The echo engine answers with its input's name ("input") unless exactly one output is
	// expected; the request accepts "result" and "boxes".
	f := onceFrame("x")
	f.Accepts = map[string]map[string]any{"result": {"encoding": "utf8"}, "boxes": {"encoding": "utf8"}}
	r, err := c.Once(t.Context(), "echo", f)
	if err != nil {
		t.Fatal(err)
	}
	if r.HTTPStatus == http.StatusOK || r.Header.Code != 10106 || !strings.Contains(r.Header.Message, reason) {
		t.Fatalf("once: HTTP %d %s, want code 10106 with %q", r.HTTPStatus, r.Raw, reason)
	}
	if strings.Contains(r.Header.Message, "loader ") || strings.Contains(r.Header.Message, "(code") {
		t.Fatalf("once: message %q carries internal context", r.Header.Message)
	}

	sess, err := c.Stream(t.Context(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Send(asetest.Frame{Status: 0, Accepts: f.Accepts, Payload: map[string]asetest.Data{"input": asetest.Text("y")}}); err != nil {
		t.Fatal(err)
	}
	r, err = sess.Recv(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Header.Code != 10106 || !strings.Contains(r.Header.Message, reason) {
		t.Fatalf("session: %s, want code 10106 with %q", r.Raw, reason)
	}
}
