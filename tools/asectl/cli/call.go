package cli

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/athenaserving/asf/sdk/go/ase"
	"github.com/spf13/cobra"
)

// callFlags are the flags of `call once` and `call stream`.
type callFlags struct {
	text, file, input  string
	params, headers    []string
	jsonParams, attrs  []string
	outDir             string
	wav, headerAuth    bool
	webapi             bool
	appID, key, secret string
	timeout            time.Duration
	frameBytes, frames int
	pace               time.Duration
}

func (f *callFlags) add(cmd *cobra.Command, stream bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.text, "text", "", "text payload (default: --file, else \"hello athena\")")
	fl.StringVarP(&f.file, "file", "f", "", "payload data from FILE (- is standard input)")
	fl.StringVar(&f.input, "input", "input:text", "payload item carrying the data: name[:type[:encoding]] (type text|audio|image|video|other)")
	fl.StringArrayVar(&f.params, "param", nil, "parameter key=value of the capability (repeatable)")
	fl.StringArrayVar(&f.jsonParams, "param-json", nil, "parameter key=JSON, for numbers and output descriptors: speed=120, result='{\"format\":\"json\"}' (repeatable)")
	fl.StringArrayVar(&f.attrs, "attr", nil, "attribute key=value of the payload item (a number stays a number: scale=16; repeatable)")
	fl.StringArrayVar(&f.headers, "header", nil, "header field key=value (uid, res_id, ...; repeatable)")
	fl.StringVar(&f.outDir, "out-dir", ".", "directory for audio, image, video and other outputs (<output>.pcm, .wav, .png, ...)")
	fl.BoolVar(&f.wav, "wav", false, "also write audio outputs as .wav (16-bit PCM with the output's sample_rate and channels)")
	fl.BoolVar(&f.headerAuth, "header-auth", false, "sign in the header form (Authorization, Date, Digest) instead of the URL (once)")
	fl.StringVar(&f.appID, "app-id", "", "app id (default: the context's, env ASF_APP_ID)")
	fl.StringVar(&f.key, "api-key", "", "API key (default: the context's, env ASF_API_KEY)")
	fl.StringVar(&f.secret, "api-secret", "", "API secret (default: the context's, env ASF_API_SECRET)")
	fl.DurationVar(&f.timeout, "timeout", 60*time.Second, "give up after this long")
	if stream {
		fl.IntVar(&f.frameBytes, "frame-bytes", 1280, "bytes of data per frame (1280: 40 ms of 16 kHz 16-bit audio)")
		fl.IntVar(&f.frames, "frames", 0, "split the data into this many frames instead (at least 2)")
		fl.DurationVar(&f.pace, "pace", 0, "wait this long between frames (40ms paces audio in real time)")
	}
}

// item parses --input.
func (f *callFlags) item() (ase.Input, error) {
	p := strings.SplitN(f.input, ":", 3)
	in := ase.Input{Name: p[0], Type: "text"}
	if len(p) > 1 && p[1] != "" {
		in.Type = p[1]
	}
	switch {
	case len(p) > 2 && p[2] != "":
		in.Encoding = p[2]
	case in.Type == "text":
		in.Encoding = "utf8"
	default:
		in.Encoding = "raw"
	}
	if in.Name == "" {
		return in, usagef("--input %q: want name[:type[:encoding]]", f.input)
	}
	ok := false
	for _, t := range ase.DataTypes {
		ok = ok || t == in.Type
	}
	if !ok {
		return in, usagef("--input %q: type %q is not one of %s", f.input, in.Type, strings.Join(ase.DataTypes, ", "))
	}
	if in.Type == "audio" {
		in.Attrs = map[string]any{"sample_rate": 16000, "channels": 1, "bit_depth": 16}
	}
	return in, nil
}

