package localsock_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/athenaserving/asf/libs/localsock"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// shortDir is a socket directory short enough for sun_path (t.TempDir's can be too long).
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ls")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// echoServer serves ln, answering each line with the connection's network and the line.
func echoServer(t *testing.T, ln net.Listener) {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(c.LocalAddr().Network() + " " + line)); err != nil {
						return
					}
				}
			}()
		}
	}()
}

func roundTrip(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	_, err := c.Write([]byte(msg + "\n"))
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	return strings.TrimSuffix(line, "\n")
}

func listen(t *testing.T, dir string) net.Listener {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln, err := localsock.Listen(tcp, dir)
	require.NoError(t, err)
	return ln
}

func TestDialerUsesTheSocketOfACoLocatedServer(t *testing.T) {
	dir := shortDir(t)
	ln := listen(t, dir)
	echoServer(t, ln)
	path := ln.(*localsock.Listener).Path()
	require.Equal(t, filepath.Join(dir, localsock.Namespace(), "127.0.0.1-"+port(ln)+".sock"), path)

	d := &localsock.Dialer{Dir: dir}
	require.Equal(t, path, d.Path(ln.Addr().String()))
	require.Equal(t, path, d.Path("localhost:"+port(ln)))
	c, err := d.DialContext(context.Background(), ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, "unix hello", roundTrip(t, c, "hello"))

	// TCP still answers on the same listener.
	tc, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer tc.Close()
	require.Equal(t, "tcp hi", roundTrip(t, tc, "hi"))
}

func TestDialerFallsBackToTCP(t *testing.T) {
	dir := shortDir(t)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	echoServer(t, tcp) // a server without a socket
	d := &localsock.Dialer{Dir: dir}
	require.Empty(t, d.Path(tcp.Addr().String()))
	c, err := d.DialContext(context.Background(), tcp.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, "tcp a", roundTrip(t, c, "a"))

	// A socket file left by a dead server: the dial falls back to TCP.
	stale := filepath.Join(dir, localsock.Namespace(), "127.0.0.1-"+port(tcp)+".sock")
	require.NoError(t, os.MkdirAll(filepath.Dir(stale), 0o700))
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	require.NoError(t, err)
	ul.SetUnlinkOnClose(false)
	require.NoError(t, ul.Close())
	require.Equal(t, stale, d.Path(tcp.Addr().String()))
	c2, err := d.DialContext(context.Background(), tcp.Addr().String())
	require.NoError(t, err)
	defer c2.Close()
	require.Equal(t, "tcp b", roundTrip(t, c2, "b"))

	// No directory: TCP only; a name that is not an IP: TCP.
	require.Empty(t, (&localsock.Dialer{}).Path(tcp.Addr().String()))
	require.Empty(t, d.Path("example.invalid:"+port(tcp)))
	require.Empty(t, d.Path("no-port"))
}

func TestListenReplacesAStaleSocketAndCloseRemovesIt(t *testing.T) {
	dir := shortDir(t)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	stale := filepath.Join(dir, localsock.Namespace(), "127.0.0.1-"+port(tcp)+".sock")
	require.NoError(t, os.MkdirAll(filepath.Dir(stale), 0o700))
	require.NoError(t, os.WriteFile(stale, nil, 0o600))

	ln, err := localsock.Listen(tcp, dir)
	require.NoError(t, err)
	fi, err := os.Stat(stale)
	require.NoError(t, err)
	require.NotZero(t, fi.Mode()&os.ModeSocket)

	accepted := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		accepted <- err
	}()
	require.NoError(t, ln.Close())
	require.ErrorIs(t, <-accepted, net.ErrClosed)
	_, err = os.Stat(stale)
	require.True(t, errors.Is(err, os.ErrNotExist), "socket removed: %v", err)
	_, err = net.Dial("tcp", tcp.Addr().String())
	require.Error(t, err, "TCP listener closed")
	require.NoError(t, ln.Close(), "second Close")
}

