package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/localsock"
	"github.com/athenaserving/asf/tests/suitetest"
)

// connectedTo counts the connected Unix sockets accepted on the socket at path: the
// server side of each connection carries its listener's path in /proc/net/unix.
func connectedTo(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		t.Skipf("no /proc/net/unix: %v", err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path
		fields := strings.Fields(sc.Text())
		if len(fields) == 8 && fields[5] == "03" && fields[7] == path {
			n++
		}
	}
	return n
}

// socketOf is the Unix socket the service listening on TCP addr serves in dir.
func socketOf(t *testing.T, dir, addr string) string {
	t.Helper()
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := localsock.PathFor(dir, localsock.Namespace(), ta)
	if !ok {
		t.Fatalf("no socket path for %s", addr)
	}
	return p
}

// TestInternalHopsOverLocalSockets: with local sockets, webgate reaches atom, atom its
// loaders and lbclient, and everyone polaris over Unix sockets, under mutual TLS; once
// requests and sessions work, and a loader's death is survived as over TCP.
func TestInternalHopsOverLocalSockets(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2, LocalSockets: true})
	c := s.Client()
	for i := range 20 {
		mustOK(t, once(t, c, fmt.Sprint("req-", i)), fmt.Sprint("request ", i))
	}
	if got := fmt.Sprint(streamSession(t, c)); got != "[0 1 2]" {
		t.Fatalf("statuses = %v, want [0 1 2]", got)
	}
	dir := s.LocalSockets()
	for name, addr := range map[string]string{
		"atom (from webgate)":  s.Atoms[0].GRPCAddr(),
		"lbclient (from atom)": s.LB.GRPCAddr(),
		"polaris":              s.Polaris.GRPCAddr(),
		"loader-0 (from atom)": s.Loaders[0].GRPCAddr(),
		"loader-1 (from atom)": s.Loaders[1].GRPCAddr(),
	} {
		if n := connectedTo(t, socketOf(t, dir, addr)); n == 0 {
			t.Errorf("%s: no connection on its Unix socket", name)
		}
	}

	s.Loaders[0].Kill()
	for i := range 20 {
		mustOK(t, once(t, c, "after-kill"), fmt.Sprint("after kill ", i))
	}
	suitetest.WaitFor(t, 5*time.Second, func() bool { return s.LB.Live("echo") == 1 })
	if got := fmt.Sprint(streamSession(t, c)); got != "[0 1 2]" {
		t.Fatalf("after kill: statuses = %v, want [0 1 2]", got)
	}
}
