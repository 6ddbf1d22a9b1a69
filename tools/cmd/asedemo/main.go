// Command asedemo is a signed ASE client for the example engines (docs/walkthrough.md):
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
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/gorilla/websocket"
)

// client signs requests for one app.
type client struct {
	base, appID string
	creds       asfbench.Credentials
}

// response is the part of an ASE response asedemo prints.
type response struct {
	Header struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Sid     string `json:"sid"`
		Status  int    `json:"status"`
	} `json:"header"`
	Payload map[string]map[string]json.RawMessage `json:"payload"`
}

// data decodes the base64 data field of output name.
func (r *response) data(name string) []byte {
	var s string
	_ = json.Unmarshal(r.Payload[name][name], &s)
	b, _ := base64.StdEncoding.DecodeString(s)
	return b
}

func (c client) url(capability, method string) (string, error) {
	u := c.base + "/v1/private/" + capability
	if method == http.MethodGet {
		u = "ws" + strings.TrimPrefix(u, "http")
	}
	return asfbench.SignURL(u, method, c.creds, time.Now())
}

func (c client) once(capability string, req map[string]any) (*response, error) {
	u, err := c.url(capability, http.MethodPost)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(req)
	resp, err := http.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r response
	if err := json.Unmarshal(body, &r); err != nil || r.Header.Code != 0 {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
	return &r, nil
}

func (c client) dial(capability string) (*websocket.Conn, error) {
	u, err := c.url(capability, http.MethodGet)
	if err != nil {
		return nil, err
	}
	conn, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil && resp != nil {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("%v: HTTP %d %s", err, resp.StatusCode, b)
	}
	return conn, err
}

// recv reads the next response of a session; an error frame is an error.
func recv(conn *websocket.Conn) (*response, error) {
	var r response
	if err := conn.ReadJSON(&r); err != nil {
		return nil, err
	}
	if r.Header.Code != 0 {
		return nil, fmt.Errorf("error frame: %d %s", r.Header.Code, r.Header.Message)
	}
	return &r, nil
}

// frame is one request frame; params (when not nil) go under parameter.<capability>.
func (c client) frame(capability string, status int, params map[string]any, input string, item map[string]any) map[string]any {
	item["status"] = status
	f := map[string]any{"header": map[string]any{"app_id": c.appID, "status": status}, "payload": map[string]any{input: item}}
	if params != nil {
		f["parameter"] = map[string]any{capability: params}
	}
	return f
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: asedemo tts|asr|digits [flags]")
		os.Exit(2)
	}
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
	c := client{base: strings.TrimRight(*base, "/"), appID: *appID, creds: asfbench.Credentials{APIKey: *key, APISecret: *secret}}
	var err error
	switch mode {
	case "tts":
		err = runTTS(c, *text, *voice, *out, *stream)
	case "asr":
		err = runASR(c, *audio, *grammar, *keywords)
	case "digits":
		err = runDigits(c, *img, *scale)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "asedemo:", err)
		os.Exit(1)
	}
}

func runTTS(c client, text, voice, out string, stream bool) error {
	params := map[string]any{"voice": voice}
	textItem := func(s string) map[string]any { return map[string]any{"encoding": "utf8", "text": b64([]byte(s))} }
	if !stream {
		r, err := c.once("tts", c.frame("tts", 3, params, "text", textItem(text)))
		if err != nil {
			return err
		}
		pcm, a := r.data("audio"), r.Payload["audio"]
		fmt.Printf("sid %s: %d bytes (%.2f s) of %s Hz %s-bit PCM -> %s\n", r.Header.Sid, len(pcm),
			float64(len(pcm))/32000, a["sample_rate"], a["bit_depth"], out)
		return os.WriteFile(out, pcm, 0o644)
	}
	conn, err := c.dial("tts")
	if err != nil {
		return err
	}
	defer conn.Close()
	first, last := textItem(text), textItem("")
	first["seq"], last["seq"] = 0, 1
	for _, f := range []map[string]any{c.frame("tts", 0, params, "text", first), c.frame("tts", 2, nil, "text", last)} {
		if err := conn.WriteJSON(f); err != nil {
			return err
		}
	}
	var all []byte
	for {
		r, err := recv(conn)
		if err != nil {
			return err
		}
		pcm := r.data("audio")
		all = append(all, pcm...)
		fmt.Printf("status %d seq %s: %d bytes\n", r.Header.Status, r.Payload["audio"]["seq"], len(pcm))
		if r.Header.Status == 2 {
			break
		}
	}
	fmt.Printf("%d bytes (%.2f s) -> %s\n", len(all), float64(len(all))/32000, out)
	return os.WriteFile(out, all, 0o644)
}

func runASR(c client, audioFile, grammarFile, keywords string) error {
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
	conn, err := c.dial("asr")
	if err != nil {
		return err
	}
	defer conn.Close()
	done := make(chan error, 1)
	go func() { // reader; main waits for it after sending
		for {
			r, err := recv(conn)
			if err != nil {
				done <- err
				return
			}
			fmt.Printf("status %d: %s\n", r.Header.Status, r.Payload["result"]["text"])
			if r.Header.Status == 2 {
				done <- nil
				return
			}
		}
	}()
	const frame = 1280 // 40 ms
	n := (len(pcm) + frame - 1) / frame
	for i := 0; i <= n; i++ {
		st, chunk, p := 1, []byte(nil), map[string]any(nil)
		if i < n {
			chunk = pcm[i*frame : min((i+1)*frame, len(pcm))]
		}
		switch {
		case i == 0:
			st, p = 0, params
		case i == n:
			st = 2
		}
		item := map[string]any{"encoding": "raw", "sample_rate": 16000, "channels": 1, "bit_depth": 16, "seq": i, "audio": b64(chunk)}
		if err := conn.WriteJSON(c.frame("asr", st, p, "audio", item)); err != nil {
			return err
		}
	}
	fmt.Printf("sent %d frames of 40 ms\n", n+1)
	return <-done
}

func runDigits(c client, file string, scale int) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	enc := "raw"
	if bytes.HasPrefix(b, []byte("\x89PNG")) {
		enc = "png"
	}
	params := map[string]any{"result": map[string]any{"encoding": "utf8", "format": "json"}}
	r, err := c.once("digits", c.frame("digits", 3, params, "image", map[string]any{"encoding": enc, "scale": scale, "image": b64(b)}))
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", r.Payload["result"]["text"])
	return nil
}
