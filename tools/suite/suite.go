// Package suite starts the whole Athena Serving suite as separate processes from built
// binaries — Jaeger (the trace backend, when asked for), polaris (with embedded NATS),
// lbclient, loaders, atom, webgate — waits until each is ready, and stops them in reverse
// order. `make run` (asfrun) and the benchmark
// harness use it; the in-process equivalent for tests is tests/suitetest.
//
//	s, err := suite.Start(ctx, suite.Options{BinDir: "bin", Loaders: 2, Engine: "echo"})
//	defer s.Stop(context.Background())
//	fmt.Println(s.WebgateURL())
package suite

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/athenaserving/asf/libs/natsbus"
	"github.com/athenaserving/asf/libs/pki"
	"github.com/athenaserving/asf/libs/polarisclient"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Options say what to start.
type Options struct {
	// BinDir holds the polaris, lbclient, atom, loader and webgate binaries.
	BinDir string
	// Loaders is how many loader processes to start (default 2).
	Loaders int
	// Atoms and LBClients are how many atom and lbclient replicas to start (default 2
	// each, so that no single process fails every request): webgate spreads its calls
	// over every atom, and each atom over every lbclient (comma-separated address lists).
	// The first replica of each is named "atom" / "lbclient", the next ones "atom-2",
	// "lbclient-2", ...; with FixedPorts the second ones listen on atom 9986 (admin 9985)
	// and lbclient 9991 (admin 9992).
	Atoms, LBClients int
	// Engine and Service name the loaders' engine and service (default "echo" for both).
	Engine, Service string
	// Licence is each loader's concurrent session limit (0 = loader default).
	Licence int
	// LoaderArgs are extra flags for every loader (engine config, for example).
	LoaderArgs []string
	// LogDir receives one <name>.log per process (default: a temporary directory).
	LogDir string
	// DataDir holds the services' state, e.g. polaris's store (default: LogDir/../data).
	DataDir string
	// FixedPorts uses the design's default ports on 127.0.0.1 instead of free ones.
	FixedPorts bool
	// LogLevel for every service (default "info").
	LogLevel string
	// Extra are more loaders, started after the echo ones (the demo engines, for example).
	Extra []Loader
	// Schemas are capability schema files (schema_<id>.json) pushed to polaris before
	// atom and webgate start, under asf/default/capabilities/v1.
	Schemas []string
	// App is the demo app webgate accepts while polaris holds no apps config; zero fields
	// are generated (random keys).
	App App
	// Insecure runs the internal plane in plaintext (--insecure on every service);
	// otherwise every gRPC hop is mutual TLS with the certificates in PKIDir.
	Insecure bool
	// PKIDir holds the internal CA and one certificate per service (and asfctl for the
	// tools), generated on the first start and reused afterwards (default DataDir/pki).
	PKIDir string
	// Jaeger starts Jaeger v2 (JaegerBin, built by scripts/jaeger.sh) first, with
	// JaegerConfig, and gives every service its OTLP endpoint as --trace-endpoint. With
	// FixedPorts it listens on 127.0.0.1:4317 (OTLP/gRPC) and the UI on 127.0.0.1:16686.
	Jaeger bool
	// JaegerBin is the Jaeger binary (default BinDir/jaeger); JaegerConfig its config
	// (default deploy/jaeger/config.yaml of the repository holding BinDir).
	JaegerBin, JaegerConfig string
	// TraceEndpoint is an OTLP/gRPC endpoint (host:port) given to every service as
	// --trace-endpoint when Jaeger is off ("" and no Jaeger: tracing off).
	TraceEndpoint string
	// TraceSampleRate is webgate's --trace-sample-rate (0-1) while tracing is on ("":
	// webgate's default).
	TraceSampleRate string
	// GoMaxProcs is the GOMAXPROCS every service process (and Jaeger) runs with: 0 is
	// SharedGoMaxProcs (half the machine's cores), below 0 sets none (each process takes
	// one P per core). A GOMAXPROCS in this process's environment is passed on as it is.
	GoMaxProcs int
	// TCPOnly keeps every internal hop on loopback TCP. By default the services serve their
	// gRPC ports on Unix sockets too, in a directory of the suite's (LocalSockets), and
	// reach each other over them (libs/localsock; docs/operations.md "Co-located services").
	TCPOnly bool
}

