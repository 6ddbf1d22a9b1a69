// Package localsock lets co-located services talk over Unix domain sockets instead of
// loopback TCP, without changing an address anywhere.
//
// A server that listens on TCP host:port also listens on a Unix socket named after that
// address in a directory the services share (Listen); a client that dials host:port looks
// there first and connects to the socket when it finds one (Dialer), else over TCP as
// before. Addresses in the registry, in picks and in configuration stay host:port; a
// client on another host, in another network namespace or without the directory simply
// finds no socket. TLS, when on, runs over the socket as over TCP, so peers are
// authenticated the same way.
//
// Why: on one machine an internal hop over loopback TCP pays the whole TCP/IP path —
// segments, acknowledgements, netfilter and conntrack — on both sides of every write;
// a Unix socket copies the bytes to the peer's buffer and wakes it. One unary call over
// a multiplexed gRPC stream with a 1,280-byte payload cost 0.65–0.82× the CPU over a
// socket (docs/performance.md, "Unix sockets between co-located services").
//
// Layout: <dir>/<netns>/<host>-<port>.sock, where netns identifies the network namespace
// (two processes in one namespace cannot hold the same TCP address, so a name is never
// ambiguous) and host is the listener's IP, or "any" for a wildcard listener, which a
// client uses for any local address of that port.
//
//	ln, _ := net.Listen("tcp", cfg.GRPCListen)
//	ln, _ = localsock.Listen(ln, cfg.LocalSockets) // Accept takes connections from both
//	cc, _ := grpcx.Dial(addr, grpcx.LocalSockets(cfg.LocalSockets))
package localsock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxPath is the longest socket path Linux takes (sun_path less its terminating NUL).
// Listen serves TCP only when the path would be longer.
const MaxPath = 107

// anyHost is the host part of a wildcard listener's socket name.
const anyHost = "any"

// Namespace names the network namespace of this process ("net-4026531840"), or
// "net-default" where it cannot be read. It is read once: the process does not move.
func Namespace() string { return namespaceOnce() }

var namespaceOnce = sync.OnceValue(readNamespace)

func readNamespace() string {
	link, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return "net-default"
	}
	// "net:[4026531840]"
	id := strings.TrimSuffix(strings.TrimPrefix(link, "net:["), "]")
	if id == "" || strings.ContainsAny(id, "/[]:") {
		return "net-default"
	}
	return "net-" + id
}

// socketName is the file name of the socket of a TCP listener on host:port (host an IP,
// or anyHost).
func socketName(host, port string) string { return host + "-" + port + ".sock" }

// PathFor returns the socket a server listening on TCP address addr serves in dir (ns is
// Namespace()), and false when addr has no port or no IP host.
func PathFor(dir, ns string, addr net.Addr) (string, bool) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok || ta.Port == 0 {
		return "", false
	}
	host := anyHost
	if ta.IP != nil && !ta.IP.IsUnspecified() {
		host = ta.IP.String()
	}
	return filepath.Join(dir, ns, socketName(host, strconv.Itoa(ta.Port))), true
}

// Listener accepts the connections of a TCP listener and of its Unix socket; Addr is the
// TCP listener's.
type Listener struct {
	tcp  net.Listener
	unix *net.UnixListener
	path string

	conns    chan net.Conn
	done     chan struct{} // closed by stop: Accept returns net.ErrClosed
	stopOnce sync.Once
	once     sync.Once      // Close
	wg       sync.WaitGroup // the two accept loops
}

// Listen serves tcp's port on a Unix socket in dir too and returns a listener taking the
// connections of both; closing it closes both and removes the socket. An empty dir
// returns tcp unchanged. A stale socket of the same name (left by a process that held
// this TCP address before and died) is replaced: no live process can hold it, since this
// one holds the TCP address.
func Listen(tcp net.Listener, dir string) (net.Listener, error) {
	if dir == "" {
		return tcp, nil
	}
	path, ok := PathFor(dir, Namespace(), tcp.Addr())
	if !ok {
		return nil, fmt.Errorf("localsock: %s is not a TCP address with a port", tcp.Addr())
	}
	if len(path) > MaxPath {
		return nil, fmt.Errorf("localsock: socket path %s is longer than %d bytes: choose a shorter directory", path, MaxPath)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("localsock: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("localsock: stale socket: %w", err)
	}
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("localsock: %w", err)
	}
	l := &Listener{tcp: tcp, unix: ul, path: path, conns: make(chan net.Conn), done: make(chan struct{})}
	l.wg.Add(2)
	go l.accept(tcp, true)
	go l.accept(ul, false)
	return l, nil
}

