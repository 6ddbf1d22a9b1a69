package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/pki"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/rs/zerolog"
)

// childLoaderEnv, when set in the environment of this test binary, makes it run one echo
// loader instead of the tests: its value is the polaris address; ASF_E2E_PKI names the
// suite's certificate directory. It prints "ADDR <grpc address>" once serving.
const childLoaderEnv = "ASF_E2E_CHILD_LOADER"

func TestMain(m *testing.M) {
	if polarisAddr := os.Getenv(childLoaderEnv); polarisAddr != "" {
		os.Exit(runChildLoader(polarisAddr, os.Getenv("ASF_E2E_PKI")))
	}
	os.Exit(m.Run())
}

func runChildLoader(polarisAddr, pkiDir string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	c := loader.DefaultConfig()
	c.GRPCListen, c.AdminListen, c.PolarisAddr = "127.0.0.1:0", "127.0.0.1:0", polarisAddr
	c.Service, c.Engine, c.Licence = "echo", "echo", 10
	c.WarmUp, c.HeartbeatInterval, c.DrainTimeout = 0, 200*time.Millisecond, time.Second
	c.TLS = tlsx.Config{CA: filepath.Join(pkiDir, pki.CACertFile), Cert: filepath.Join(pkiDir, "loader.crt"), Key: filepath.Join(pkiDir, "loader.key"), Insecure: true}
	log := zerolog.New(os.Stderr).Level(zerolog.WarnLevel)
	l, err := loader.New(c, log, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child loader:", err)
		return 1
	}
	if err := l.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child loader:", err)
		return 1
	}
	fmt.Printf("ADDR %s\n", l.GRPCAddr())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.Shutdown(sctx)
	return 0
}

// startChildLoader runs an echo loader in a child process registered with the suite's
// polaris and returns the process and its gRPC address; the test's cleanup kills it.
func startChildLoader(t *testing.T, s *suitetest.Suite) (*os.Process, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childLoaderEnv+"="+s.Polaris.GRPCAddr(), "ASF_E2E_PKI="+s.PKIDir())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd.Process, a
	case <-time.After(30 * time.Second):
		t.Fatal("child loader did not start within 30 s")
	}
	return nil, ""
}

// frozenBound is how soon after SIGSTOP the sessions on the frozen loader must have
// their error frame: lbclient's stale-after (3 s) counted from the loader's last
// heartbeat, which is at most a few tens of milliseconds before the stop under load
// (every licence change is reported), plus its 50 ms expiry tick, the drop's way to atom
// and the error frame's way to the client, with scheduling slack.
const frozenBound = 3500 * time.Millisecond

// TestFrozenLoaderIsDroppedWithinThreeSeconds freezes (SIGSTOP) one of three loaders
// under a steady once load with sessions open on every loader: no once request fails
// (the frozen loader's are retried elsewhere), the sessions on it end with one 10222
// error frame within frozenBound, the others go on; after SIGCONT the loader is back in
// rotation.
func TestFrozenLoaderIsDroppedWithinThreeSeconds(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2})
	proc, childAddr := startChildLoader(t, s)
	suitetest.WaitFor(t, 10*time.Second, func() bool { return s.LB.Live("echo") == 3 })
	t.Logf("child loader %s (pid %d)", childAddr, proc.Pid)

	// Sessions with a first result, so they cannot be reopened elsewhere.
	c := s.Client()
	const sessions = 12
	var open []*asetest.Session
	for i := range sessions {
		ss, err := c.Stream(t.Context(), "echo")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ss.Close() })
		if err := ss.Send(asetest.Frame{Status: 0, Seq: asetest.Int(0), Header: map[string]any{"uid": fmt.Sprintf("u%d", i)},
			Payload: map[string]asetest.Data{"input": asetest.Audio([]byte("first"))}}); err != nil {
			t.Fatal(err)
		}
		if r, err := ss.Recv(5 * time.Second); err != nil || r.Header.Code != 0 {
			t.Fatalf("session %d first result: %v %v", i, r, err)
		}
		open = append(open, ss)
	}

	load := startOnceLoad(t, c, 4)
	suitetest.WaitFor(t, 10*time.Second, func() bool { return load.ok.Load() >= 50 })

	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()

	type outcome struct {
		code int
		at   time.Time
		err  error
	}
	outcomes := make([]outcome, sessions)
	var wg sync.WaitGroup
	for i, ss := range open {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ss.Send(asetest.Frame{Status: 1, Seq: asetest.Int(1), OnlyPayload: true,
				Payload: map[string]asetest.Data{"input": asetest.Audio([]byte("second"))}}); err != nil {
				outcomes[i] = outcome{err: err, at: time.Now()}
				return
			}
			r, err := ss.Recv(10 * time.Second)
			if err != nil {
				outcomes[i] = outcome{err: err, at: time.Now()}
				return
			}
			outcomes[i] = outcome{code: r.Header.Code, at: time.Now()}
		}()
	}
	wg.Wait()
	failedSessions := 0
	for i, o := range outcomes {
		switch {
		case o.err != nil:
			t.Errorf("session %d: no frame: %v", i, o.err)
		case o.code == 0:
		case o.code == 10222:
			failedSessions++
			took := o.at.Sub(stopped)
			t.Logf("session %d: error frame 10222 %v after SIGSTOP", i, took)
			if took > frozenBound {
				t.Errorf("session %d: error frame %v after SIGSTOP, want ≤ %v", i, took, frozenBound)
			}
		default:
			t.Errorf("session %d: code %d, want 0 or 10222", i, o.code)
		}
	}
	if failedSessions == 0 {
		t.Fatal("no session was on the frozen loader")
	}

	// The once load runs on through the freeze: none fails.
	settle(t, load, 2*time.Second)
	if n, _, msg := load.failed(); n > 0 {
		t.Fatalf("%d once requests failed around the freeze, last: %s", n, msg)
	}
	suitetest.WaitFor(t, 5*time.Second, func() bool { return s.LB.Live("echo") == 2 })

	if err := proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	suitetest.WaitFor(t, 10*time.Second, func() bool { return s.LB.Live("echo") == 3 })
	settle(t, load, time.Second)
	if n, _, msg := load.failed(); n > 0 {
		t.Fatalf("%d once requests failed after SIGCONT, last: %s", n, msg)
	}
}