func keyValues(flag string, kvs []string) (map[string]any, error) {
	m := map[string]any{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--%s %q: want key=value", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

// data is the payload: --text, --file, or the default text.
func (a *app) data(f *callFlags) ([]byte, error) {
	switch {
	case f.text != "" && f.file != "":
		return nil, usagef("--text and --file together: give one")
	case f.text != "":
		return []byte(f.text), nil
	case f.file != "":
		return readInput(a.io.In, f.file)
	}
	return []byte("hello athena"), nil
}

// client is the SDK client of the context's edge with the call's credentials.
func (a *app) client(f *callFlags) (*ase.Client, error) {
	c, err := a.current()
	if err != nil && a.webgate == "" && a.io.Getenv("ASF_WEBGATE") == "" {
		return nil, fmt.Errorf("%w (or give --webgate URL, or ASF_WEBGATE, with --app-id, --api-key, --api-secret)", err)
	}
	pick := func(flag, env, ctx, def string) string {
		for _, v := range []string{flag, a.io.Getenv(env), ctx} {
			if v != "" {
				return v
			}
		}
		return def
	}
	base := pick(a.webgate, "ASF_WEBGATE", c.Webgate, "")
	if base == "" {
		return nil, errors.New("no edge address: asectl context set --webgate URL, or --webgate")
	}
	cl := ase.New(base, ase.Credentials{
		AppID:     pick(f.appID, "ASF_APP_ID", c.AppID, "demo"),
		APIKey:    pick(f.key, "ASF_API_KEY", c.APIKey, ""),
		APISecret: pick(f.secret, "ASF_API_SECRET", c.APISecret, ""),
	})
	cl.HeaderAuth = f.headerAuth
	return cl, nil
}

// callError adds what to do to an edge's error.
func callError(service string, err error) error {
	var e *ase.Error
	if !errors.As(err, &e) {
		return err
	}
	switch {
	case e.HTTPStatus == 401:
		return fmt.Errorf("%w\n  check the app's key and secret (asectl app ls; asectl app rotate-key APP_ID --save makes new ones)", err)
	case e.HTTPStatus == 403:
		return fmt.Errorf("%w\n  the app may not do this: asectl app limits APP_ID shows what to change", err)
	case e.Code == 10404 || e.HTTPStatus == 404:
		return fmt.Errorf("%w\n  no capability %s: asectl svc ls lists the running services, asectl schema push publishes its schema", err, service)
	case e.Code == 10313:
		return fmt.Errorf("%w\n  --app-id must be the app of the key", err)
	case e.Code == 10163:
		return fmt.Errorf("%w\n  the request does not fit the capability's schema: asectl schema get %s shows it (--input name:type, --param k=v)", err, service)
	}
	return err
}

func (a *app) callCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "call",
		Short: "Signed calls to the edge: once requests and stream sessions",
		Long: `call sends a signed request to a capability through the edge (webgate) of the current
context (asectl context set --webgate URL), as the context's app (asectl app create --save)
or --app-id/--api-key/--api-secret. Text outputs go to standard output; audio outputs to
<out-dir>/<output>.pcm (and .wav with --wav), images to .png/.jpg, others to .bin.
-o json|yaml prints the responses instead.`,
		Example: "  asectl call once greeter --input text:text --text athena\n  asectl call stream asr --input audio:audio --file speech.pcm --pace 40ms",
	}
	var of callFlags
	once := &cobra.Command{
		Use:               "once SERVICE",
		Short:             "Send one once request and print or save its outputs",
		Example:           "  asectl call once greeter --input text:text --text athena\n  cat req.txt | asectl call once tts --input text:text --file - --param voice=en-us --wav\n  asectl call once /v2/tts --webapi --input text:text --text hello --param vcn=en-us",
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, argv []string) error {
			req, err := a.request(&of)
			if err != nil {
				return err
			}
			cl, err := a.client(&of)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), of.timeout)
			defer cancel()
			if of.webapi {
				return a.webapiOnce(ctx, cl, argv[0], req)
			}
			resp, err := cl.Once(ctx, argv[0], req)
			if err != nil {
				return callError(argv[0], err)
			}
			w := newOutputs(a, &of)
			if err := w.add(resp); err != nil {
				return err
			}
			return w.close()
		},
	}
	of.add(once, false)
	once.Flags().BoolVar(&of.webapi, "webapi", false, "send in the WebAPI 2.0 envelope to SERVICE, a schema's webapi.route (/v2/iat): --param goes to business, --header to common, the data and --attr to data")
	var sf callFlags
	stream := &cobra.Command{
		Use:               "stream SERVICE",
		Short:             "Stream the data in frames over a WebSocket session and print or save every result",
		Example:           "  asectl call stream asr --input audio:audio --file speech.pcm --pace 40ms\n  asectl call stream greeter --input text:text --text 'one two three' --frames 3",
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, argv []string) error {
			req, err := a.request(&sf)
			if err != nil {
				return err
			}
			cl, err := a.client(&sf)
			if err != nil {
				return err
			}
			chunks, err := split(req.Payload[0].Data, sf.frameBytes, sf.frames)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), sf.timeout)
			defer cancel()
			if sf.webapi {
				return a.webapiStream(ctx, cl, argv[0], req, chunks, sf.pace)
			}
			s, err := cl.Stream(ctx, argv[0])
			if err != nil {
				return callError(argv[0], err)
			}
			defer s.Close()
			stop := context.AfterFunc(ctx, func() { _ = s.Close() })
			defer stop()
			sent := make(chan error, 1)
			go func() { sent <- sendFrames(ctx, s, req, chunks, sf.pace) }() // ends with the frames or ctx
			w := newOutputs(a, &sf)
			for {
				r, err := s.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					if ctx.Err() != nil {
						return fmt.Errorf("session: %w", ctx.Err())
					}
					return callError(argv[0], err)
				}
				if err := w.add(r); err != nil {
					return err
				}
				if r.Status == ase.StatusEnd {
					break
				}
			}
			if err := <-sent; err != nil {
				return err
			}
			return w.close()
		},
	}
	sf.add(stream, true)
	stream.Flags().BoolVar(&sf.webapi, "webapi", false, "a WebAPI 2.0 session on SERVICE, a schema's webapi.route (see call once --webapi)")
	var gf callFlags
	var method string
	sign := &cobra.Command{
		Use:   "sign SERVICE",
		Short: "Print a signed URL of a capability (valid for five minutes), for curl or another client",
		Long: `sign prints the capability's URL with the URL-form signature (authorization, date and
host parameters) for --method: POST for a once request, GET for a WebSocket session
(the printed URL then starts with ws://).`,
		Example: `  curl -s -X POST "$(asectl call sign echo)" -H 'Content-Type: application/json' -d @request.json`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, argv []string) error {
			cl, err := a.client(&gf)
			if err != nil {
				return err
			}
			m := strings.ToUpper(method)
			if m != "POST" && m != "GET" {
				return usagef("--method %q: want POST (once) or GET (WebSocket)", method)
			}
			u := cl.BaseURL + ase.Route(argv[0])
			if m == "GET" {
				u = "ws" + strings.TrimPrefix(u, "http")
			}
			signed, err := ase.SignURL(u, m, cl.Credentials, time.Now())
			if err != nil {
				return err
			}
			return a.print(map[string]any{"url": signed, "method": m}, func(w io.Writer) { fmt.Fprintln(w, signed) })
		},
	}
	sign.Flags().StringVar(&method, "method", "POST", "POST (once) or GET (WebSocket)")
	sign.Flags().StringVar(&gf.appID, "app-id", "", "app id (default: the context's, env ASF_APP_ID)")
	sign.Flags().StringVar(&gf.key, "api-key", "", "API key (default: the context's, env ASF_API_KEY)")
	sign.Flags().StringVar(&gf.secret, "api-secret", "", "API secret (default: the context's, env ASF_API_SECRET)")
	cmd.AddCommand(once, stream, sign)
	return cmd
}