// SharedGoMaxProcs is the GOMAXPROCS the suite gives each service by default: half the
// cores this process may run on, at least 1. The suite's processes share the machine;
// with a P per core each, every hand-off between goroutines wakes another thread of the
// same process to spin for work, on the cores the other services need (docs/operations.md,
// "Co-located services").
func SharedGoMaxProcs() int { return max(1, runtime.NumCPU()/2) }

// GoMaxProcsFor is the GOMAXPROCS the suite sets on its processes for Options.GoMaxProcs
// n, and false when it sets none: n below 0, or a GOMAXPROCS in this process's
// environment, which they inherit as it is.
func GoMaxProcsFor(n int) (int, bool) {
	switch {
	case n < 0 || os.Getenv("GOMAXPROCS") != "":
		return 0, false
	case n == 0:
		return SharedGoMaxProcs(), true
	}
	return n, true
}

// procEnv is the environment of a service process: this process's, with GOMAXPROCS set
// as Options.GoMaxProcs says.
func (o Options) procEnv() []string {
	env := os.Environ()
	if n, ok := GoMaxProcsFor(o.GoMaxProcs); ok {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(n))
	}
	return env
}

// RuntimeGODEBUG is what make build links into webgate, atom, lbclient and polaris as
// their default GODEBUG, and what the suite gives a loader whose engine makes no C calls
// in its process: the Go runtime's monitor thread never takes its deep sleep, so a
// process that goes idle and busy again thousands of times a second does not wake it and
// poll every 20 µs after each wake (docs/operations.md, "Go runtime monitor").
const RuntimeGODEBUG = "schedtrace=2147483647"

// callsC reports whether a loader started with args may call C engine code in its own
// process: unless its last --engine is echo, python or forward, it may (an AIGES
// libwrapper.so, or an aiges.toml naming one), and is left with Go's default monitor,
// which hands the process's P on within ~20 µs of a long C call after an idle spell.
func callsC(args []string) bool {
	engine := ""
	for i, a := range args {
		switch {
		case a == "--engine" && i+1 < len(args):
			engine = args[i+1]
		case strings.HasPrefix(a, "--engine="):
			engine = strings.TrimPrefix(a, "--engine=")
		}
	}
	switch engine {
	case "echo", "python", "forward":
		return false
	}
	return true
}

// WithRuntimeGODEBUG returns env with RuntimeGODEBUG first in its GODEBUG, so settings
// already in this process's GODEBUG (later in the list) still win.
func WithRuntimeGODEBUG(env []string) []string {
	out := make([]string, 0, len(env)+1)
	v := RuntimeGODEBUG
	for _, e := range env {
		if cur, ok := strings.CutPrefix(e, "GODEBUG="); ok {
			if cur != "" {
				v += "," + cur
			}
			continue
		}
		out = append(out, e)
	}
	return append(out, "GODEBUG="+v)
}

// PKIInstance is the instance name of the suite's certificates: every process runs on
// 127.0.0.1, and an instance naming a host covers every port on it.
const PKIInstance = "127.0.0.1"

// PKIWants are the certificates of a suite's PKI directory: one per service and asfctl
// (tools: schema pushes, asfbench).
func PKIWants() []pki.Want { return pki.ServiceWants(pki.Services, PKIInstance) }

// TLS is the internal-TLS config of certificate name (a service, or asfctl) in the
// suite's PKI directory; with Options.Insecure it is plaintext.
func (s *Suite) TLS(name string) tlsx.Config {
	if s.opts.Insecure {
		return tlsx.Config{Insecure: true}
	}
	d := s.opts.PKIDir
	return tlsx.Config{CA: filepath.Join(d, pki.CACertFile), Cert: filepath.Join(d, name+".crt"), Key: filepath.Join(d, name+".key")}
}

// PKIDir is the directory of the suite's CA and certificates.
func (s *Suite) PKIDir() string { return s.opts.PKIDir }

