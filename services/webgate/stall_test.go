//go:build unix

package webgate

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/stretchr/testify/require"
)

// stallApps is an app without limits, so stalled authenticated requests are not refused
// by its own max_sessions.
const stallApps = `{"apps":[{"app_id":"stall","api_key":"kstall","api_secret":"sstall"}]}`

var stallCreds = creds{"kstall", "sstall"}

// raiseNoFile lifts the soft open-file limit to at least n (within the hard limit).
func raiseNoFile(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("open-file hard limit %d is below the %d this test needs", lim.Max, n)
	}
	old := lim.Cur
	lim.Cur = n
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
	t.Cleanup(func() { lim.Cur = old; _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) })
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// dialFrom opens a TCP connection to addr from source address src (any 127.0.0.0/8
// address reaches the loopback listener).
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// stallBound is the documented bound of webgate's heap per stalled connection
// (docs/operations.md, "Slow and stalled clients").
const stallBound = 64 << 10

// TestStalledConnectionsStayCheap opens 1,000 connections that never finish a request —
// headers that stop half-way, headers trickled a byte at a time, and signed requests that
// announce a 10 MiB body and never send it — from 20 source addresses. webgate's heap
// grows by at most stallBound per connection, a signed request from another address
// succeeds meanwhile, and every stalled connection is closed by the server after its
// timeout.
func TestStalledConnectionsStayCheap(t *testing.T) {
	const (
		sources   = 20
		perSrc    = 50
		total     = sources * perSrc
		maxUnauth = 64
		headerTO  = time.Second
		bodyTO    = time.Second
	)
	raiseNoFile(t, 3*total+512)
	files := defaultFiles()
	files["webgate/apps.json"] = stallApps
	e := start(t, func(c *Config) {
		c.HTTPReadHeaderTimeout, c.HTTPReadBodyTimeout, c.HTTPIdleTimeout = headerTO, bodyTO, time.Second
		c.MaxUnauthConnsPerIP = maxUnauth
	}, files)
	addr := e.srv.HTTPAddr()
	path := "/v1/private/echo"

	baseHeap, baseG := heapInUse(), runtime.NumGoroutine()
	conns := make([]net.Conn, 0, total)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	var trickle []net.Conn
	for i := range total {
		src := fmt.Sprintf("127.0.0.%d", 2+i%sources)
		c, err := dialFrom(src, addr)
		require.NoError(t, err)
		conns = append(conns, c)
		switch i % 3 {
		case 0: // headers that stop half-way
			_, err = io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
		case 1: // headers trickled a byte at a time (below)
			_, err = io.WriteString(c, "P")
			trickle = append(trickle, c)
		case 2: // signed headers announcing 10 MiB, body never sent
			u := signURL(t, "http://"+addr+path, http.MethodPost, stallCreds, time.Now())
			_, err = io.WriteString(c, "POST "+strings.TrimPrefix(u, "http://"+addr)+" HTTP/1.1\r\nHost: "+addr+
				"\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n")
		}
		require.NoError(t, err)
	}
	// The trickle: one byte per connection every 100 ms, from this goroutine's ticker
	// owner below, until the connections are closed.
	stopTrickle := make(chan struct{})
	trickleDone := make(chan struct{})
	go func() {
		defer close(trickleDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopTrickle:
				return
			case <-tick.C:
				for _, c := range trickle {
					_ = c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
					_, _ = c.Write([]byte("O"))
				}
			}
		}
	}()
	t.Cleanup(func() { close(stopTrickle); <-trickleDone })

	// Every connection is being served (one goroutine each), none has finished a request.
	testpoll.Until(t, 5*time.Second, "webgate to serve every stalled connection", func() bool { return runtime.NumGoroutine() >= baseG+total })
	grown := int64(heapInUse()) - int64(baseHeap)
	t.Logf("%d stalled connections: heap +%d KiB (%d bytes each; bound %d)", total, grown>>10, grown/total, stallBound)
	require.Less(t, grown, int64(total*stallBound), "heap grew by more than %d bytes per stalled connection", stallBound)

	// A signed request from another source is served meanwhile.
	st, body, _ := post(t, signURL(t, e.url(path), http.MethodPost, stallCreds, time.Now()), onceBody("stall"))
	require.Equal(t, http.StatusOK, st, body)

	// The server closes every stalled connection after its timeout: a read sees the end
	// (or a reset), not the client's own deadline.
	start := time.Now()
	for i, c := range conns {
		_ = c.SetReadDeadline(start.Add(headerTO + bodyTO + 10*time.Second))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection %d (kind %d) still open %v after the timeouts", i, i%3, time.Since(start))
		}
	}
	t.Logf("every stalled connection closed by the server within %v", time.Since(start).Round(time.Millisecond))
}

// TestUnauthenticatedConnectionCap: a source holding max-unauth-conns-per-ip
// unauthenticated connections gets its next connection answered 429 and closed before
// webgate reads a byte of it; other sources are served; an authenticated connection
// does not count, and once the stalled ones time out the source is served again.
func TestUnauthenticatedConnectionCap(t *testing.T) {
	const maxUnauth = 8
	files := defaultFiles()
	files["webgate/apps.json"] = stallApps
	e := start(t, func(c *Config) {
		c.HTTPReadHeaderTimeout = 500 * time.Millisecond
		c.MaxUnauthConnsPerIP = maxUnauth
	}, files)
	addr, path := e.srv.HTTPAddr(), "/v1/private/echo"
	const src = "127.0.0.60"

	signed := func(src string) (int, string) {
		c, err := dialFrom(src, addr)
		require.NoError(t, err)
		defer c.Close()
		u := signURL(t, "http://"+addr+path, http.MethodPost, stallCreds, time.Now())
		body := onceBody("stall")
		_, err = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			strings.TrimPrefix(u, "http://"+addr), addr, len(body), body)
		if err != nil {
			return 0, err.Error()
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// A signed request from src is served; its connection, once authenticated, stops
	// counting against the cap.
	st, body := signed(src)
	require.Equal(t, http.StatusOK, st, body)

	var stalled []net.Conn
	for range maxUnauth {
		c, err := dialFrom(src, addr)
		require.NoError(t, err)
		stalled = append(stalled, c)
		_, _ = io.WriteString(c, "POST "+path+" HTTP/1.1\r\n")
	}
	t.Cleanup(func() {
		for _, c := range stalled {
			_ = c.Close()
		}
	})
	st, body = signed(src)
	require.Equal(t, http.StatusTooManyRequests, st, body)
	require.JSONEq(t, `{"message":"too many unauthenticated connections from this address"}`, body)
	require.Positive(t, e.srv.conns.Refused())

	// Another source is served.
	st, body = signed("127.0.0.61")
	require.Equal(t, http.StatusOK, st, body)

	// The stalled connections time out; the source is served again.
	testpoll.Until(t, 5*time.Second, "the stalled connections to time out", func() bool { return e.srv.conns.Pending(src) == 0 })
	st, body = signed(src)
	require.Equal(t, http.StatusOK, st, body)
}
