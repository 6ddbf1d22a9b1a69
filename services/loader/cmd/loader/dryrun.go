package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/obs"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/loader/engine"
)

const dryrunUsage = `usage: loader dryrun --engine c|python|echo|forward [--engine-path PATH] [--engine-config k=v]...
                     --input name=file[:type]... [--param k=v]... [--expect name]...
                     [--stream [--frame-bytes N]] [--async] [--workers N] [--isolation none|process]
                     [--python INTERPRETER]
                     [--psr id]... [--timeout D] [--out DIR]

Runs the engine in this process (or its workers) without any other service: Init with the
engine config, one once request (or, with --stream, one session whose frames are the inputs
cut into --frame-bytes pieces), prints every output, Fini. Types: text, audio, image, video,
other (default text). Exit status: 0 ok, 1 engine or I/O error (code and message printed),
2 usage.
`

// kvList is a repeatable k=v flag.
type kvList map[string]string

func (l kvList) String() string { return "" }

func (l kvList) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want key=value", s)
	}
	l[k] = v
	return nil
}

// strList is a repeatable string flag.
type strList []string

func (l *strList) String() string { return strings.Join(*l, ",") }
func (l *strList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// uintList is a repeatable uint32 flag.
type uintList []uint32

func (l *uintList) String() string { return fmt.Sprint(*l) }
func (l *uintList) Set(s string) error {
	var v uint32
	if _, err := fmt.Sscanf(s, "%d", &v); err != nil {
		return fmt.Errorf("%q: want an unsigned number", s)
	}
	*l = append(*l, v)
	return nil
}

var dataTypes = map[string]engine.DataType{
	"text": engine.DataText, "audio": engine.DataAudio, "image": engine.DataImage, "video": engine.DataVideo, "other": engine.DataOther,
}

func typeName(t engine.DataType) string {
	for n, v := range dataTypes {
		if v == t {
			return n
		}
	}
	return fmt.Sprintf("type(%d)", int(t))
}

// parseInput parses name=file[:type].
func parseInput(s string) (name, file string, typ engine.DataType, err error) {
	name, file, ok := strings.Cut(s, "=")
	if !ok || name == "" || file == "" {
		return "", "", 0, fmt.Errorf("input %q: want name=file[:type]", s)
	}
	typ = engine.DataText
	if i := strings.LastIndexByte(file, ':'); i >= 0 {
		if t, ok := dataTypes[file[i+1:]]; ok {
			typ, file = t, file[:i]
		}
	}
	if file == "" {
		return "", "", 0, fmt.Errorf("input %q: empty file name", s)
	}
	return name, file, typ, nil
}

func dryrun(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loader dryrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, dryrunUsage); fs.PrintDefaults() }
	cfg := loader.DefaultConfig()
	engCfg, params := kvList{}, kvList{}
	var inputs, expect strList
	var psr uintList
	fs.StringVar(&cfg.Engine, "engine", cfg.Engine, "engine kind: echo, c, python or forward")
	fs.StringVar(&cfg.EnginePath, "engine-path", "", "libwrapper.so (c), wrapper.py (python) or the forward spec (forward)")
	fs.Var(engCfg, "engine-config", "engine Init configuration key=value (repeatable)")
	fs.BoolVar(&cfg.Async, "async", false, "c: async mode")
	fs.StringVar(&cfg.Python, "python", "", "python: interpreter running the workers (a virtualenv's python; default /usr/bin/python3)")
	fs.IntVar(&cfg.Workers, "workers", 0, "python or isolation process: worker processes (0: python one per CPU, isolation 1)")
	fs.StringVar(&cfg.Isolation, "isolation", loader.IsolationNone, "none or process")
	fs.Var(&inputs, "input", "input name=file[:type] (repeatable)")
	fs.Var(params, "param", "request parameter key=value (repeatable)")
	fs.Var(&expect, "expect", "accepted output name (repeatable; default: any)")
	fs.Var(&psr, "psr", "personalisation resource id passed with the request (repeatable)")
	stream := fs.Bool("stream", false, "run a session instead of a once request")
	frameBytes := fs.Int("frame-bytes", 1280, "--stream: bytes of each input per frame")
	timeout := fs.Duration("timeout", 30*time.Second, "bound for the whole run")
	outDir := fs.String("out", "", "also write every output's data to DIR/<index>-<name>")
	logLevel := fs.String("log-level", "warn", "engine log level")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loader dryrun: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if len(inputs) == 0 || *frameBytes <= 0 {
		fs.Usage()
		return 2
	}
	var in []engine.Payload
	for _, s := range inputs {
		name, file, typ, err := parseInput(s)
		if err != nil {
			fmt.Fprintln(stderr, "loader dryrun:", err)
			return 2
		}
		b, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintln(stderr, "loader dryrun:", err)
			return 1
		}
		in = append(in, engine.Payload{Meta: engine.Meta{Name: name, Type: typ}, Data: b})
	}
	var exp []engine.Meta
	for _, e := range expect {
		exp = append(exp, engine.Meta{Name: e})
	}
	cfg.LogLevel = *logLevel
	log := obs.NewLogger(stderr, "loader-dryrun", *logLevel)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	eng, err := loader.NewEngine(cfg, log, nil)
	if err != nil {
		return fail(stderr, "engine", err)
	}
	if err := eng.Init(ctx, engCfg); err != nil {
		return fail(stderr, "init", err)
	}
	defer func() {
		if err := eng.Fini(context.Background()); err != nil {
			fmt.Fprintln(stderr, "loader dryrun: fini:", err)
		}
	}()
	p := printer{w: stdout, dir: *outDir, expect: exp}
	if !*stream {
		start := time.Now()
		resp, err := eng.Once(ctx, engine.Request{Tag: "dryrun", Params: params, Expect: exp, Inputs: in, PsrIDs: psr})
		if err != nil {
			return fail(stderr, "once", err)
		}
		fmt.Fprintf(stdout, "once: %d output(s) in %s\n", len(resp.Outputs), time.Since(start).Round(time.Microsecond))
		if err := p.print(engine.StatusOnce, resp.Outputs); err != nil {
			return fail(stderr, "once", err)
		}
		return 0
	}
	return runStream(ctx, eng, engine.SessionParams{Tag: "dryrun", Params: params, Expect: exp, PsrIDs: psr}, frames(in, *frameBytes), &p, stdout, stderr)
}

