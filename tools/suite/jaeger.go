package suite

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

// Jaeger's default local ports (deploy/jaeger/config.yaml), used with FixedPorts.
const (
	jaegerOTLPGRPCPort  = 4317
	jaegerOTLPHTTPPort  = 4318
	jaegerQueryHTTPPort = 16686
	jaegerQueryGRPCPort = 16685
)

// jaegerReadyMsg is the collector's log message once every pipeline and extension runs.
const jaegerReadyMsg = "Everything is ready. Begin running and processing data."

// JaegerName is the process name of the suite's Jaeger (its log is <LogDir>/jaeger.log).
const JaegerName = "jaeger"

// jaegerConfig is the Jaeger config file of o: JaegerConfig, else deploy/jaeger/config.yaml
// in the repository holding BinDir (or JaegerBin or the file it links to, or the working
// directory).
func (o Options) jaegerConfig() (string, error) {
	if o.JaegerConfig != "" {
		return o.JaegerConfig, nil
	}
	dirs := []string{o.BinDir, filepath.Dir(o.JaegerBinary())}
	if real, err := filepath.EvalSymlinks(o.JaegerBinary()); err == nil {
		dirs = append(dirs, filepath.Dir(real))
	}
	var err error
	for _, dir := range append(dirs, ".") {
		var root string
		if root, err = RepoRoot(dir); err == nil {
			return filepath.Join(root, "deploy", "jaeger", "config.yaml"), nil
		}
	}
	return "", fmt.Errorf("jaeger config: %w (set Options.JaegerConfig)", err)
}

// JaegerBinary is the Jaeger binary of o: JaegerBin, else BinDir/jaeger.
func (o Options) JaegerBinary() string {
	if o.JaegerBin != "" {
		return o.JaegerBin
	}
	return filepath.Join(o.BinDir, "jaeger")
}

