package targets

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/athenaserving/asf/tools/asfbench"
)

// OIPConfig configures Open Inference Protocol v2 infer requests.
type OIPConfig struct {
	// BaseURL is http://host:port.
	BaseURL string
	Model   string
	// Elements is the number of FP32 elements in the input tensor.
	Elements int
	MaxConns int
}

// OIPInfer is a Target that posts POST /v2/models/<model>/infer with one FP32 tensor.
type OIPInfer struct {
	client *http.Client
	url    string
	body   []byte
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
	Name     string    `json:"name"`
	Shape    []int     `json:"shape"`
	Datatype string    `json:"datatype"`
	Data     []float32 `json:"data"`
}

// NewOIPInfer builds the request body once.
func NewOIPInfer(cfg OIPConfig) *OIPInfer {
	n := max(cfg.Elements, 1)
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(i%100) / 10
	}
	body, _ := json.Marshal(OIPRequest{ID: "bench", Inputs: []OIPTensor{{Name: "input", Shape: []int{1, n}, Datatype: "FP32", Data: data}}})
	return &OIPInfer{
		client: NewHTTPClient(cfg.MaxConns),
		url:    strings.TrimRight(cfg.BaseURL, "/") + "/v2/models/" + cfg.Model + "/infer",
		body:   body,
	}
}

// Close drops idle connections.
func (t *OIPInfer) Close() { t.client.CloseIdleConnections() }

// NewDoer returns a worker's request sender.
func (t *OIPInfer) NewDoer(context.Context, int) (asfbench.Doer, error) { return &oipDoer{t: t}, nil }

type oipDoer struct {
	t   *OIPInfer
	buf bytes.Buffer
	rd  bytes.Reader
}

func (d *oipDoer) Do(ctx context.Context) (asfbench.Timing, error) {
	d.rd.Reset(d.t.body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.t.url, &d.rd)
	if err != nil {
		return asfbench.Timing{}, errKind("request", err)
	}
	req.ContentLength = int64(len(d.t.body))
	req.Header["Content-Type"] = []string{"application/json"}
	resp, err := d.t.client.Do(req)
	if err != nil {
		return asfbench.Timing{}, errKind("transport", err)
	}
	d.buf.Reset()
	_, err = d.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return asfbench.Timing{}, errKind("transport", err)
	}
	if resp.StatusCode != http.StatusOK {
		return asfbench.Timing{}, errKind(fmt.Sprintf("http %d", resp.StatusCode), nil)
	}
	if !bytes.Contains(d.buf.Bytes(), []byte(`"outputs"`)) {
		return asfbench.Timing{}, errKind("mismatch", nil)
	}
	tm, _ := asfbench.ParseTiming(resp.Header.Get(asfbench.TimingHeader))
	return tm, nil
}

func (d *oipDoer) Close() error { return nil }