// frames cuts the inputs into frames of at most n bytes of each input: frame i carries
// piece i of every input that still has data; the first is BEGIN, the last END.
func frames(in []engine.Payload, n int) []engine.Frame {
	var out []engine.Frame
	for off := 0; ; off += n {
		var pl []engine.Payload
		more := false
		for _, p := range in {
			if off >= len(p.Data) && !(off == 0 && len(p.Data) == 0) {
				continue
			}
			end := min(off+n, len(p.Data))
			pl = append(pl, engine.Payload{Meta: p.Meta, Data: p.Data[off:end]})
			if end < len(p.Data) {
				more = true
			}
		}
		if len(pl) == 0 {
			break
		}
		out = append(out, engine.Frame{SyncID: int32(len(out)), Status: engine.StatusContinue, Inputs: pl})
		if !more {
			break
		}
	}
	out[0].Status = engine.StatusBegin
	if len(out) == 1 {
		// A single frame both begins and ends: send an empty END after it.
		last := make([]engine.Payload, len(in))
		for i, p := range in {
			last[i] = engine.Payload{Meta: p.Meta, Data: []byte{}}
		}
		out = append(out, engine.Frame{SyncID: 1, Inputs: last})
	}
	out[len(out)-1].Status = engine.StatusEnd
	return out
}

