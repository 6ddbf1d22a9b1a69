// Command asedemo is a signed ASE client for the example engines (docs/walkthrough.md),
// written on the Go SDK (sdk/go/ase):
//
//	asedemo tts    --url http://127.0.0.1:8889 --text "open the front door" --out door.pcm [--stream]
//	asedemo asr    --url http://127.0.0.1:8889 --audio door.pcm [--grammar cmd.jsgf | --keywords "front door"]
//	asedemo digits --url http://127.0.0.1:8889 --image seven.png [--raw-scale 16]
//
// Requests are signed with HMAC-SHA256 in the URL (--app-id, --api-key, --api-secret;
// the key and secret default to $ASF_API_KEY and $ASF_API_SECRET, else webgate's
// walkthrough demo app). asr streams the audio in 40 ms frames over a WebSocket and prints
// every result.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/athenaserving/asf/libs/buildinfo"
	"github.com/athenaserving/asf/sdk/go/ase"
)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	if buildinfo.PrintIfAsked(os.Stdout, "asedemo", os.Args[1:]) {
		return
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: asedemo tts|asr|digits [flags]")
		os.Exit(2)
	}
	if a := os.Args[1]; a == "-h" || a == "-help" || a == "--help" {
		fmt.Fprintln(os.Stderr, "usage: asedemo tts|asr|digits [flags] (asedemo <mode> --help lists the flags)")
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	base := fs.String("url", "http://127.0.0.1:8889", "webgate base URL")
	appID := fs.String("app-id", "demo", "app_id")
	key := fs.String("api-key", envOr("ASF_API_KEY", "demo-key"), "api_key (env ASF_API_KEY)")
	secret := fs.String("api-secret", envOr("ASF_API_SECRET", "demo-secret"), "api_secret (env ASF_API_SECRET)")
	text := fs.String("text", "open the front door", "tts: text to speak")
	out := fs.String("out", "out.pcm", "tts: file receiving the 16 kHz PCM")
	stream := fs.Bool("stream", false, "tts: stream mode over WebSocket")
	voice := fs.String("voice", "en-us", "tts: voice")
	audio := fs.String("audio", "out.pcm", "asr: 16 kHz 16-bit mono PCM file")
	grammar := fs.String("grammar", "", "asr: JSGF grammar file")
	keywords := fs.String("keywords", "", "asr: keyphrases, comma-separated")
	img := fs.String("image", "", "digits: PNG file or 64 raw bytes")
	scale := fs.Int("raw-scale", 255, "digits: largest grey level of the image (16: the data set's scale)")
	_ = fs.Parse(os.Args[2:])
	c := ase.New(*base, ase.Credentials{AppID: *appID, APIKey: *key, APISecret: *secret})
	var err error
	switch mode {
	case "tts":
		err = runTTS(ctx, c, *text, *voice, *out, *stream)
	case "asr":
		err = runASR(ctx, c, *audio, *grammar, *keywords)
	case "digits":
		err = runDigits(ctx, c, *img, *scale)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "asedemo:", err)
		os.Exit(1)
	}
}

func runTTS(ctx context.Context, c *ase.Client, text, voice, out string, stream bool) error {
	params := map[string]any{"voice": voice}
	if !stream {
		r, err := c.Once(ctx, "tts", ase.Request{Parameter: params, Payload: []ase.Input{ase.Text("text", text)}})
		if err != nil {
			return err
		}
		a := r.Outputs["audio"]
		fmt.Printf("sid %s: %d bytes (%.2f s) of %v Hz %v-bit PCM -> %s\n", r.Sid, len(a.Data),
			float64(len(a.Data))/32000, a.Attrs["sample_rate"], a.Attrs["bit_depth"], out)
		return os.WriteFile(out, a.Data, 0o644)
	}
	s, err := c.Stream(ctx, "tts")
	if err != nil {
		return err
	}
	defer s.Close()
	first, last := ase.Text("text", text), ase.Text("text", "")
	first.Attrs, last.Attrs = map[string]any{"seq": 0}, map[string]any{"seq": 1}
	if err := s.Send(ase.StatusBegin, ase.Request{Parameter: params, Payload: []ase.Input{first}}); err != nil {
		return err
	}
	if err := s.Send(ase.StatusEnd, ase.Request{Payload: []ase.Input{last}}); err != nil {
		return err
	}
	var all []byte
	for {
		r, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		a := r.Outputs["audio"]
		all = append(all, a.Data...)
		fmt.Printf("status %d seq %v: %d bytes\n", r.Status, a.Attrs["seq"], len(a.Data))
		if r.Status == ase.StatusEnd {
			break
		}
	}
	fmt.Printf("%d bytes (%.2f s) -> %s\n", len(all), float64(len(all))/32000, out)
	return os.WriteFile(out, all, 0o644)
}

func runASR(ctx context.Context, c *ase.Client, audioFile, grammarFile, keywords string) error {
	pcm, err := os.ReadFile(audioFile)
	if err != nil {
		return err
	}
	params := map[string]any{"result": map[string]any{"encoding": "utf8", "compress": "raw", "format": "json"}}
	if grammarFile != "" {
		g, err := os.ReadFile(grammarFile)
		if err != nil {
			return err
		}
		params["grammar"] = string(g)
	}
	if keywords != "" {
		params["keywords"] = keywords
	}
	s, err := c.Stream(ctx, "asr")
	if err != nil {
		return err
	}
	defer s.Close()
	done := make(chan error, 1)
	go func() { // reader; runASR waits for it after sending
		for {
			r, err := s.Recv()
			if err != nil {
				done <- err
				return
			}
			fmt.Printf("status %d: %s\n", r.Status, r.Outputs["result"].Data)
			if r.Status == ase.StatusEnd {
				done <- nil
				return
			}
		}
	}()
	const frame = 1280 // 40 ms
	n := (len(pcm) + frame - 1) / frame
	for i := 0; i <= n; i++ {
		st, req := ase.StatusContinue, ase.Request{}
		var chunk []byte
		if i < n {
			chunk = pcm[i*frame : min((i+1)*frame, len(pcm))]
		}
		switch {
		case i == 0:
			st, req.Parameter = ase.StatusBegin, params
		case i == n:
			st = ase.StatusEnd
		}
		in := ase.Audio("audio", chunk, 16000)
		in.Attrs["seq"] = i
		req.Payload = []ase.Input{in}
		if err := s.Send(st, req); err != nil {
			return err
		}
	}
	fmt.Printf("sent %d frames of 40 ms\n", n+1)
	return <-done
}

func runDigits(ctx context.Context, c *ase.Client, file string, scale int) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	enc := "raw"
	if bytes.HasPrefix(b, []byte("\x89PNG")) {
		enc = "png"
	}
	params := map[string]any{"result": map[string]any{"encoding": "utf8", "format": "json"}}
	in := ase.Input{Name: "image", Type: "image", Encoding: enc, Data: b, Attrs: map[string]any{"scale": scale}}
	r, err := c.Once(ctx, "digits", ase.Request{Parameter: params, Payload: []ase.Input{in}})
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", r.Outputs["result"].Data)
	return nil
}