// request builds the first frame's request from the flags.
func (a *app) request(f *callFlags) (ase.Request, error) {
	in, err := f.item()
	if err != nil {
		return ase.Request{}, err
	}
	params, err := keyValues("param", f.params)
	if err != nil {
		return ase.Request{}, err
	}
	headers, err := keyValues("header", f.headers)
	if err != nil {
		return ase.Request{}, err
	}
	typed, err := keyValues("param-json", f.jsonParams)
	if err != nil {
		return ase.Request{}, err
	}
	for k, v := range typed {
		var x any
		if err := json.Unmarshal([]byte(v.(string)), &x); err != nil {
			return ase.Request{}, usagef("--param-json %s: %q is not JSON", k, v)
		}
		params[k] = x
	}
	attrs, err := keyValues("attr", f.attrs)
	if err != nil {
		return ase.Request{}, err
	}
	for k, v := range attrs {
		if in.Attrs == nil {
			in.Attrs = map[string]any{}
		}
		var n json.Number
		if json.Unmarshal([]byte(v.(string)), &n) == nil {
			in.Attrs[k] = n
			continue
		}
		in.Attrs[k] = v
	}
	if in.Data, err = a.data(f); err != nil {
		return ase.Request{}, err
	}
	return ase.Request{Header: headers, Parameter: params, Payload: []ase.Input{in}}, nil
}

