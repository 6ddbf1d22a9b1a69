// Command asfcall is a small ASE client: a once request over HTTP or a streaming session
// over WebSocket, signed with the app's HMAC keys, printing every response; `sign` prints a
// signed URL (valid for five minutes) for curl.
//
//	asfcall once   --url http://127.0.0.1:8889/v1/private/echo --api-key K --api-secret S --text hello
//	asfcall stream --url http://127.0.0.1:8889/v1/private/echo --api-key K --api-secret S --frames 3
//	curl -X POST "$(asfcall sign --url http://127.0.0.1:8889/v1/private/echo --api-key K --api-secret S)" -d @req.json
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

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "once" && os.Args[1] != "stream" && os.Args[1] != "sign") {
		fmt.Fprintln(os.Stderr, "usage: asfcall once|stream|sign --url URL [--app-id A --api-key K --api-secret S] [--text T] [--input name:type:encoding] [--param k=v]... [--frames N] [--method M]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:8889/v1/private/echo", "capability URL")
	text := fs.String("text", "hello athena", "text payload")
	frames := fs.Int("frames", 3, "frames in a stream session (statuses 0, 1, ..., 2)")
	appID := fs.String("app-id", "demo", "header.app_id")
	key := fs.String("api-key", os.Getenv("ASF_API_KEY"), "app API key (env ASF_API_KEY); empty sends unsigned requests")
	secret := fs.String("api-secret", os.Getenv("ASF_API_SECRET"), "app API secret (env ASF_API_SECRET)")
	method := fs.String("method", "POST", "request method to sign (sign mode)")
	input := fs.String("input", "input:text:utf8", "payload item carrying --text: name[:type[:encoding]]")
	params := map[string]string{}
	fs.Func("param", "parameter key=value of the first frame (repeatable)", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("%q: want key=value", s)
		}
		params[k] = v
		return nil
	})
	_ = fs.Parse(os.Args[2:])
	in = parseItem(*input)
	param = params
	svc := *url
	if i := strings.IndexByte(svc, '?'); i >= 0 {
		svc = svc[:i]
	}
	svc = svc[strings.LastIndex(svc, "/")+1:]
	creds := asfbench.Credentials{APIKey: *key, APISecret: *secret}
	sign := func(u, m string) (string, error) {
		if creds.APIKey == "" {
			return u, nil
		}
		return asfbench.SignURL(u, m, creds, time.Now())
	}
	var err error
	switch mode {
	case "once":
		var u string
		if u, err = sign(*url, http.MethodPost); err == nil {
			err = once(u, svc, *appID, *text)
		}
	case "stream":
		var u string
		if u, err = sign(*url, http.MethodGet); err == nil {
			err = stream(u, svc, *appID, *text, *frames)
		}
	case "sign":
		var u string
		if u, err = sign(*url, strings.ToUpper(*method)); err == nil {
			fmt.Println(u)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "asfcall:", err)
		os.Exit(1)
	}
}

// item is the payload item that carries the text: its name, data type and encoding.
type item struct{ name, typ, encoding string }

// in and param are the --input item and the --param parameters of every request.
var (
	in    = item{"input", "text", "utf8"}
	param = map[string]string{}
)

// parseItem parses name[:type[:encoding]]; type defaults to text, encoding to utf8 for
// text and raw otherwise.
func parseItem(s string) item {
	f := strings.SplitN(s, ":", 3)
	it := item{name: f[0], typ: "text"}
	if len(f) > 1 && f[1] != "" {
		it.typ = f[1]
	}
	if len(f) > 2 && f[2] != "" {
		it.encoding = f[2]
	} else if it.typ == "text" {
		it.encoding = "utf8"
	} else {
		it.encoding = "raw"
	}
	return it
}

func frame(svc, appID, text string, status int, first bool) []byte {
	m := map[string]any{
		"header":  map[string]any{"app_id": appID, "status": status},
		"payload": map[string]any{in.name: map[string]any{"encoding": in.encoding, "status": status, in.typ: base64.StdEncoding.EncodeToString([]byte(text))}},
	}
	if first {
		p := map[string]any{}
		for k, v := range param {
			p[k] = v
		}
		m["parameter"] = map[string]any{svc: p}
	}
	b, _ := json.Marshal(m)
	return b
}

func once(url, svc, appID, text string) error {
	resp, err := http.Post(url, "application/json", bytes.NewReader(frame(svc, appID, text, 3, true)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	fmt.Printf("HTTP %d %s\n", resp.StatusCode, b)
	return err
}

func stream(url, svc, appID, text string, n int) error {
	ws := "ws" + strings.TrimPrefix(url, "http")
	c, _, err := websocket.DefaultDialer.Dial(ws, nil)
	if err != nil {
		return fmt.Errorf("dial %s: %w", ws, err)
	}
	defer c.Close()
	if n < 2 {
		n = 2
	}
	go func() { // writer: the reader below ends the program
		for i := 0; i < n; i++ {
			st := 1
			switch i {
			case 0:
				st = 0
			case n - 1:
				st = 2
			}
			if err := c.WriteMessage(websocket.TextMessage, frame(svc, appID, fmt.Sprintf("%s #%d", text, i), st, i == 0)); err != nil {
				return
			}
			time.Sleep(40 * time.Millisecond) // paced like 40 ms audio frames
		}
	}()
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				fmt.Println("closed: 1000", err.(*websocket.CloseError).Text)
				return nil
			}
			return err
		}
		fmt.Println(string(msg))
	}
}
