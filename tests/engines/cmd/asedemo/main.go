// Command asedemo is a signed ASE client for the example engines (docs/walkthrough.md):
//
//	asedemo tts    --url http://127.0.0.1:8889 --text "open the front door" --out door.pcm [--stream]
//	asedemo asr    --url http://127.0.0.1:8889 --audio door.pcm [--grammar cmd.jsgf | --keywords "front door"]
//	asedemo digits --url http://127.0.0.1:8889 --image seven.png [--raw-scale 16]
//
// Requests are signed with HMAC-SHA256 in the URL (--app-id, --api-key, --api-secret).
// asr streams the audio in 40 ms frames over a WebSocket and prints every result.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

type client struct{ base, appID, key, secret string }

func (c client) signed(method, path string, ws bool) string {
	u, _ := url.Parse(c.base)
	date := time.Now().UTC().Format(http.TimeFormat)
	origin := "host: " + u.Host + "\ndate: " + date + "\n" + method + " " + path + " HTTP/1.1"
	m := hmac.New(sha256.New, []byte(c.secret))
	m.Write([]byte(origin))
	authz := fmt.Sprintf(`api_key="%s", algorithm="hmac-sha256", headers="host date request-line", signature="%s"`,
		c.key, base64.StdEncoding.EncodeToString(m.Sum(nil)))
	q := url.Values{"authorization": {base64.StdEncoding.EncodeToString([]byte(authz))}, "date": {date}, "host": {u.Host}}
	base := c.base
	if ws {
		base = "ws" + strings.TrimPrefix(base, "http")
	}
	return base + path + "?" + q.Encode()
}

func (c client) once(capability string, req map[string]any) (map[string]any, error) {
	b, _ := json.Marshal(req)
	resp, err := http.Post(c.signed("POST", "/v1/private/"+capability, false), "application/json", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r map[string]any
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
	if h, _ := r["header"].(map[string]any); h == nil || h["code"] != float64(0) {
		return r, fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
	return r, nil
}

func (c client) dial(capability string) (*websocket.Conn, error) {
	conn, resp, err := websocket.DefaultDialer.Dial(c.signed("GET", "/v1/private/"+capability, true), nil)
	if err != nil && resp != nil {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("%v: HTTP %d %s", err, resp.StatusCode, b)
	}
	return conn, err
}

func item(r map[string]any, name string) map[string]any {
	p, _ := r["payload"].(map[string]any)
	it, _ := p[name].(map[string]any)
	return it
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: asedemo tts|asr|digits [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	base := fs.String("url", "http://127.0.0.1:8889", "webgate base URL")
	appID := fs.String("app-id", "demo", "app_id")
	key := fs.String("api-key", "demo-key", "api_key")
	secret := fs.String("api-secret", "demo-secret", "api_secret")
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
	c := client{base: strings.TrimRight(*base, "/"), appID: *appID, key: *key, secret: *secret}
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
	if !stream {
		r, err := c.once("tts", map[string]any{
			"header": map[string]any{"app_id": c.appID, "status": 3}, "parameter": map[string]any{"tts": params},
			"payload": map[string]any{"text": map[string]any{"encoding": "utf8", "status": 3, "text": b64([]byte(text))}}})
		if err != nil {
			return err
		}
		a := item(r, "audio")
		pcm, _ := base64.StdEncoding.DecodeString(fmt.Sprint(a["audio"]))
		fmt.Printf("sid %v: %d bytes (%.2f s) of %v Hz %v-bit PCM -> %s\n", r["header"].(map[string]any)["sid"], len(pcm),
			float64(len(pcm))/32000, a["sample_rate"], a["bit_depth"], out)
		return os.WriteFile(out, pcm, 0o644)
	}
	conn, err := c.dial("tts")
	if err != nil {
		return err
	}
	defer conn.Close()
	for i, st := range []int{0, 2} {
		f := map[string]any{"header": map[string]any{"app_id": c.appID, "status": st},
			"payload": map[string]any{"text": map[string]any{"encoding": "utf8", "status": st, "seq": i, "text": ""}}}
		if st == 0 {
			f["parameter"] = map[string]any{"tts": params}
			f["payload"].(map[string]any)["text"].(map[string]any)["text"] = b64([]byte(text))
		}
		if err := conn.WriteJSON(f); err != nil {
			return err
		}
	}
	var all []byte
	for {
		var r map[string]any
		if err := conn.ReadJSON(&r); err != nil {
			return err
		}
		h := r["header"].(map[string]any)
		if h["code"] != float64(0) {
			return fmt.Errorf("error frame: %v", h)
		}
		a := item(r, "audio")
		pcm, _ := base64.StdEncoding.DecodeString(fmt.Sprint(a["audio"]))
		all = append(all, pcm...)
		fmt.Printf("status %v seq %v: %d bytes\n", h["status"], a["seq"], len(pcm))
		if h["status"] == float64(2) {
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
	go func() {
		for {
			var r map[string]any
			if err := conn.ReadJSON(&r); err != nil {
				done <- err
				return
			}
			h := r["header"].(map[string]any)
			if h["code"] != float64(0) {
				done <- fmt.Errorf("error frame: %v", h)
				return
			}
			res, _ := json.Marshal(item(r, "result")["text"])
			fmt.Printf("status %v: %s\n", h["status"], res)
			if h["status"] == float64(2) {
				done <- nil
				return
			}
		}
	}()
	const frame = 1280
	n := (len(pcm) + frame - 1) / frame
	for i := 0; i <= n; i++ {
		st, chunk := 1, []byte(nil)
		if i < n {
			chunk = pcm[i*frame : min((i+1)*frame, len(pcm))]
		}
		switch {
		case i == 0:
			st = 0
		case i == n:
			st = 2
		}
		f := map[string]any{"header": map[string]any{"app_id": c.appID, "status": st},
			"payload": map[string]any{"audio": map[string]any{"encoding": "raw", "sample_rate": 16000, "channels": 1,
				"bit_depth": 16, "status": st, "seq": i, "audio": b64(chunk)}}}
		if i == 0 {
			f["parameter"] = map[string]any{"asr": params}
		}
		if err := conn.WriteJSON(f); err != nil {
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
	r, err := c.once("digits", map[string]any{
		"header":    map[string]any{"app_id": c.appID, "status": 3},
		"parameter": map[string]any{"digits": map[string]any{"result": map[string]any{"encoding": "utf8", "format": "json"}}},
		"payload":   map[string]any{"image": map[string]any{"encoding": enc, "scale": scale, "status": 3, "image": b64(b)}}})
	if err != nil {
		return err
	}
	res, _ := json.Marshal(item(r, "result")["text"])
	fmt.Printf("%s\n", res)
	return nil
}