// split cuts data into frames of size bytes, or into n frames; at least two (begin, end).
func split(data []byte, size, n int) ([][]byte, error) {
	if n > 0 {
		if n < 2 {
			return nil, usagef("--frames %d: want at least 2 (a begin and an end frame)", n)
		}
		size = (len(data) + n - 1) / n
		if size == 0 {
			size = 1
		}
	}
	if size <= 0 {
		return nil, usagef("--frame-bytes %d: want a positive number", size)
	}
	var out [][]byte
	for i := 0; i < len(data); i += size {
		out = append(out, data[i:min(i+size, len(data))])
	}
	for len(out) < 2 || (n > 0 && len(out) < n) {
		out = append(out, nil)
	}
	return out, nil
}

// sendFrames sends chunk i with status begin, continue, ..., end, every pace.
func sendFrames(ctx context.Context, s *ase.Stream, first ase.Request, chunks [][]byte, pace time.Duration) error {
	return paced(ctx, len(chunks), pace, func(i, st int) error {
		req := ase.Request{Payload: []ase.Input{first.Payload[0]}}
		req.Payload[0].Data = chunks[i]
		attrs := map[string]any{"seq": i}
		for k, v := range first.Payload[0].Attrs {
			attrs[k] = v
		}
		req.Payload[0].Attrs = attrs
		if i == 0 {
			req.Header, req.Parameter = first.Header, first.Parameter
		}
		return s.Send(st, req)
	})
}

// paced calls send for frames 0..n-1 with their status (begin, continue, ..., end),
// waiting pace between frames.
func paced(ctx context.Context, n int, pace time.Duration, send func(i, status int) error) error {
	for i := 0; i < n; i++ {
		st := ase.StatusContinue
		switch i {
		case 0:
			st = ase.StatusBegin
		case n - 1:
			st = ase.StatusEnd
		}
		if err := send(i, st); err != nil {
			return err
		}
		if pace > 0 && i < n-1 {
			t := time.NewTimer(pace)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	return nil
}

// outputs writes results: text to stdout, other data to files; with -o json|yaml, the
// responses themselves.
type outputs struct {
	a     *app
	f     *callFlags
	files map[string]*outFile
	order []string
	docs  []json.RawMessage
}

type outFile struct {
	path          string
	f             *os.File
	n             int
	rate, channel int
}

func newOutputs(a *app, f *callFlags) *outputs {
	return &outputs{a: a, f: f, files: map[string]*outFile{}}
}

var extOf = map[string]string{"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "gif": ".gif", "bmp": ".bmp", "wav": ".wav", "mp3": ".mp3", "opus": ".opus", "speex": ".spx", "raw": ".pcm", "lame": ".mp3"}

func (o *outputs) add(r *ase.Response) error {
	if o.a.output != "table" {
		o.docs = append(o.docs, r.Raw)
		return nil
	}
	for _, name := range r.Names() {
		out := r.Outputs[name]
		if out.Type == "text" || out.Type == "" {
			if len(out.Data) > 0 {
				fmt.Fprintf(o.a.io.Out, "%s\n", out.Data)
			}
			continue
		}
		if err := o.write(name, out); err != nil {
			return err
		}
	}
	return nil
}

func (o *outputs) write(name string, out ase.Output) error {
	of := o.files[name]
	if of == nil {
		ext := extOf[strings.ToLower(out.Encoding())]
		switch {
		case ext != "":
		case out.Type == "audio":
			ext = ".pcm"
		default:
			ext = ".bin"
		}
		if err := os.MkdirAll(o.f.outDir, 0o755); err != nil {
			return err
		}
		p := filepath.Join(o.f.outDir, filepath.Base(name)+ext)
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		of = &outFile{path: p, f: f, rate: attrInt(out.Attrs, "sample_rate", 16000), channel: attrInt(out.Attrs, "channels", 1)}
		o.files[name] = of
		o.order = append(o.order, name)
	}
	n, err := of.f.Write(out.Data)
	of.n += n
	return err
}

func attrInt(m map[string]any, k string, def int) int {
	if v, ok := m[k]; ok {
		if n, err := strconv.Atoi(fmt.Sprint(v)); err == nil && n > 0 {
			return n
		}
	}
	return def
}

// close finishes the files (and their .wav copies) and reports them, or prints the
// responses with -o json|yaml.
func (o *outputs) close() error {
	if o.a.output != "table" {
		var v any = o.docs
		if len(o.docs) == 1 {
			v = o.docs[0]
		}
		return o.a.print(v, nil)
	}
	sort.Strings(o.order)
	for _, name := range o.order {
		of := o.files[name]
		if err := of.f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(o.a.io.Err, "%s: %d bytes -> %s\n", name, of.n, of.path)
		if o.f.wav && strings.HasSuffix(of.path, ".pcm") {
			wp := strings.TrimSuffix(of.path, ".pcm") + ".wav"
			if err := writeWAV(of.path, wp, of.rate, of.channel); err != nil {
				return err
			}
			fmt.Fprintf(o.a.io.Err, "%s: -> %s\n", name, wp)
		}
	}
	return nil
}

// writeWAV writes the 16-bit PCM of src as a WAV file dst.
func writeWAV(src, dst string, rate, channels int) error {
	pcm, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+len(pcm)))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1)
	binary.LittleEndian.PutUint16(h[22:], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(rate*channels*2))
	binary.LittleEndian.PutUint16(h[32:], uint16(channels*2))
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(len(pcm)))
	return os.WriteFile(dst, append(h, pcm...), 0o644)
}