// Path is the Unix socket's path.
func (l *Listener) Path() string { return l.path }

// Accept returns the next connection of either listener, or net.ErrClosed once the
// listener (or its TCP listener) is closed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes both listeners (the socket first, removing its file, while this process
// still holds the TCP address) and waits for their accept loops.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		err = errors.Join(l.unix.Close(), l.tcp.Close())
		l.stop()
		l.wg.Wait()
	})
	return err
}

// Addr is the TCP listener's address.
func (l *Listener) Addr() net.Addr { return l.tcp.Addr() }

// stop ends Accept.
func (l *Listener) stop() { l.stopOnce.Do(func() { close(l.done) }) }

// hand passes c to Accept, or closes it when the listener is closed first.
func (l *Listener) hand(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		_ = c.Close()
	}
}

// accept passes ln's connections on until ln is closed; other errors (out of file
// descriptors) are retried after a pause growing to a second, as net/http's server does,
// so a passing shortage never stops the server. When the TCP listener closes, Accept ends.
func (l *Listener) accept(ln net.Listener, ends bool) {
	defer l.wg.Done()
	var pause time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				if ends {
					l.stop()
				}
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
			continue
		}
		pause = 0
		l.hand(c)
	}
}

// Dialer connects to host:port over the Unix socket a co-located server serves in Dir,
// and over TCP when there is none. The zero Dir dials TCP only.
type Dialer struct {
	// Dir is the directory servers serve their sockets in (Listen's dir).
	Dir string
	// TCP dials when no socket serves the address (and bounds a socket's dial by its
	// Deadline and Timeout too).
	TCP net.Dialer
}

// Path returns the socket serving addr (host:port) in d.Dir, or "" when there is none:
// the socket of a listener on addr's IP, else of a wildcard listener on its port when
// the IP is this host's ("localhost" is 127.0.0.1).
func (d *Dialer) Path(addr string) string {
	if d.Dir == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return ""
	}
	port = strconv.FormatUint(n, 10)
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return ""
	}
	base := filepath.Join(d.Dir, Namespace())
	if !ip.IsUnspecified() {
		if p := filepath.Join(base, socketName(ip.String(), port)); isSocket(p) {
			return p
		}
	}
	if p := filepath.Join(base, socketName(anyHost, port)); isSocket(p) && isLocal(ip) {
		return p
	}
	return ""
}

// DialContext connects to addr: "unix:<path>" or "unix://<path>" over that socket,
// host:port over its socket in Dir when one accepts (a host name is resolved to find
// it), else over TCP. A socket that refuses (its server gone, the file left behind)
// falls back to TCP.
func (d *Dialer) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return d.TCP.DialContext(ctx, "unix", strings.TrimPrefix(path, "//"))
	}
	for _, p := range d.paths(ctx, addr) {
		if c, err := d.TCP.DialContext(ctx, "unix", p); err == nil {
			return c, nil
		} else if ctx.Err() != nil {
			return nil, err
		}
	}
	return d.TCP.DialContext(ctx, "tcp", addr)
}

// paths are the sockets serving addr: Path's, or for a host name those of the addresses
// it resolves to.
func (d *Dialer) paths(ctx context.Context, addr string) []string {
	if d.Dir == "" {
		return nil
	}
	if p := d.Path(addr); p != "" {
		return []string{p}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || host == "localhost" || net.ParseIP(host) != nil {
		return nil
	}
	ips, err := d.TCP.Resolver.LookupHost(ctx, host) // a nil Resolver is the default one
	if err != nil {
		return nil
	}
	var out []string
	for _, ip := range ips {
		if p := d.Path(net.JoinHostPort(ip, port)); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func isSocket(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&fs.ModeSocket != 0
}

// isLocal reports whether ip is an address of this host (in this network namespace).
func isLocal(ip net.IP) bool {
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// ListenTCP listens on TCP address addr and, when dir is not empty, on its Unix socket in
// dir too (Listen).
func ListenTCP(addr, dir string) (net.Listener, error) {
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	ln, err := Listen(tcp, dir)
	if err != nil {
		_ = tcp.Close()
		return nil, err
	}
	return ln, nil
}
