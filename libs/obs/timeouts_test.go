package obs

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// closedWithin reports whether the server closes conn within d (a read returns EOF or an
// error other than the client's own deadline).
func closedWithin(t *testing.T, conn net.Conn, d time.Duration) bool {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

func TestAdminTimeouts(t *testing.T) {
	to := HTTPTimeouts{ReadHeader: 200 * time.Millisecond, Read: 400 * time.Millisecond, Idle: 300 * time.Millisecond}
	a, err := NewAdmin("127.0.0.1:0", prometheus.NewRegistry(), nil, WithTimeouts(to))
	if err != nil {
		t.Fatal(err)
	}
	a.Handle("/slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // longer than Read: a bodiless request's answer is not cut by it
		case <-time.After(2 * to.Read):
			_, _ = io.WriteString(w, "done")
		case <-r.Context().Done():
			http.Error(w, "cancelled", http.StatusServiceUnavailable)
		}
	}))
	go func() { _ = a.Serve() }()
	t.Cleanup(func() { _ = a.Shutdown(t.Context()) })

	t.Run("header never finished", func(t *testing.T) {
		c, err := net.Dial("tcp", a.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
		if !closedWithin(t, c, 5*time.Second) {
			t.Fatal("a connection that never finished its headers was kept open")
		}
	})
	t.Run("idle", func(t *testing.T) {
		c, err := net.Dial("tcp", a.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz: %v %v", resp, err)
		}
		if !closedWithin(t, c, 5*time.Second) {
			t.Fatal("an idle keep-alive connection was kept open")
		}
	})
	t.Run("long answer", func(t *testing.T) {
		code, body := get(t, "http://"+a.Addr()+"/slow")
		if code != 200 || !strings.Contains(body, "done") {
			t.Fatalf("slow route: %d %q", code, body)
		}
	})
}