// startJaeger starts Jaeger v2 with the suite's config and waits until it accepts spans
// (the collector reports every component running) and answers its query API. It is the
// first process, so Stop ends it last, after the services flushed their spans.
func (s *Suite) startJaeger(ctx context.Context) error {
	o := s.opts
	config, err := o.jaegerConfig()
	if err != nil {
		return err
	}
	otlp, otlpHTTP := "127.0.0.1:"+strconv.Itoa(jaegerOTLPGRPCPort), "127.0.0.1:"+strconv.Itoa(jaegerOTLPHTTPPort)
	queryHTTP, queryGRPC := "127.0.0.1:"+strconv.Itoa(jaegerQueryHTTPPort), "127.0.0.1:"+strconv.Itoa(jaegerQueryGRPCPort)
	if !o.FixedPorts {
		// The query service binds port 0 and logs its address; the OTLP receiver does not
		// report the ports it bound, so those are picked free here.
		ports, err := freePorts(2)
		if err != nil {
			return err
		}
		otlp, otlpHTTP = "127.0.0.1:"+strconv.Itoa(ports[0]), "127.0.0.1:"+strconv.Itoa(ports[1])
		queryHTTP, queryGRPC = "127.0.0.1:0", "127.0.0.1:0"
	}
	logPath := filepath.Join(o.LogDir, JaegerName+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(o.JaegerBinary(), "--config", config)
	cmd.Env = append(o.procEnv(),
		"ASF_JAEGER_OTLP_GRPC_LISTEN="+otlp, "ASF_JAEGER_OTLP_HTTP_LISTEN="+otlpHTTP,
		"ASF_JAEGER_QUERY_HTTP_LISTEN="+queryHTTP, "ASF_JAEGER_QUERY_GRPC_LISTEN="+queryGRPC)
	cmd.Stdout = lf
	stderr, err := cmd.StderrPipe()
	if err != nil {
		lf.Close()
		return err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start jaeger: %w", err)
	}
	p := &Proc{Name: JaegerName, Cmd: cmd, done: make(chan struct{}), bin: JaegerName, args: cmd.Args[1:]}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	query := make(chan string, 1)
	ready := make(chan struct{})
	go func() { // owned by p: ends when the process closes stderr
		ScanJaegerLog(stderr, lf, query, ready)
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	t := time.NewTimer(readyTimeout)
	defer t.Stop()
	var ui string
	for ui == "" || ready != nil {
		select {
		case ui = <-query:
		case <-ready:
			ready = nil
		case <-p.done:
			return fmt.Errorf("jaeger exited during start-up (%v): see %s", p.err, logPath)
		case <-t.C:
			return fmt.Errorf("jaeger not ready after %s: see %s", readyTimeout, logPath)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.Addrs = map[string]string{"otlp": otlp, "http": ui}
	if err := waitHTTP(ctx, "http://"+ui+"/api/services", readyTimeout, p.done); err != nil {
		return fmt.Errorf("jaeger query API: %w: see %s", err, logPath)
	}
	return nil
}

// ScanJaegerLog copies Jaeger's JSON log lines to w, sends the query service's HTTP address
// ("Query server started") and closes ready once the collector reports it is running.
func ScanJaegerLog(r io.Reader, w io.Writer, query chan<- string, ready chan<- struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	sentQuery, sentReady := false, false
	for sc.Scan() {
		line := sc.Bytes()
		_, _ = w.Write(append(line, '\n'))
		if sentQuery && sentReady {
			continue
		}
		var l struct {
			Msg      string `json:"msg"`
			HTTPAddr string `json:"http_addr"`
		}
		if json.Unmarshal(line, &l) != nil {
			continue
		}
		switch {
		case l.Msg == "Query server started" && l.HTTPAddr != "" && !sentQuery:
			query <- l.HTTPAddr
			sentQuery = true
		case l.Msg == jaegerReadyMsg && !sentReady:
			close(ready)
			sentReady = true
		}
	}
	_, _ = io.Copy(w, r)
}

func freePorts(n int) ([]int, error) {
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// traceArgs are the tracing flags of service bin: --trace-endpoint when the suite has a
// trace endpoint and bin has that flag (its --help lists it), and webgate's
// --trace-sample-rate when Options.TraceSampleRate is set; none otherwise.
func (s *Suite) traceArgs(bin string) []string {
	ep := s.TraceEndpoint()
	if ep == "" || !s.hasFlag(bin, "trace-endpoint") {
		return nil
	}
	args := []string{"--trace-endpoint", ep}
	if r := s.opts.TraceSampleRate; r != "" && bin == "webgate" && s.hasFlag(bin, "trace-sample-rate") {
		args = append(args, "--trace-sample-rate", r)
	}
	return args
}

// hasFlag reports whether BinDir/bin lists -flag or --flag in its --help output
// (remembered per binary).
func (s *Suite) hasFlag(bin, flag string) bool {
	key := bin + " --" + flag
	s.flagsMu.Lock()
	defer s.flagsMu.Unlock()
	if v, ok := s.flags[key]; ok {
		return v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(s.opts.BinDir, bin), "--help").CombinedOutput()
	var exit *exec.ExitError
	// Go's flag package lists -flag, others --flag.
	ok := (err == nil || errors.As(err, &exit)) &&
		regexp.MustCompile(`(^|\s)--?`+regexp.QuoteMeta(flag)+`(\s|=|$)`).Match(out)
	if s.flags == nil {
		s.flags = map[string]bool{}
	}
	s.flags[key] = ok
	return ok
}

// TraceEndpoint is the OTLP/gRPC endpoint the services export spans to: the suite's
// Jaeger, else Options.TraceEndpoint ("" = tracing off).
func (s *Suite) TraceEndpoint() string {
	if a := s.addr(JaegerName, "otlp"); a != "" {
		return a
	}
	return s.opts.TraceEndpoint
}

// JaegerURL is the base URL of the suite's Jaeger UI and query API (http://host:port), or
// "" when the suite runs without Jaeger.
func (s *Suite) JaegerURL() string {
	if a := s.addr(JaegerName, "http"); a != "" {
		return "http://" + a
	}
	return ""
}

// jaegerAvailable says whether Options.Jaeger can start: the binary exists.
func (o Options) jaegerAvailable() error {
	if _, err := os.Stat(o.JaegerBinary()); err != nil {
		return fmt.Errorf("jaeger: %w (make jaeger builds bin/jaeger)", err)
	}
	return nil
}
