// Command asfcall is a small ASE client: a once request over HTTP or a streaming session
// over WebSocket, printing every response.
//
//	asfcall once   --url http://127.0.0.1:8889/v1/private/echo --text hello
//	asfcall stream --url http://127.0.0.1:8889/v1/private/echo --frames 3 --text hello
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

	"github.com/gorilla/websocket"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "once" && os.Args[1] != "stream") {
		fmt.Fprintln(os.Stderr, "usage: asfcall once|stream --url URL [--text T] [--frames N] [--app-id A]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:8889/v1/private/echo", "capability URL")
	text := fs.String("text", "hello athena", "text payload")
	frames := fs.Int("frames", 3, "frames in a stream session (statuses 0, 1, ..., 2)")
	appID := fs.String("app-id", "demo", "header.app_id")
	_ = fs.Parse(os.Args[2:])
	svc := (*url)[strings.LastIndex(*url, "/")+1:]
	var err error
	if mode == "once" {
		err = once(*url, svc, *appID, *text)
	} else {
		err = stream(*url, svc, *appID, *text, *frames)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "asfcall:", err)
		os.Exit(1)
	}
}

func frame(svc, appID, text string, status int, first bool) []byte {
	m := map[string]any{
		"header":  map[string]any{"app_id": appID, "status": status},
		"payload": map[string]any{"input": map[string]any{"encoding": "utf8", "status": status, "text": base64.StdEncoding.EncodeToString([]byte(text))}},
	}
	if first {
		m["parameter"] = map[string]any{svc: map[string]any{}}
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
