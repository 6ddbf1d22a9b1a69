package ase

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// Statuses of frames and results.
const (
	StatusBegin    = 0 // first frame of a session
	StatusContinue = 1 // a middle frame
	StatusEnd      = 2 // last frame; the result with it is the session's last
	StatusOnce     = 3 // all data in one request
)

// DataTypes are the names of an item's data field.
var DataTypes = []string{"text", "audio", "image", "video", "other"}

func isDataType(s string) bool {
	for _, t := range DataTypes {
		if s == t {
			return true
		}
	}
	return false
}

// Input is one payload item: its name (the key under payload), data type (text, audio,
// image, video or other), encoding, data and further attributes (sample_rate, seq, ...).
type Input struct {
	Name, Type, Encoding string
	Data                 []byte
	Attrs                map[string]any
}

// Text is a UTF-8 text input.
func Text(name, s string) Input {
	return Input{Name: name, Type: "text", Encoding: "utf8", Data: []byte(s)}
}

// Audio is a raw PCM audio input with its sample rate (16-bit, mono).
func Audio(name string, pcm []byte, sampleRate int) Input {
	return Input{Name: name, Type: "audio", Encoding: "raw", Data: pcm,
		Attrs: map[string]any{"sample_rate": sampleRate, "channels": 1, "bit_depth": 16}}
}

// Request is one request or frame. Parameter becomes parameter.<service> (first frame
// only); Header adds header fields beside app_id and status (uid, res_id, ...).
type Request struct {
	Header    map[string]any
	Parameter map[string]any
	Payload   []Input
}

// encode renders r as an ASE document for service with status; first adds app_id, the
// header fields and the parameters; cid (multiplex) goes into every frame's header.
func (r Request) encode(service, appID, cid string, status int, first bool) ([]byte, error) {
	h := map[string]any{"status": status}
	if first {
		for k, v := range r.Header {
			h[k] = v
		}
		h["app_id"] = appID
	}
	if cid != "" {
		h["cid"] = cid
	}
	doc := map[string]any{"header": h}
	if first {
		p := r.Parameter
		if p == nil {
			p = map[string]any{}
		}
		doc["parameter"] = map[string]any{service: p}
	}
	if len(r.Payload) > 0 {
		pl := map[string]any{}
		for _, in := range r.Payload {
			if in.Name == "" {
				return nil, errors.New("ase: payload item without a name")
			}
			if !isDataType(in.Type) {
				return nil, fmt.Errorf("ase: payload item %s: type %q is not one of text, audio, image, video, other", in.Name, in.Type)
			}
			it := map[string]any{"status": status}
			for k, v := range in.Attrs {
				it[k] = v
			}
			if in.Encoding != "" {
				it["encoding"] = in.Encoding
			}
			it[in.Type] = base64.StdEncoding.EncodeToString(in.Data)
			pl[in.Name] = it
		}
		doc["payload"] = pl
	}
	return json.Marshal(doc)
}

// Output is one result item: its name, the data field's type, the data (base64 decoded,
// or the JSON value's bytes when the output's format is json) and its other attributes.
type Output struct {
	Name, Type string
	Data       []byte
	Attrs      map[string]any
}

// Encoding is the output's encoding attribute ("" when absent).
func (o Output) Encoding() string { s, _ := o.Attrs["encoding"].(string); return s }

// Response is one result: the header's code, message, sid, status and (multiplex) cid,
// the outputs by name, and the document as received.
type Response struct {
	Code    int
	Message string
	Sid     string
	Status  int
	Cid     string
	Outputs map[string]Output
	Raw     json.RawMessage
}

// Names are the outputs' names, sorted.
func (r *Response) Names() []string {
	out := make([]string, 0, len(r.Outputs))
	for k := range r.Outputs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type wireResponse struct {
	Header struct {
		Code    *int   `json:"code"`
		Message string `json:"message"`
		Sid     string `json:"sid"`
		Status  int    `json:"status"`
		Cid     string `json:"cid"`
	} `json:"header"`
	Payload map[string]map[string]json.RawMessage `json:"payload"`
	// Message is the body of a gateway refusal ({"message": ...}).
	Message string `json:"message"`
}

// ParseResponse decodes an ASE response document. A document with a non-zero code is
// returned together with an *Error; a gateway refusal ({"message": ...}) is an *Error with
// code 0; anything else that is not an ASE response is an error.
func ParseResponse(b []byte) (*Response, error) {
	var w wireResponse
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("ase: response is not JSON: %w", err)
	}
	if w.Header.Code == nil {
		if w.Message != "" {
			return nil, &Error{Message: w.Message}
		}
		return nil, fmt.Errorf("ase: response without header.code: %.200s", b)
	}
	r := &Response{Code: *w.Header.Code, Message: w.Header.Message, Sid: w.Header.Sid, Status: w.Header.Status,
		Cid: w.Header.Cid, Outputs: map[string]Output{}, Raw: append(json.RawMessage(nil), b...)}
	for name, fields := range w.Payload {
		o := Output{Name: name, Attrs: map[string]any{}}
		for k, raw := range fields {
			if isDataType(k) {
				o.Type = k
				var s string
				if json.Unmarshal(raw, &s) == nil {
					if d, err := base64.StdEncoding.DecodeString(s); err == nil {
						o.Data = d
						continue
					}
				}
				o.Data = append([]byte(nil), raw...) // a JSON value (format json)
				continue
			}
			var v any
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			if d.Decode(&v) == nil {
				o.Attrs[k] = v
			}
		}
		r.Outputs[name] = o
	}
	if r.Code != 0 {
		return r, &Error{Code: r.Code, Message: r.Message, Sid: r.Sid, Cid: r.Cid}
	}
	return r, nil
}