func TestWildcardListenerServesLocalAddresses(t *testing.T) {
	dir := shortDir(t)
	p, ok := localsock.PathFor(dir, "net-x", &net.TCPAddr{IP: net.IPv4zero, Port: 9988})
	require.True(t, ok)
	require.Equal(t, filepath.Join(dir, "net-x", "any-9988.sock"), p)
	_, ok = localsock.PathFor(dir, "net-x", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.False(t, ok, "no port")
	_, ok = localsock.PathFor(dir, "net-x", &net.UnixAddr{Name: "/x"})
	require.False(t, ok, "not TCP")

	// A wildcard listener's socket, made by hand (tests bind 127.0.0.1 only).
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer tcp.Close()
	anyPath := filepath.Join(dir, localsock.Namespace(), "any-"+port(tcp)+".sock")
	require.NoError(t, os.MkdirAll(filepath.Dir(anyPath), 0o700))
	ul, err := net.Listen("unix", anyPath)
	require.NoError(t, err)
	echoServer(t, ul)
	d := &localsock.Dialer{Dir: dir}
	require.Equal(t, anyPath, d.Path("127.0.0.1:"+port(tcp)))
	require.Equal(t, anyPath, d.Path("127.0.0.2:"+port(tcp)), "any loopback address")
	require.Equal(t, anyPath, d.Path("0.0.0.0:"+port(tcp)))
	require.Empty(t, d.Path("192.0.2.1:"+port(tcp)), "not this host's address")
	c, err := d.DialContext(context.Background(), "127.0.0.1:"+port(tcp))
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, "unix w", roundTrip(t, c, "w"))
	c2, err := d.DialContext(context.Background(), "unix:"+anyPath)
	require.NoError(t, err)
	defer c2.Close()
	require.Equal(t, "unix u", roundTrip(t, c2, "u"))
}

func TestListenWithoutDirIsTCP(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer tcp.Close()
	ln, err := localsock.Listen(tcp, "")
	require.NoError(t, err)
	require.Same(t, tcp, ln)
}

func TestListenRefusesAPathTooLong(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer tcp.Close()
	_, err = localsock.Listen(tcp, "/tmp/"+strings.Repeat("d", localsock.MaxPath))
	require.ErrorContains(t, err, "longer than")
}

// FuzzPath: any address maps to no socket or to one inside the directory's namespace.
func FuzzPath(f *testing.F) {
	for _, s := range []string{"127.0.0.1:80", "[::1]:9", "localhost:1", "a:b:c", "", "unix:/x", "../..:1", "1.2.3.4:../../x"} {
		f.Add(s)
	}
	dir := f.TempDir()
	base := filepath.Join(dir, localsock.Namespace()) + string(filepath.Separator)
	require.NoError(f, os.MkdirAll(base, 0o700))
	f.Fuzz(func(t *testing.T, addr string) {
		p := (&localsock.Dialer{Dir: dir}).Path(addr)
		if p != "" && !strings.HasPrefix(p, base) {
			t.Fatalf("%q maps to %q outside %s", addr, p, base)
		}
	})
}

func port(ln net.Listener) string { return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) }

// TestDialerResolvesHostNames: a name is resolved and its addresses' sockets are used.
func TestDialerResolvesHostNames(t *testing.T) {
	dir := shortDir(t)
	ln := listen(t, dir)
	echoServer(t, ln)
	d := &localsock.Dialer{Dir: dir}
	d.TCP.Resolver = fakeDNS(t, net.IPv4(127, 0, 0, 1))
	c, err := d.DialContext(t.Context(), "loader.asf.test:"+port(ln))
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, "unix x", roundTrip(t, c, "x"))
}

// fakeDNS is a resolver answering every A question with ip (AAAA with nothing), over
// in-memory stream connections.
func fakeDNS(t *testing.T, ip net.IP) *net.Resolver {
	t.Helper()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			for {
				var n [2]byte
				if _, err := io.ReadFull(server, n[:]); err != nil {
					return
				}
				q := make([]byte, int(n[0])<<8|int(n[1]))
				if _, err := io.ReadFull(server, q); err != nil {
					return
				}
				var p dnsmessage.Parser
				h, err := p.Start(q)
				if err != nil {
					return
				}
				question, err := p.Question()
				if err != nil {
					return
				}
				b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
				b.EnableCompression()
				_ = b.StartQuestions()
				_ = b.Question(question)
				_ = b.StartAnswers()
				if question.Type == dnsmessage.TypeA {
					var a [4]byte
					copy(a[:], ip.To4())
					_ = b.AResource(dnsmessage.ResourceHeader{Name: question.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: a})
				}
				out, err := b.Finish()
				if err != nil {
					return
				}
				if _, err := server.Write(append([]byte{byte(len(out) >> 8), byte(len(out))}, out...)); err != nil {
					return
				}
			}
		}()
		return client, nil
	}}
}