func runStream(ctx context.Context, eng engine.Engine, sp engine.SessionParams, fr []engine.Frame, p *printer, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(ctx)
	results := make(chan engine.Result, 64)
	emit := func(r engine.Result) {
		select {
		case results <- r:
		case <-ctx.Done():
		}
	}
	start := time.Now()
	s, err := eng.NewSession(ctx, sp, emit)
	if err != nil {
		cancel()
		return fail(stderr, "create", err)
	}
	writeErr := make(chan error, 1)
	go func() { // the writer: ends when every frame was written, a write failed or ctx ended
		for _, f := range fr {
			if err := s.Write(ctx, f); err != nil {
				writeErr <- fmt.Errorf("frame %d: %w", f.SyncID, err)
				return
			}
		}
		writeErr <- nil
	}()
	writing := writeErr
	// Stop: cancel (unblocks emit and the writer), wait for the writer, destroy.
	defer func() {
		cancel()
		if writing != nil {
			<-writing
		}
		if err := s.Close(); err != nil {
			fmt.Fprintln(stderr, "loader dryrun: destroy:", err)
		}
	}()
	n := 0
	for {
		select {
		case r := <-results:
			if r.Err != nil {
				return fail(stderr, "session", r.Err)
			}
			n++
			fmt.Fprintf(stdout, "result %d: status %s, %d output(s)\n", n, r.Status, len(r.Outputs))
			if err := p.print(r.Status, r.Outputs); err != nil {
				return fail(stderr, "session", err)
			}
			if r.Status == engine.StatusEnd {
				fmt.Fprintf(stdout, "session: %d frame(s), %d result(s) in %s\n", len(fr), n, time.Since(start).Round(time.Microsecond))
				return 0
			}
		case err := <-writing:
			writing = nil
			if err != nil {
				return fail(stderr, "write", err)
			}
		case <-ctx.Done():
			return fail(stderr, "session", fmt.Errorf("no END result: %w", ctx.Err()))
		}
	}
}

type printer struct {
	w      io.Writer
	dir    string
	expect []engine.Meta
	n      int
}

func (p *printer) print(st engine.Status, outs []engine.Payload) error {
	if err := engine.CheckOutputs(p.expect, outs); err != nil {
		return err
	}
	for _, o := range outs {
		keys := make([]string, 0, len(o.Attrs))
		for k := range o.Attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		attrs := make([]string, len(keys))
		for i, k := range keys {
			attrs[i] = k + "=" + o.Attrs[k]
		}
		fmt.Fprintf(p.w, "  %s: %s, %d bytes, status %s", o.Name, typeName(o.Type), len(o.Data), st)
		if len(attrs) > 0 {
			fmt.Fprintf(p.w, ", %s", strings.Join(attrs, " "))
		}
		fmt.Fprintln(p.w)
		if o.Type == engine.DataText && utf8.Valid(o.Data) {
			fmt.Fprintf(p.w, "    %s\n", o.Data)
		} else if len(o.Data) > 0 {
			fmt.Fprintf(p.w, "    % x", o.Data[:min(len(o.Data), 32)])
			if len(o.Data) > 32 {
				fmt.Fprint(p.w, " ...")
			}
			fmt.Fprintln(p.w)
		}
		if p.dir != "" {
			path := fmt.Sprintf("%s/%d-%s", p.dir, p.n, strings.ReplaceAll(o.Name, "/", "_"))
			if err := os.WriteFile(path, o.Data, 0o644); err != nil {
				return err
			}
		}
		p.n++
	}
	return nil
}

func fail(w io.Writer, what string, err error) int {
	fmt.Fprintf(w, "loader dryrun: %s: %s\n", what, describe(err))
	return 1
}

// describe returns err's text with its code once: an *aserr.Error in the chain already
// ends its text with "(code N)"; any other error gets the code (and its client-facing
// message, when the text lacks it) appended.
func describe(err error) string {
	text, code := err.Error(), aserr.CodeOf(err)
	switch suffix := fmt.Sprintf("(code %d)", code); {
	case strings.Contains(text, suffix):
		return text
	case strings.Contains(text, aserr.MessageOf(err)):
		return text + " " + suffix
	default:
		return fmt.Sprintf("%s (code %d: %s)", text, code, aserr.MessageOf(err))
	}
}
