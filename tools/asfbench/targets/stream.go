package targets

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/athenaserving/asf/tools/asfbench"
)

// ASEStreamConfig configures ASE WebSocket sessions.
type ASEStreamConfig struct {
	// BaseURL is http://host:port (or ws://); the session goes to /v1/private/<Service>.
	BaseURL string
	Service string
	AppID   string
	Creds   asfbench.Credentials
	// FrameSize is the audio bytes per frame (1280 = 40 ms of 16 kHz 16-bit PCM).
	FrameSize int
	// FramesPerSession is the session length; the last frame has status 2 and the socket is
	// then closed and a new session opened.
	FramesPerSession int
	// ReadTimeout bounds the wait for one result (default 10 s).
	ReadTimeout time.Duration
}

// ASEStream is a Target whose workers each hold one WebSocket session and whose Do sends one
// frame and waits for its result (frame-to-result latency).
type ASEStream struct {
	cfg    ASEStreamConfig
	url    *signedURL
	frames [3][]byte // status 0, 1, 2
	dialer websocket.Dialer
}

// NewASEStream builds the three frame bodies once.
func NewASEStream(cfg ASEStreamConfig) *ASEStream {
	if cfg.FramesPerSession < 2 {
		cfg.FramesPerSession = 2
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	audio := base64.StdEncoding.EncodeToString(pattern(max(cfg.FrameSize, 1)))
	mk := func(status int) []byte {
		m := map[string]any{
			"header":  map[string]any{"app_id": cfg.AppID, "status": status},
			"payload": map[string]any{"audio": map[string]any{"encoding": "raw", "sample_rate": 16000, "status": status, "audio": audio}},
		}
		if status == 0 {
			m["parameter"] = map[string]any{cfg.Service: map[string]any{}}
		}
		if status == 2 {
			m["payload"].(map[string]any)["audio"].(map[string]any)["audio"] = ""
		}
		b, _ := json.Marshal(m)
		return b
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	base = strings.Replace(strings.Replace(base, "https://", "wss://", 1), "http://", "ws://", 1)
	return &ASEStream{
		cfg:    cfg,
		url:    &signedURL{raw: base + "/v1/private/" + cfg.Service, method: http.MethodGet, creds: cfg.Creds},
		frames: [3][]byte{mk(0), mk(1), mk(2)},
		dialer: websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 4096},
	}
}

// NewDoer returns a worker's session; it connects on its first Do.
func (t *ASEStream) NewDoer(context.Context, int) (asfbench.Doer, error) {
	return &streamDoer{t: t}, nil
}

type streamDoer struct {
	t    *ASEStream
	conn *websocket.Conn
	stop func() bool
	seq  int
}

func (d *streamDoer) dial(ctx context.Context) error {
	u, err := d.t.url.get(time.Now())
	if err != nil {
		return errKind("sign", err)
	}
	c, resp, err := d.t.dialer.DialContext(ctx, u, nil)
	if err != nil {
		if resp != nil {
			return errKind(fmt.Sprintf("ws dial http %d", resp.StatusCode), err)
		}
		return errKind("ws dial", err)
	}
	d.conn = c
	// A cancelled run unblocks a pending read by closing the socket.
	d.stop = context.AfterFunc(ctx, func() { _ = c.NetConn().Close() })
	d.seq = 0
	return nil
}

// Do sends the next frame of the session and reads its result.
func (d *streamDoer) Do(ctx context.Context) (asfbench.Timing, error) {
	if d.conn == nil {
		if err := d.dial(ctx); err != nil {
			return asfbench.Timing{}, err
		}
	}
	status := 1
	switch {
	case d.seq == 0:
		status = 0
	case d.seq >= d.t.cfg.FramesPerSession-1:
		status = 2
	}
	d.seq++
	if err := d.conn.WriteMessage(websocket.TextMessage, d.t.frames[status]); err != nil {
		d.drop()
		return asfbench.Timing{}, errKind("ws write", err)
	}
	_ = d.conn.SetReadDeadline(time.Now().Add(d.t.cfg.ReadTimeout))
	_, msg, err := d.conn.ReadMessage()
	if err != nil {
		d.drop()
		if ce, ok := err.(*websocket.CloseError); ok {
			return asfbench.Timing{}, errKind(fmt.Sprintf("ws close %d", ce.Code), err)
		}
		return asfbench.Timing{}, errKind("ws read", err)
	}
	code, err := aseCode(msg)
	if err != nil {
		d.drop()
		return asfbench.Timing{}, errKind("ws bad result", err)
	}
	if code != 0 {
		d.drop()
		return asfbench.Timing{}, errKind(fmt.Sprintf("code %d", code), nil)
	}
	if status == 2 {
		d.drop()
	}
	return asfbench.Timing{}, nil
}

// drop closes the session; the next Do opens a new one.
func (d *streamDoer) drop() {
	if d.conn == nil {
		return
	}
	d.stop()
	_ = d.conn.Close()
	d.conn = nil
}

func (d *streamDoer) Close() error {
	d.drop()
	return nil
}
