// Package oip is webgate's Open Inference Protocol v2 (KServe/Triton REST) adapter, a
// second front door to the same pipeline: a model is a capability, an infer request is a
// once frame whose payload items are the input tensors, and the result items come back as
// output tensors typed by the capability's schema (BYTES unless its schemaoutput declares
// a number or boolean). It decodes and encodes; the gate validates and calls atom.
package oip

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/capability"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/athenaserving/asf/services/webgate/transport/httpio"
)

// Prefix is the path prefix of the OIP routes.
const Prefix = "/v2"

// OIP actions kept in gate.Request.OIP.
const (
	oipModel = "model"
	oipReady = "ready"
	oipInfer = "infer"
)

// Server serves the OIP routes of a gate.
type Server struct {
	g       *gate.Gate
	maxBody int64
	ready   func() bool
	// loaders lists the loaders registered for a model (nil: no registry, see SetLoaders).
	loaders func(ctx context.Context, model string) ([]Loader, error)
}

// Loader is one engine instance registered for a model: the engine version it registered
// and whether it is live (serving, not going offline, not disabled by an operator).
type Loader struct {
	Version string
	Live    bool
}

// SetLoaders gives the server the registry's view of a model's loaders (set before
// serving). With it, metadata and ready answer 404 for a model that has neither a schema
// nor a registered loader, and for a version no loader registered; ready is true only
// while a live loader (of that version) exists; metadata lists the registered versions.
// Without it, a model is known by its schema, any version is taken as served, and ready
// follows the server's readiness.
func (h *Server) SetLoaders(f func(ctx context.Context, model string) ([]Loader, error)) {
	h.loaders = f
}

// New returns a Server; maxBody bounds an infer request body, ready answers
// /v2/health/ready (nil: always ready).
func New(g *gate.Gate, maxBody int64, ready func() bool) *Server {
	return &Server{g: g, maxBody: maxBody, ready: ready}
}

// Version returns the model version an OIP path names (/v2/models/<m>/versions/<v>/...),
// "" without one. An infer request on such a path is pinned to that engine version.
func Version(path string) string {
	rest, _ := strings.CutPrefix(path, "/v2/models/")
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	if len(parts) >= 3 && parts[1] == "versions" {
		return parts[2]
	}
	return ""
}

// headerEngineVersion is the ASE header field atom picks loaders of one engine version by.
const headerEngineVersion = "engine_version"

// Route parses /v2/models/<model>[/versions/<v>][/ready|/infer] into the model and the
// action kept in gate.Request.OIP.
func Route(path string) (model, action string, ok bool) {
	rest, found := strings.CutPrefix(path, "/v2/models/")
	if !found || rest == "" {
		return "", "", false
	}
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	model, parts = parts[0], parts[1:]
	if len(parts) >= 2 && parts[0] == "versions" {
		parts = parts[2:]
	}
	switch {
	case model == "":
		return "", "", false
	case len(parts) == 0:
		return model, oipModel, true
	case len(parts) == 1 && parts[0] == "ready":
		return model, oipReady, true
	case len(parts) == 1 && parts[0] == "infer":
		return model, oipInfer, true
	}
	return "", "", false
}

// ServeHealth answers the server-level probes; it reports whether it answered.
func (h *Server) ServeHealth(w http.ResponseWriter, r *http.Request) bool {
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/v2/health/live":
		httpio.WriteJSON(w, http.StatusOK, map[string]any{"live": true})
	case "/v2/health/ready":
		ready := h.ready == nil || h.ready()
		st := http.StatusOK
		if !ready {
			st = http.StatusServiceUnavailable
		}
		httpio.WriteJSON(w, st, map[string]any{"ready": ready})
	case "/v2":
		httpio.WriteJSON(w, http.StatusOK, map[string]any{"name": "asf-webgate", "version": "2", "extensions": []string{}})
	default:
		return false
	}
	return true
}

// WriteError writes an OIP error body.
func WriteError(w http.ResponseWriter, status int, msg string) {
	httpio.WriteJSON(w, status, map[string]string{"error": msg})
}

