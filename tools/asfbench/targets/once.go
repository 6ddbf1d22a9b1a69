package targets

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/athenaserving/asf/tools/asfbench"
)

// ASEOnceConfig configures ASE once requests over HTTP.
type ASEOnceConfig struct {
	// BaseURL is http://host:port of webgate (or of a baseline).
	BaseURL string
	// Service is the capability id: the request goes to /v1/private/<Service>.
	Service string
	AppID   string
	Creds   asfbench.Credentials
	// PayloadSize is the size of the echoed text before base64.
	PayloadSize int
	// MaxConns bounds idle keep-alive connections (set it to the concurrency).
	MaxConns int
}

// ASEOnce is a Target that posts signed ASE once requests and checks the echo.
type ASEOnce struct {
	cfg    ASEOnceConfig
	client *http.Client
	body   []byte
	want   []byte // the base64 text the echo must return
	url    *signedURL
}

// NewASEOnce builds the request body once.
func NewASEOnce(cfg ASEOnceConfig) *ASEOnce {
	data := pattern(max(cfg.PayloadSize, 1))
	return &ASEOnce{
		cfg:    cfg,
		client: NewHTTPClient(cfg.MaxConns),
		body:   BuildASEOnce(cfg.AppID, cfg.Service, "text", data),
		want:   []byte(base64.StdEncoding.EncodeToString(data)),
		url: &signedURL{
			raw:    strings.TrimRight(cfg.BaseURL, "/") + "/v1/private/" + cfg.Service,
			method: http.MethodPost, creds: cfg.Creds,
		},
	}
}

// Close drops idle connections.
func (t *ASEOnce) Close() { t.client.CloseIdleConnections() }

// NewDoer returns a worker's request sender.
func (t *ASEOnce) NewDoer(context.Context, int) (asfbench.Doer, error) {
	return &onceDoer{t: t}, nil
}

type onceDoer struct {
	t *ASEOnce
	poster
}

func (d *onceDoer) Do(ctx context.Context) (asfbench.Timing, error) {
	u, err := d.t.url.get(time.Now())
	if err != nil {
		return asfbench.Timing{}, errKind("sign", err)
	}
	resp, err := d.post(ctx, d.t.client, u, d.t.body)
	if err != nil {
		return asfbench.Timing{}, err
	}
	return checkASE(resp, d.buf.Bytes(), d.t.want)
}

// checkASE turns an ASE HTTP response into a Timing or a kinded error.
func checkASE(resp *http.Response, body, want []byte) (asfbench.Timing, error) {
	code, err := aseCode(body)
	if err != nil {
		return asfbench.Timing{}, errKind(fmt.Sprintf("http %d", resp.StatusCode), err)
	}
	if code != 0 {
		return asfbench.Timing{}, errKind(fmt.Sprintf("code %d", code), nil)
	}
	if resp.StatusCode != http.StatusOK {
		return asfbench.Timing{}, errKind(fmt.Sprintf("http %d", resp.StatusCode), nil)
	}
	if want != nil && !bytes.Contains(body, want) {
		return asfbench.Timing{}, errKind("mismatch", nil)
	}
	tm, _ := asfbench.ParseTiming(resp.Header.Get(asfbench.TimingHeader))
	return tm, nil
}

func (d *onceDoer) Close() error { return nil }
