package targets

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/athenaserving/asf/tools/asfbench"
)

// OIPConfig configures Open Inference Protocol v2 infer requests.
type OIPConfig struct {
	// BaseURL is http://host:port.
	BaseURL string
	Model   string
	// Input names the input tensor (default "input").
	Input string
	// Elements is the number of FP32 elements in the input tensor; ignored when Bytes > 0.
	Elements int
	// Bytes > 0 sends one BYTES tensor holding a Bytes-long text instead of FP32 data, and
	// the response must carry that text back (an echo model).
	Bytes int
	// Creds, when set, sign every request with the URL-parameter HMAC form (webgate
	// authenticates OIP like any request).
	Creds    *asfbench.Credentials
	MaxConns int
}

// OIPInfer is a Target that posts POST /v2/models/<model>/infer with one FP32 or BYTES
// tensor.
type OIPInfer struct {
	client *http.Client
	url    *signedURL // nil: unsigned
	raw    string
	body   []byte
	want   []byte // the text an echo must return (BYTES), else nil
}

// OIPRequest is the OIP v2 infer request body.
type OIPRequest struct {
	ID     string      `json:"id,omitempty"`
	Inputs []OIPTensor `json:"inputs"`
}

// OIPResponse is the OIP v2 infer response body.
type OIPResponse struct {
	ModelName string      `json:"model_name"`
	ID        string      `json:"id,omitempty"`
	Outputs   []OIPTensor `json:"outputs"`
}

// OIPTensor is one named tensor.
type OIPTensor struct {
	Name     string `json:"name"`
	Shape    []int  `json:"shape"`
	Datatype string `json:"datatype"`
	// Data is the flattened tensor data: numbers, or strings for BYTES.
	Data json.RawMessage `json:"data"`
}

// NewOIPInfer builds the request body once.
func NewOIPInfer(cfg OIPConfig) *OIPInfer {
	name := cfg.Input
	if name == "" {
		name = "input"
	}
	t := &OIPInfer{
		client: NewHTTPClient(cfg.MaxConns),
		raw:    strings.TrimRight(cfg.BaseURL, "/") + "/v2/models/" + cfg.Model + "/infer",
	}
	var in OIPTensor
	if cfg.Bytes > 0 {
		text := string(pattern(cfg.Bytes))
		data, _ := json.Marshal([]string{text})
		in = OIPTensor{Name: name, Shape: []int{1}, Datatype: "BYTES", Data: data}
		t.want = []byte(text)
	} else {
		n := max(cfg.Elements, 1)
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(i%100) / 10
		}
		data, _ := json.Marshal(v)
		in = OIPTensor{Name: name, Shape: []int{1, n}, Datatype: "FP32", Data: data}
	}
	t.body, _ = json.Marshal(OIPRequest{ID: "bench", Inputs: []OIPTensor{in}})
	if cfg.Creds != nil {
		t.url = &signedURL{raw: t.raw, method: http.MethodPost, creds: *cfg.Creds}
	}
	return t
}

// Close drops idle connections.
func (t *OIPInfer) Close() { t.client.CloseIdleConnections() }

// NewDoer returns a worker's request sender.
func (t *OIPInfer) NewDoer(context.Context, int) (asfbench.Doer, error) { return &oipDoer{t: t}, nil }

type oipDoer struct {
	t *OIPInfer
	poster
}

func (d *oipDoer) Do(ctx context.Context) (asfbench.Timing, error) {
	u := d.t.raw
	if d.t.url != nil {
		var err error
		if u, err = d.t.url.get(time.Now()); err != nil {
			return asfbench.Timing{}, errKind("sign", err)
		}
	}
	resp, err := d.post(ctx, d.t.client, u, d.t.body)
	if err != nil {
		return asfbench.Timing{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return asfbench.Timing{}, errKind(fmt.Sprintf("http %d", resp.StatusCode), nil)
	}
	if !bytes.Contains(d.buf.Bytes(), []byte(`"outputs"`)) || (d.t.want != nil && !bytes.Contains(d.buf.Bytes(), d.t.want)) {
		return asfbench.Timing{}, errKind("mismatch", nil)
	}
	tm, _ := asfbench.ParseTiming(resp.Header.Get(asfbench.TimingHeader))
	return tm, nil
}

func (d *oipDoer) Close() error { return nil }
