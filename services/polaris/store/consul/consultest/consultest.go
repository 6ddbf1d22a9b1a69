// Package consultest starts a throw-away Consul agent (`consul agent -dev`) for tests, on
// 127.0.0.1 with free ports and its data in a temporary directory. The binary is
// $ASF_CONSUL_BIN or bin/consul at the workspace root (the directory holding go.work),
// built by scripts/consul.sh; without it the test is skipped.
package consultest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Binary returns the path of the Consul binary, or "" with the reason it is missing.
func Binary() (string, string) {
	if p := os.Getenv("ASF_CONSUL_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Sprintf("ASF_CONSUL_BIN=%s: %v", p, err)
		}
		return p, ""
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err.Error()
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			p := filepath.Join(dir, "bin", "consul")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Sprintf("%s missing: build it with scripts/consul.sh (or set ASF_CONSUL_BIN)", p)
			}
			return p, ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "no go.work above the test and ASF_CONSUL_BIN unset: build bin/consul with scripts/consul.sh"
		}
		dir = parent
	}
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	return out
}

// Start starts a Consul dev agent and returns its HTTP address (127.0.0.1:port); the
// agent is stopped when the test ends. It skips the test when the binary is missing.
func Start(t testing.TB) string {
	t.Helper()
	bin, why := Binary()
	if bin == "" {
		t.Skip("consul agent not available: " + why)
	}
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		addr, stop, err := start(bin, dir, freePorts(t, 6))
		if err == nil {
			t.Cleanup(stop)
			return addr
		}
		if attempt == 2 {
			t.Fatal(err)
		}
	}
}

func start(bin, dir string, p []int) (string, func(), error) {
	logPath := filepath.Join(dir, "consul-"+strconv.Itoa(p[0])+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "agent", "-dev",
		"-bind=127.0.0.1", "-client=127.0.0.1", "-node=polaris-test",
		"-data-dir="+filepath.Join(dir, "data-"+strconv.Itoa(p[0])),
		"-http-port="+strconv.Itoa(p[0]), "-dns-port=-1",
		"-serf-lan-port="+strconv.Itoa(p[1]), "-serf-wan-port="+strconv.Itoa(p[2]),
		"-server-port="+strconv.Itoa(p[3]), "-grpc-port="+strconv.Itoa(p[4]),
		"-grpc-tls-port="+strconv.Itoa(p[5]), "-log-level=warn",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return "", nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = logf.Close()
	}
	addr := "127.0.0.1:" + strconv.Itoa(p[0])
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			stop()
			out, _ := os.ReadFile(logPath)
			return "", nil, fmt.Errorf("consul agent exited: %v\n%s", err, out)
		default:
		}
		resp, err := client.Get("http://" + addr + "/v1/status/leader")
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK && len(bytes.Trim(b.Bytes(), "\" \n")) > 0 {
				return addr, stop, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	out, _ := os.ReadFile(logPath)
	return "", nil, fmt.Errorf("consul agent at %s not ready in 30s\n%s", addr, out)
}