type oipTensorMeta struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// Serve serves an OIP request routed to info's capability.
func (h *Server) Serve(w http.ResponseWriter, r *http.Request, info *gate.Request) {
	w.Header().Set("X-Asf-Sid", info.SID)
	want := http.MethodGet
	if info.OIP == oipInfer {
		want = http.MethodPost
	}
	if r.Method != want {
		info.Code = aserr.ErrBadRequest.Code
		w.Header().Set("Allow", want)
		WriteError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if info.OIP == oipInfer {
		// Unknown models and versions: 404 from atom (10404), without a registry call per
		// request.
		h.serveInfer(w, r, info)
		return
	}
	h.serveModel(w, r, info)
}

// serveModel answers model metadata and readiness (see SetLoaders).
func (h *Server) serveModel(w http.ResponseWriter, r *http.Request, info *gate.Request) {
	version := Version(r.URL.Path)
	known := info.Schema != nil
	var versions []string // registered engine versions, sorted
	live := h.ready == nil || h.ready()
	if h.loaders != nil {
		ls, err := h.loaders(r.Context(), info.Capability)
		if err != nil {
			info.Code = aserr.ErrNoEngine.Code
			info.Log.Warn().Err(err).Msg("model loaders")
			WriteError(w, http.StatusServiceUnavailable, "model registry cannot be read now")
			return
		}
		known = known || len(ls) > 0
		anyLive := false
		for _, l := range ls {
			if !slices.Contains(versions, l.Version) && l.Version != "" {
				versions = append(versions, l.Version)
			}
			if l.Live && (version == "" || l.Version == version) {
				anyLive = true
			}
		}
		sort.Strings(versions)
		live = live && anyLive
		if known && version != "" && !slices.Contains(versions, version) {
			info.Code = aserr.ErrNotFound.Code
			WriteError(w, http.StatusNotFound, "model "+info.Capability+" has no version "+version)
			return
		}
	}
	if !known {
		info.Code = aserr.ErrNotFound.Code
		WriteError(w, http.StatusNotFound, "model "+info.Capability+" not found")
		return
	}
	switch info.OIP {
	case oipReady:
		// The protocol's "4xx means false": 400, as Triton answers a model that is not ready.
		st := http.StatusOK
		if !live {
			st = http.StatusBadRequest
		}
		body := map[string]any{"name": info.Capability, "ready": live}
		if version != "" {
			body["version"] = version
		}
		httpio.WriteJSON(w, st, body)
	case oipModel:
		meta := map[string]any{"name": info.Capability, "platform": "asf", "versions": []string{}, "inputs": []oipTensorMeta{}, "outputs": []oipTensorMeta{}}
		switch {
		case versions != nil:
			meta["versions"] = versions
		case info.Schema != nil && info.Schema.Version() != "":
			meta["versions"] = []string{info.Schema.Version()}
		}
		if s := info.Schema; s != nil {
			meta["inputs"] = tensorMetas(s.Inputs(), nil)
			meta["outputs"] = tensorMetas(s.Accepts(), s)
		}
		httpio.WriteJSON(w, http.StatusOK, meta)
	}
}

// tensorMetas describes tensors by name; with the schema of outputs, each output's
// datatype follows it (outputDatatype), else BYTES.
func tensorMetas(names []string, outputs *capability.Schema) []oipTensorMeta {
	out := make([]oipTensorMeta, 0, len(names))
	for _, n := range names {
		dt := "BYTES"
		if outputs != nil {
			if d, ok := outputs.AcceptType(n); ok {
				dt = outputDatatype(outputs, n, string(d))
			}
		}
		out = append(out, oipTensorMeta{Name: n, Datatype: dt, Shape: []int64{-1}})
	}
	return out
}

// outputDatatype is the OIP datatype of output name, whose data field is dataField (the
// ASE data type: text, audio, ...), as schemaoutput declares that field: integer → INT64,
// number → FP64, number with format float → FP32, boolean → BOOL; anything else BYTES.
func outputDatatype(s *capability.Schema, name, dataField string) string {
	if s == nil {
		return "BYTES"
	}
	switch s.OutputJSONType(name, dataField) {
	case "integer":
		return "INT64"
	case "number":
		return "FP64"
	case "float":
		return "FP32"
	case "boolean":
		return "BOOL"
	}
	return "BYTES"
}

// outputTensor fills o's datatype, shape and data from an output item's data: a numeric
// or boolean datatype takes the text's elements (separated by white space or commas) as
// a [n] tensor; BYTES (or text that does not parse as the datatype) is one element, shape
// [1], the UTF-8 text or else base64 with parameters.content_encoding "base64".
func outputTensor(o *oipOutput, datatype string, data []byte) {
	if datatype != "BYTES" && utf8.Valid(data) {
		fields := strings.FieldsFunc(string(data), func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		vals := make([]any, 0, len(fields))
		for _, f := range fields {
			v, ok := parseElement(datatype, f)
			if !ok {
				vals = nil
				break
			}
			vals = append(vals, v)
		}
		if len(vals) > 0 {
			o.Datatype, o.Shape, o.Data = datatype, []int64{int64(len(vals))}, vals
			return
		}
	}
	o.Datatype, o.Shape = "BYTES", []int64{1}
	if utf8.Valid(data) {
		o.Data = []any{string(data)}
		return
	}
	o.Data = []any{base64.StdEncoding.EncodeToString(data)}
	o.Parameters["content_encoding"] = "base64"
}

// parseElement parses one element of text as datatype (INT64, FP64, FP32 or BOOL).
func parseElement(datatype, s string) (any, bool) {
	switch datatype {
	case "INT64":
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	case "FP64", "FP32":
		bits := 64
		if datatype == "FP32" {
			bits = 32
		}
		f, err := strconv.ParseFloat(s, bits)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, false
		}
		return f, true
	case "BOOL":
		b, err := strconv.ParseBool(s)
		return b, err == nil
	}
	return nil, false
}

type oipTensor struct {
	Name       string                     `json:"name"`
	Shape      []int64                    `json:"shape"`
	Datatype   string                     `json:"datatype"`
	Parameters map[string]json.RawMessage `json:"parameters,omitempty"`
	Data       json.RawMessage            `json:"data"`
}

type oipRequest struct {
	ID         string                     `json:"id"`
	Parameters map[string]json.RawMessage `json:"parameters"`
	Inputs     []oipTensor                `json:"inputs"`
	Outputs    []struct {
		Name       string                     `json:"name"`
		Parameters map[string]json.RawMessage `json:"parameters"`
	} `json:"outputs"`
}

type oipOutput struct {
	Name       string         `json:"name"`
	Datatype   string         `json:"datatype"`
	Shape      []int64        `json:"shape"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       []any          `json:"data"`
}

func (h *Server) serveInfer(w http.ResponseWriter, r *http.Request, info *gate.Request) {
	ctx := r.Context()
	fail := func(err error) {
		code := aserr.CodeOf(err)
		info.Code = code
		st := info.HTTPStatus(code)
		if code == aserr.ErrNotFound.Code {
			st = http.StatusNotFound
		}
		if tl := (*gate.ErrTooLarge)(nil); errors.As(err, &tl) {
			st = http.StatusRequestEntityTooLarge
		}
		if code != aserr.ErrBadRequest.Code && code != aserr.ErrNotFound.Code {
			info.Log.Warn().Err(err).Int("code", code).Msg("infer request failed")
		}
		WriteError(w, st, ase.PublicMessage(code, aserr.MessageOf(err)))
	}
	body, err := httpio.ReadBody(w, r, h.maxBody)
	if err != nil {
		fail(err)
		return
	}
	h.g.Metrics().Received(len(body))
	var req oipRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		fail(aserr.Newf(aserr.ErrBadRequest.Code, "invalid infer request json: %v", err))
		return
	}
	f, err := oipFrame(&req, info)
	if err != nil {
		fail(err)
		return
	}
	if v := Version(r.URL.Path); v != "" {
		if f.Header == nil {
			f.Header = map[string]string{}
		}
		f.Header[headerEngineVersion] = v // a version no loader serves: 404
	}
	f, _, err = h.g.CheckFrame(ctx, info, f, nil, true, nil)
	if err != nil {
		fail(err)
		return
	}
	res, err := h.g.Call(ctx, info, f)
	if err == nil && res.GetCode() != 0 {
		err = aserr.New(int(res.GetCode()), res.GetMessage())
	}
	if err != nil {
		fail(err)
		return
	}
	took := time.Since(info.Start)
	h.g.Metrics().Results(h.g.Label(info), gate.KindOIP, took, took)
	w.Header().Set("X-Asf-Timing", httpio.TimingHeader(took, res.GetTiming()))
	info.Code = 0
	typer := h.g.Renderer(info.Schema).Typer
	out := map[string]any{"model_name": info.Capability, "id": req.ID, "parameters": map[string]any{"sid": info.SID}}
	if info.Schema != nil && info.Schema.Version() != "" {
		out["model_version"] = info.Schema.Version()
	}
	outputs := make([]oipOutput, 0, len(res.GetPayload()))
	for _, it := range res.GetPayload() {
		o := oipOutput{Name: it.GetName(), Parameters: map[string]any{}}
		for k, v := range it.GetAttributes() {
			o.Parameters[k] = typedAttr(typer(it.GetName(), k), v)
		}
		dataField := it.GetDataType()
		if dataField != "" {
			o.Parameters["data_type"] = dataField
		} else if info.Schema != nil {
			if d, ok := info.Schema.AcceptType(it.GetName()); ok {
				dataField = string(d)
			}
		}
		outputTensor(&o, outputDatatype(info.Schema, it.GetName(), dataField), it.GetData())
		outputs = append(outputs, o)
	}
	out["outputs"] = outputs
	b, _ := json.Marshal(out)
	h.g.Metrics().Sent(len(b))
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func typedAttr(t ase.AttrType, v string) any {
	switch t {
	case ase.AttrNumber:
		if json.Valid([]byte(v)) {
			if _, err := strconv.ParseFloat(v, 64); err == nil {
				return json.Number(v)
			}
		}
	case ase.AttrBool:
		if v == "true" || v == "false" {
			return v == "true"
		}
	}
	return v
}

// oipFrame maps an infer request to a once frame: input tensors become payload items
// (BYTES: the strings concatenated, base64-decoded when parameters.content_encoding is
// "base64"; numeric types: little-endian binary), tensor parameters their attributes,
// request parameters engine params and requested outputs accepts.
func oipFrame(req *oipRequest, info *gate.Request) (*atompb.Frame, error) {
	if len(req.Inputs) == 0 {
		return nil, aserr.New(aserr.ErrBadRequest.Code, "infer request has no inputs")
	}
	f := &atompb.Frame{Capability: info.Capability, Status: ase.StatusOnce, Header: map[string]string{}}
	if req.ID != "" {
		f.Header["request_id"] = req.ID
	}
	for k, raw := range req.Parameters {
		s, ok := rawText(raw)
		if !ok {
			continue
		}
		switch k {
		case "app_id", "uid", "did", "res_id", "patch_id":
			f.Header[k] = s
		default:
			if f.Params == nil {
				f.Params = map[string]string{}
			}
			f.Params[k] = s
		}
	}
	if info.App != nil {
		f.Header["app_id"] = info.App.ID
	}
	for _, o := range req.Outputs {
		acc := &atompb.Accept{Attributes: map[string]string{}}
		for k, raw := range o.Parameters {
			if s, ok := rawText(raw); ok {
				acc.Attributes[k] = s
			}
		}
		if f.Accepts == nil {
			f.Accepts = map[string]*atompb.Accept{}
		}
		f.Accepts[o.Name] = acc
	}
	for _, t := range req.Inputs {
		if t.Name == "" {
			return nil, aserr.New(aserr.ErrBadRequest.Code, "input tensor without a name")
		}
		it := &atompb.Item{Name: t.Name, Attributes: map[string]string{}}
		for k, raw := range t.Parameters {
			if s, ok := rawText(raw); ok {
				it.Attributes[k] = s
			}
		}
		dt := it.Attributes["data_type"]
		delete(it.Attributes, "data_type")
		b64 := it.Attributes["content_encoding"] == "base64"
		delete(it.Attributes, "content_encoding")
		if info.Schema != nil {
			if d, ok := info.Schema.InputType(t.Name); ok {
				dt = string(d)
			}
		}
		if dt == "" {
			dt = string(capability.DataOther)
			if strings.EqualFold(t.Datatype, "BYTES") {
				dt = string(capability.DataText)
			}
		}
		if !capability.DataType(dt).Valid() {
			return nil, aserr.Newf(aserr.ErrBadRequest.Code, "inputs.%s: data_type %q", t.Name, dt)
		}
		it.DataType = dt
		if _, ok := it.Attributes["status"]; !ok {
			it.Attributes["status"] = "3"
		}
		data, err := tensorBytes(t, b64)
		if err != nil {
			return nil, aserr.Newf(aserr.ErrBadRequest.Code, "inputs.%s: %v", t.Name, err)
		}
		it.Data = data
		f.Payload = append(f.Payload, it)
	}
	sort.Slice(f.Payload, func(i, j int) bool { return f.Payload[i].Name < f.Payload[j].Name })
	return f, nil
}

func rawText(raw json.RawMessage) (string, bool) {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil || v == nil {
		return "", false
	}
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return "", false
	}
	return b.String(), true
}

// shapeElements is the element count of a tensor of the given shape: the product of its
// dimensions (1 for a scalar, shape []). Every dimension must be >= 0 (-1 is for metadata
// only).
func shapeElements(shape []int64) (int64, error) {
	if shape == nil {
		return 0, errors.New("shape is required")
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%s has a negative dimension", shapeText(shape))
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("%s has too many elements", shapeText(shape))
		}
		n *= d
	}
	return n, nil
}

// shapeText writes a shape for an error message as "shape (2,3)": the public message
// filter drops bracketed tokens such as "[2]".
func shapeText(shape []int64) string {
	if len(shape) == 0 {
		return "a scalar shape"
	}
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "shape (" + strings.Join(parts, ",") + ")"
}

// tensorBytes flattens a tensor's data into bytes after checking that the data holds
// exactly the number of elements its shape says (each BYTES string is one element).
func tensorBytes(t oipTensor, b64 bool) ([]byte, error) {
	var data any
	d := json.NewDecoder(bytes.NewReader(t.Data))
	d.UseNumber()
	if len(t.Data) > 0 {
		if err := d.Decode(&data); err != nil {
			return nil, err
		}
	}
	var flat []any
	nulls := 0
	var walk func(v any)
	walk = func(v any) {
		if a, ok := v.([]any); ok {
			for _, x := range a {
				walk(x)
			}
			return
		}
		if v == nil {
			nulls++
			return
		}
		flat = append(flat, v)
	}
	if data != nil {
		walk(data)
	}
	if nulls > 0 {
		return nil, fmt.Errorf("data holds %d null elements", nulls)
	}
	want, err := shapeElements(t.Shape)
	if err != nil {
		return nil, err
	}
	if want != int64(len(flat)) {
		return nil, fmt.Errorf("%s holds %d elements, data has %d", shapeText(t.Shape), want, len(flat))
	}
	dtype := strings.ToUpper(t.Datatype)
	var out []byte
	for _, v := range flat {
		if dtype == "BYTES" {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("BYTES element %v is not a string", v)
			}
			if b64 {
				b, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					return nil, fmt.Errorf("invalid base64: %v", err)
				}
				out = append(out, b...)
				continue
			}
			out = append(out, s...)
			continue
		}
		if dtype == "BOOL" {
			b, ok := v.(bool)
			if !ok {
				return nil, fmt.Errorf("BOOL element %v", v)
			}
			if b {
				out = append(out, 1)
			} else {
				out = append(out, 0)
			}
			continue
		}
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s element %v is not a number", dtype, v)
		}
		var err error
		if out, err = appendNumber(out, dtype, n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func appendNumber(out []byte, dtype string, n json.Number) ([]byte, error) {
	le := binary.LittleEndian
	switch dtype {
	case "FP32":
		f, err := n.Float64()
		if err != nil {
			return nil, err
		}
		return le.AppendUint32(out, math.Float32bits(float32(f))), nil
	case "FP64":
		f, err := n.Float64()
		if err != nil {
			return nil, err
		}
		return le.AppendUint64(out, math.Float64bits(f)), nil
	}
	bits := map[string]int{"INT8": 8, "UINT8": 8, "INT16": 16, "UINT16": 16, "INT32": 32, "UINT32": 32, "INT64": 64, "UINT64": 64}[dtype]
	if bits == 0 {
		return nil, fmt.Errorf("datatype %q not supported", dtype)
	}
	var u uint64
	if strings.HasPrefix(dtype, "U") {
		v, err := strconv.ParseUint(n.String(), 10, bits)
		if err != nil {
			return nil, err
		}
		u = v
	} else {
		v, err := strconv.ParseInt(n.String(), 10, bits)
		if err != nil {
			return nil, err
		}
		u = uint64(v)
	}
	switch bits {
	case 8:
		return append(out, byte(u)), nil
	case 16:
		return le.AppendUint16(out, uint16(u)), nil
	case 32:
		return le.AppendUint32(out, uint32(u)), nil
	}
	return le.AppendUint64(out, u), nil
}