// webapiOnce sends req as a WebAPI 2.0 once request to route and prints the data fields
// of the answer (strings as they are, other values as JSON), or the answer with -o json|yaml.
func (a *app) webapiOnce(ctx context.Context, cl *ase.Client, route string, req ase.Request) error {
	if !strings.HasPrefix(route, "/") {
		return usagef("--webapi needs a route (a schema's webapi.route, e.g. /v2/iat), not %q", route)
	}
	resp, err := cl.WebAPIOnce(ctx, route, ase.WebAPIRequest{Common: req.Header, Business: req.Parameter, Data: webapiData(req.Payload[0], req.Payload[0].Data)})
	if err != nil {
		return callError(route, err)
	}
	if a.output != "table" {
		return a.print(resp.Raw, nil)
	}
	a.printWebAPI(resp)
	return nil
}

// printWebAPI prints the data fields of a WebAPI 2.0 answer but status: strings as they
// are, other values as JSON.
func (a *app) printWebAPI(resp *ase.WebAPIResponse) {
	keys := make([]string, 0, len(resp.Data))
	for k := range resp.Data {
		if k != "status" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		var str string
		if json.Unmarshal(resp.Data[k], &str) == nil {
			fmt.Fprintln(a.io.Out, str)
			continue
		}
		fmt.Fprintf(a.io.Out, "%s\n", resp.Data[k])
	}
}

// webapiData is the data object of a WebAPI 2.0 frame carrying chunk as item in.
func webapiData(in ase.Input, chunk []byte) map[string]any {
	data := map[string]any{}
	for k, v := range in.Attrs {
		data[k] = v
	}
	data["encoding"] = in.Encoding
	data[in.Type] = base64.StdEncoding.EncodeToString(chunk)
	return data
}

// webapiStream streams chunks as a WebAPI 2.0 session on route, printing every answer
// (or, with -o json|yaml, the answers).
func (a *app) webapiStream(ctx context.Context, cl *ase.Client, route string, req ase.Request, chunks [][]byte, pace time.Duration) error {
	if !strings.HasPrefix(route, "/") {
		return usagef("--webapi needs a route (a schema's webapi.route, e.g. /v2/iat), not %q", route)
	}
	s, err := cl.WebAPIStream(ctx, route)
	if err != nil {
		return callError(route, err)
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	sent := make(chan error, 1)
	go func() { // ends with the frames, or when the socket closes
		sent <- paced(ctx, len(chunks), pace, func(i, st int) error {
			return s.Send(st, ase.WebAPIRequest{Common: req.Header, Business: req.Parameter, Data: webapiData(req.Payload[0], chunks[i])})
		})
	}()
	var docs []json.RawMessage
	for {
		r, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return callError(route, err)
		}
		if a.output == "table" {
			a.printWebAPI(r)
		} else {
			docs = append(docs, r.Raw)
		}
		if r.Status == ase.StatusEnd {
			break
		}
	}
	if err := <-sent; err != nil {
		return err
	}
	if a.output != "table" {
		return a.print(docs, nil)
	}
	return nil
}
