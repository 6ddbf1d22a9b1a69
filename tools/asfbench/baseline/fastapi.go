package baseline

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/athenaserving/asf/tools/asfbench/procstat"
)

//go:embed python/identity_app.py
var identityApp []byte

// FastAPIOptions configures the FastAPI + uvicorn baseline.
type FastAPIOptions struct {
	// Python is the interpreter (default /usr/bin/python3, where Debian's python3-fastapi and
	// python3-uvicorn are installed).
	Python string
	// Workers is the uvicorn worker count (one per core).
	Workers int
	// Dir is where the app file and the log are written.
	Dir string
	// StartTimeout bounds the wait for the server to answer (default 30 s).
	StartTimeout time.Duration
}

// FastAPI is a running uvicorn server.
type FastAPI struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
	err  error
}

// ErrPythonUnavailable means the interpreter or its FastAPI/uvicorn packages are missing.
var ErrPythonUnavailable = errors.New("python3 with fastapi, uvicorn, uvloop and httptools not available")

// CheckFastAPI reports whether python can import fastapi and uvicorn with uvloop and
// httptools, as uvicorn runs in production. Without httptools uvicorn falls back to h11,
// which writes a response's head and body apart, and the client's delayed ACK then holds
// every request ~40 ms: a baseline a tenth of its speed, so it is not measured at all.
func CheckFastAPI(ctx context.Context, python string) error {
	if python == "" {
		python = "/usr/bin/python3"
	}
	out, err := exec.CommandContext(ctx, python, "-c", "import fastapi, uvicorn, uvloop, httptools").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s: %s", ErrPythonUnavailable, python, out)
	}
	return nil
}

// StartFastAPI writes the app, starts uvicorn on a free loopback port and waits until it answers.
func StartFastAPI(ctx context.Context, o FastAPIOptions) (*FastAPI, error) {
	if o.Python == "" {
		o.Python = "/usr/bin/python3"
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if err := CheckFastAPI(ctx, o.Python); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "identity_app.py"), identityApp, 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(o.Dir, "uvicorn.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(o.Python, "-m", "uvicorn", "identity_app:app",
		"--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--workers", strconv.Itoa(max(o.Workers, 1)), "--loop", "uvloop", "--http", "httptools",
		"--no-access-log", "--log-level", "warning")
	cmd.Dir = o.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start uvicorn: %w", err)
	}
	f := &FastAPI{cmd: cmd, url: "http://127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	go func() {
		f.err = cmd.Wait()
		close(f.done)
	}()
	deadline := time.Now().Add(o.StartTimeout)
	for {
		resp, err := http.Get(f.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return f, nil
			}
		}
		select {
		case <-f.done:
			return nil, fmt.Errorf("uvicorn exited: %v (see %s)", f.err, filepath.Join(o.Dir, "uvicorn.log"))
		case <-ctx.Done():
			_ = f.Stop(context.Background())
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = f.Stop(context.Background())
			return nil, fmt.Errorf("uvicorn did not answer within %v", o.StartTimeout)
		}
	}
}

// URL returns http://127.0.0.1:port.
func (f *FastAPI) URL() string { return f.url }

// PIDs returns the uvicorn master and its worker processes.
func (f *FastAPI) PIDs() []int {
	p := f.cmd.Process.Pid
	return append([]int{p}, procstat.Descendants(p)...)
}

// Stop sends SIGTERM to the process group, then SIGKILL when ctx ends, and waits.
func (f *FastAPI) Stop(ctx context.Context) error {
	pgid := f.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-f.done
		return ctx.Err()
	}
}

// freePort asks the kernel for a free loopback port. The port is released before uvicorn binds
// it, so a concurrent process could take it; start-up then fails and is reported.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