// DialOption is how a tool dials service peer of the suite: mutual TLS as asfctl, or
// plaintext with Options.Insecure.
func (s *Suite) DialOption(peer string) (grpc.DialOption, error) {
	b, err := tlsx.Load(s.TLS("asfctl"), zerolog.Nop())
	if err != nil {
		return nil, err
	}
	return tlsx.DialOption(b, peer), nil
}

// tlsArgs are the internal-TLS flags of service svc.
func (s *Suite) tlsArgs(svc string) []string {
	c := s.TLS(svc)
	if c.Insecure {
		return []string{"--insecure"}
	}
	return []string{"--tls-ca", c.CA, "--tls-cert", c.Cert, "--tls-key", c.Key}
}

// Loader is one more loader process: its process name (for logs and Kill), the service it
// registers, its engine flags (for example --engine c --engine-path lib.so), and the
// working directory it starts in ("" = this process's; an aiges.toml's directory, for
// example).
type Loader struct {
	Name, Service string
	Args          []string
	Dir           string
}

// App is an app's id and HMAC key pair.
type App struct {
	AppID, APIKey, APISecret string
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

// Proc is one started process.
type Proc struct {
	Name  string
	Cmd   *exec.Cmd
	Addrs map[string]string // grpc, http, admin, nats — as logged in the ready line
	done  chan struct{}
	err   error
	// how it was started, for Restart
	dir, bin string
	args     []string
}

// PID is the process id.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Suite is a running suite.
type Suite struct {
	opts  Options
	mu    sync.Mutex
	procs []*Proc // in start order
	// adminToken is the polaris admin token of this start (polaris admin-token): schema
	// pushes and other admin operations need it.
	adminToken string
	// flagsMu guards flags: whether a binary lists a flag in its --help (hasFlag).
	flagsMu sync.Mutex
	flags   map[string]bool
	// sockDir is where the services serve Unix sockets (LocalSockets); removed by Stop.
	sockDir string
}

const readyTimeout = 60 * time.Second

// Start starts every service in dependency order and returns when all are ready.
// On any failure it stops what it started and returns the error with the failing
// process's log file named.
func Start(ctx context.Context, o Options) (*Suite, error) {
	if o.Loaders <= 0 {
		o.Loaders = 2
	}
	if o.Atoms <= 0 {
		o.Atoms = 2
	}
	if o.LBClients <= 0 {
		o.LBClients = 2
	}
	if o.Engine == "" {
		o.Engine = "echo"
	}
	if o.Service == "" {
		o.Service = o.Engine
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.App.AppID == "" {
		o.App.AppID = "demo"
	}
	if o.App.APIKey == "" {
		o.App.APIKey = randomHex(16)
	}
	if o.App.APISecret == "" {
		o.App.APISecret = randomHex(24)
	}
	if o.LogDir == "" {
		d, err := os.MkdirTemp("", "asf-suite-")
		if err != nil {
			return nil, err
		}
		o.LogDir = d
	}
	if o.DataDir == "" {
		o.DataDir = filepath.Join(filepath.Dir(filepath.Clean(o.LogDir)), "data")
	}
	if err := os.MkdirAll(o.LogDir, 0o755); err != nil {
		return nil, err
	}
	// NATS credentials: generated on the first start into DataDir/nats and reused; polaris
	// authorizes their public keys, lbclient connects with its seed.
	if _, err := natsbus.GenerateCredentials(filepath.Join(o.DataDir, "nats"), "asf"); err != nil {
		return nil, fmt.Errorf("suite: %w", err)
	}
	if o.PKIDir == "" {
		o.PKIDir = filepath.Join(o.DataDir, "pki")
	}
	if !o.Insecure {
		if err := pki.Ensure(o.PKIDir, PKIWants()); err != nil {
			return nil, fmt.Errorf("suite: %w", err)
		}
	}
	if o.Jaeger {
		if err := o.jaegerAvailable(); err != nil {
			return nil, fmt.Errorf("suite: %w", err)
		}
	}
	s := &Suite{opts: o}
	if !o.TCPOnly {
		// Short, under the system's temporary directory: a socket path holds 107 bytes,
		// and LogDir may be deep (a test's temporary directory).
		d, err := os.MkdirTemp("", "asf-sock-")
		if err != nil {
			return nil, fmt.Errorf("suite: %w", err)
		}
		s.sockDir = d
	}
	if err := s.startAll(ctx); err != nil {
		_ = s.Stop(context.Background())
		return nil, err
	}
	return s, nil
}

func (s *Suite) listen(port int) string {
	if s.opts.FixedPorts {
		return "127.0.0.1:" + strconv.Itoa(port)
	}
	return "127.0.0.1:0"
}

func (s *Suite) startAll(ctx context.Context) error {
	o := s.opts
	s.adminToken = "asf_suite_" + randomHex(24)
	// Secrets reach the processes in files (mode 0600), never on their command lines,
	// which every user of the host can read (ps, /proc/<pid>/cmdline).
	secrets := filepath.Join(o.DataDir, "secrets")
	tokenFile, err := writeSecret(secrets, "polaris-admin-token", s.adminToken)
	if err != nil {
		return err
	}
	demoFile, err := writeSecret(secrets, "webgate-demo-app", o.App.AppID+":"+o.App.APIKey+":"+o.App.APISecret)
	if err != nil {
		return err
	}
	if o.Jaeger {
		if err := s.startJaeger(ctx); err != nil {
			return err
		}
	}
	pol, err := s.start(ctx, "polaris", "polaris",
		"--grpc-listen", s.listen(6868), "--admin-listen", s.listen(6869), "--nats-listen", s.listen(4222),
		"--console-listen", s.listen(8095), "--nats-users", s.NATSDir(), "--data-dir", filepath.Join(o.DataDir, "polaris"), "--admin-token-file", tokenFile)
	if err != nil {
		return err
	}
	polaris := pol.Addrs["grpc"]
	var lbs []string
	for i := 0; i < o.LBClients; i++ {
		grpcPort, adminPort := 9989, 9990
		if i > 0 {
			grpcPort, adminPort = 9989+2*i, 9990+2*i
		}
		lb, err := s.start(ctx, replicaName("lbclient", i), "lbclient",
			"--grpc-listen", s.listen(grpcPort), "--admin-listen", s.listen(adminPort), "--polaris", polaris,
			"--nats-nkey-seed-file", s.NATSSeedFile(natsbus.UserLBClient))
		if err != nil {
			return err
		}
		lbs = append(lbs, lb.Addrs["grpc"])
	}
	for i := 0; i < o.Loaders; i++ {
		args := []string{"--grpc-listen", s.listen(5090 + 2*i), "--admin-listen", s.listen(5091 + 2*i),
			"--polaris", polaris, "--engine", o.Engine, "--service", o.Service, "--warm-up", "0s"}
		if o.Licence > 0 {
			args = append(args, "--licence", strconv.Itoa(o.Licence))
		}
		if _, err := s.start(ctx, fmt.Sprintf("loader-%d", i+1), "loader", append(args, o.LoaderArgs...)...); err != nil {
			return err
		}
	}
	for i, l := range o.Extra {
		args := []string{"--grpc-listen", s.listen(5190 + 2*i), "--admin-listen", s.listen(5191 + 2*i),
			"--polaris", polaris, "--service", l.Service, "--warm-up", "0s"}
		if _, err := s.startIn(ctx, l.Name, l.Dir, "loader", append(args, l.Args...)...); err != nil {
			return err
		}
	}
	opt, err := s.DialOption("polaris")
	if err != nil {
		return err
	}
	if err := pushSchemas(ctx, opt, polaris, s.adminToken, o.Schemas); err != nil {
		return err
	}
	var atoms []string
	for i := 0; i < o.Atoms; i++ {
		name := replicaName("atom", i)
		at, err := s.start(ctx, name, "atom",
			"--grpc-listen", s.listen(9988-2*i), "--admin-listen", s.listen(9987-2*i), "--lb", strings.Join(lbs, ","), "--polaris", polaris,
			"--data-dir", filepath.Join(o.DataDir, name))
		if err != nil {
			return err
		}
		atoms = append(atoms, at.Addrs["grpc"])
	}
	_, err = s.start(ctx, "webgate", "webgate",
		"--http-listen", s.listen(8889), "--admin-listen", s.listen(8890), "--atom", strings.Join(atoms, ","),
		"--polaris", polaris, "--demo-app-file", demoFile, "--data-dir", filepath.Join(o.DataDir, "webgate"))
	return err
}

// replicaName names replica i (from 0) of service svc: svc, svc-2, svc-3, ...
func replicaName(svc string, i int) string {
	if i == 0 {
		return svc
	}
	return fmt.Sprintf("%s-%d", svc, i+1)
}

// writeSecret writes value to dir/name, readable by this user only, and returns its path.
func writeSecret(dir, name, value string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("secrets: %w", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("secrets: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil { // an older file keeps its mode otherwise
		return "", fmt.Errorf("secrets: %w", err)
	}
	return path, nil
}

// start runs bin with args, tees its stderr into <LogDir>/<name>.log, and waits for its
// "ready" log line and then for its /readyz.
func (s *Suite) start(ctx context.Context, name, bin string, args ...string) (*Proc, error) {
	return s.startIn(ctx, name, "", bin, args...)
}

// startIn is start with the process's working directory set to dir ("" = this process's).
func (s *Suite) startIn(ctx context.Context, name, dir, bin string, args ...string) (*Proc, error) {
	args = append(append(append(append(args, "--log-level", s.opts.LogLevel), s.tlsArgs(bin)...), s.traceArgs(bin)...), s.socketArgs(bin)...)
	return s.launch(ctx, name, dir, bin, args, os.Create)
}

// launch runs bin with its complete args (see startIn) and waits until it is ready; the
// log file is opened with open (created, or appended to on a restart).
func (s *Suite) launch(ctx context.Context, name, dir, bin string, args []string, open func(string) (*os.File, error)) (*Proc, error) {
	logPath := filepath.Join(s.opts.LogDir, name+".log")
	lf, err := open(logPath)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(s.opts.BinDir, bin)
	if dir != "" {
		if path, err = filepath.Abs(path); err != nil {
			lf.Close()
			return nil, err
		}
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = s.opts.procEnv()
	if bin == "loader" && !callsC(args) {
		cmd.Env = WithRuntimeGODEBUG(cmd.Env)
	}
	cmd.Stdout = lf
	stderr, err := cmd.StderrPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, done: make(chan struct{}), dir: dir, bin: bin, args: args}
	s.mu.Lock()
	replaced := false
	for i, q := range s.procs { // a restart keeps the process's place in the stop order
		if q.Name == name {
			s.procs[i], replaced = p, true
		}
	}
	if !replaced {
		s.procs = append(s.procs, p)
	}
	s.mu.Unlock()

	ready := make(chan map[string]string, 1)
	go func() { // owned by p: ends when the process closes stderr
		scanReady(stderr, lf, ready)
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	t := time.NewTimer(readyTimeout)
	defer t.Stop()
	select {
	case p.Addrs = <-ready:
	case <-p.done:
		return nil, fmt.Errorf("%s exited during start-up (%v): see %s", name, p.err, logPath)
	case <-t.C:
		return nil, fmt.Errorf("%s not ready after %s: see %s", name, readyTimeout, logPath)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if adm := p.Addrs["admin"]; adm != "" {
		if err := waitHTTP(ctx, "http://"+adm+"/readyz", readyTimeout, p.done); err != nil {
			return nil, fmt.Errorf("%s readyz: %w: see %s", name, err, logPath)
		}
	}
	return p, nil
}

// scanReady copies r to w and sends the address fields of the first "ready" line.
func scanReady(r io.Reader, w io.Writer, ready chan<- map[string]string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	sent := false
	addrs := map[string]string{}
	for sc.Scan() {
		line := sc.Bytes()
		_, _ = w.Write(append(line, '\n'))
		if sent {
			continue
		}
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		if v, ok := m["token"].(string); ok { // polaris's first admin token, logged once
			addrs["token"] = v
		}
		if m["message"] != "ready" {
			continue
		}
		for _, k := range []string{"grpc", "http", "admin", "nats", "console"} {
			if v, ok := m[k].(string); ok {
				addrs[k] = v
			}
		}
		ready <- addrs
		sent = true
	}
	_, _ = io.Copy(w, r)
}

func waitHTTP(ctx context.Context, url string, d time.Duration, dead <-chan struct{}) error {
	deadline := time.Now().Add(d)
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("not ready in time")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-dead:
			return errors.New("process exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM to every process in reverse start order, waiting for each (SIGKILL
// after 20 s), so webgate drains before atom, and loaders deregister before polaris stops.
func (s *Suite) Stop(ctx context.Context) error {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		if err := stopProc(ctx, procs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if s.sockDir != "" {
		errs = append(errs, os.RemoveAll(s.sockDir))
	}
	return errors.Join(errs...)
}

// LocalSockets is the directory the services serve and dial Unix sockets in ("" with
// Options.TCPOnly).
func (s *Suite) LocalSockets() string { return s.sockDir }

// socketArgs is --local-sockets for a service that has the flag, while the suite has a
// socket directory.
func (s *Suite) socketArgs(bin string) []string {
	if s.sockDir == "" || !s.hasFlag(bin, "local-sockets") {
		return nil
	}
	return []string{"--local-sockets", s.sockDir}
}

func stopProc(ctx context.Context, p *Proc) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(20 * time.Second)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	_ = p.Cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s did not stop on SIGTERM: killed", p.Name)
}

// Kill sends SIGKILL to the named process (for example "loader-1") and waits for it.
func (s *Suite) Kill(name string) error {
	p := s.proc(name)
	if p == nil {
		return fmt.Errorf("no process %s", name)
	}
	_ = p.Cmd.Process.Kill()
	<-p.done
	return nil
}

// Signal sends sig to the named process without waiting: SIGSTOP freezes it, SIGCONT
// resumes it.
func (s *Suite) Signal(name string, sig syscall.Signal) error {
	p := s.proc(name)
	if p == nil {
		return fmt.Errorf("no process %s", name)
	}
	if err := p.Cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", name, err)
	}
	return nil
}

// Terminate sends SIGTERM to the named process and waits for it to exit (SIGKILL after
// 20 s or when ctx ends).
func (s *Suite) Terminate(ctx context.Context, name string) error {
	p := s.proc(name)
	if p == nil {
		return fmt.Errorf("no process %s", name)
	}
	return stopProc(ctx, p)
}

// listenKinds maps each listen flag to the address kind of the ready line it binds.
var listenKinds = map[string]string{"--grpc-listen": "grpc", "--admin-listen": "admin", "--nats-listen": "nats",
	"--console-listen": "console", "--http-listen": "http"}

// Restart starts the named process again after it exited (Kill, Terminate), with the
// same flags and on the addresses it had bound, so that its peers find it where they
// left it; it returns when the new process is ready. Its log is appended to.
func (s *Suite) Restart(ctx context.Context, name string) error {
	p := s.proc(name)
	if p == nil {
		return fmt.Errorf("no process %s", name)
	}
	select {
	case <-p.done:
	default:
		return fmt.Errorf("restart %s: still running", name)
	}
	args := append([]string(nil), p.args...)
	for i := 0; i+1 < len(args); i++ {
		if kind, ok := listenKinds[args[i]]; ok {
			if a := p.Addrs[kind]; a != "" {
				if _, rest, found := strings.Cut(a, "://"); found {
					a = rest
				}
				args[i+1] = a
			}
		}
	}
	appendLog := func(path string) (*os.File, error) {
		return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	}
	if _, err := s.launch(ctx, name, p.dir, p.bin, args, appendLog); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	return nil
}

// Running reports whether the named process is running (a stopped one counts).
func (s *Suite) Running(name string) bool {
	p := s.proc(name)
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (s *Suite) proc(name string) *Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func (s *Suite) addr(name, kind string) string {
	if p := s.proc(name); p != nil {
		return p.Addrs[kind]
	}
	return ""
}

// Procs returns the started processes in start order.
func (s *Suite) Procs() []*Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Proc(nil), s.procs...)
}

// App is the demo app's credentials.
func (s *Suite) App() App { return s.opts.App }

// AdminToken is the polaris admin token of this start (given to polaris as admin-token;
// never stored, a new one each start).
func (s *Suite) AdminToken() string { return s.adminToken }

// ConsoleURL is the URL of polaris's web console.
func (s *Suite) ConsoleURL() string { return "http://" + s.addr("polaris", "console") + "/ui/" }

// WebgateURL is the base URL of webgate (http://host:port).
func (s *Suite) WebgateURL() string { return "http://" + s.addr("webgate", "http") }

// AtomAddr is the first atom's gRPC address.
func (s *Suite) AtomAddr() string { return s.addr("atom", "grpc") }

// LBAddr is the first lbclient's gRPC address.
func (s *Suite) LBAddr() string { return s.addr("lbclient", "grpc") }

// AtomAddrs are the gRPC addresses of every atom replica.
func (s *Suite) AtomAddrs() []string { return s.grpcAddrs("atom") }

// LBAddrs are the gRPC addresses of every lbclient replica.
func (s *Suite) LBAddrs() []string { return s.grpcAddrs("lbclient") }

func (s *Suite) grpcAddrs(svc string) []string {
	var out []string
	for _, p := range s.Procs() {
		if filepath.Base(p.Cmd.Path) == svc {
			out = append(out, p.Addrs["grpc"])
		}
	}
	return out
}

// PolarisAddr is polaris's gRPC address.
func (s *Suite) PolarisAddr() string { return s.addr("polaris", "grpc") }

// NATSURL is the URL of the NATS server embedded in polaris.
func (s *Suite) NATSURL() string { return s.addr("polaris", "nats") }

// NATSDir is the directory of the suite's NATS credentials: <service>.nk seeds,
// <service>.pub public keys and auth.conf (natsbus.GenerateCredentials).
func (s *Suite) NATSDir() string { return filepath.Join(s.opts.DataDir, "nats") }

// NATSSeedFile is the nkey seed file of service's NATS user (natsbus.Users); tools that
// only watch events (asfbench) connect as lbclient, whose user may only subscribe.
func (s *Suite) NATSSeedFile(service string) string {
	return filepath.Join(s.NATSDir(), service+natsbus.SeedExt)
}

// LogDir is where the processes' logs are.
func (s *Suite) LogDir() string { return s.opts.LogDir }

// LoaderAddrs are the loaders' gRPC addresses.
func (s *Suite) LoaderAddrs() []string {
	var out []string
	for _, p := range s.Procs() {
		if filepath.Base(p.Cmd.Path) == "loader" {
			out = append(out, p.Addrs["grpc"])
		}
	}
	return out
}

// PIDs maps each service name (polaris, lbclient, loader, atom, webgate) to its pids.
func (s *Suite) PIDs() map[string][]int {
	out := map[string][]int{}
	for _, p := range s.Procs() {
		svc := filepath.Base(p.Cmd.Path)
		out[svc] = append(out[svc], p.PID())
	}
	return out
}

// AdminAddrs maps each service name to its admin HTTP addresses.
func (s *Suite) AdminAddrs() map[string][]string {
	out := map[string][]string{}
	for _, p := range s.Procs() {
		svc := filepath.Base(p.Cmd.Path)
		out[svc] = append(out[svc], p.Addrs["admin"])
	}
	return out
}

// pushSchemas publishes capability schemas to polaris as an operator would.
func pushSchemas(ctx context.Context, tlsOpt grpc.DialOption, polaris, token string, files []string) error {
	if len(files) == 0 {
		return nil
	}
	c, err := polarisclient.DialWith(polaris, polarisclient.Options{Log: zerolog.Nop(), DialOptions: []grpc.DialOption{tlsOpt}})
	if err != nil {
		return err
	}
	defer c.Close()
	// Pushing is an admin operation: it carries the admin token.
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		key := &polarispb.ConfigKey{Project: "asf", Group: "default", Service: "capabilities", Version: "v1", File: filepath.Base(f)}
		if cur, err := c.Config.Get(ctx, &polarispb.GetConfigRequest{Key: key}); err == nil && bytes.Equal(cur.GetContent(), b) {
			continue // already the current revision (a restart on the same data directory)
		}
		if _, err := c.Config.Push(ctx, &polarispb.PushConfigRequest{Key: key, Content: b, Comment: "pushed by tools/suite"}); err != nil {
			return fmt.Errorf("push schema %s: %w", f, err)
		}
	}
	return nil
}
