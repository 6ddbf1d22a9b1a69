// Package convert maps ASE frames (atompb) to loader messages (loaderpb) and back.
// It holds no transport: it only reads and builds protobuf data types.
//
//	in := convert.ToLoaderInput(frame, syncID, meta)   // frame → LoaderInput
//	res := convert.NewResult(out, meta, sid, in.Expect) // LoaderOutput → Result
package convert

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
)

// ASE frame and result status values (specs/ase-protocol.md §2).
const (
	StatusBegin    int32 = 0
	StatusContinue int32 = 1
	StatusEnd      int32 = 2
	StatusOnce     int32 = 3
)

// Header keys atom always sets on LoaderInput.headers.
const (
	HeaderSid        = "sid"
	HeaderCapability = "capability"
	HeaderUID        = "uid"
	HeaderAppID      = "app_id"
	// HeaderEngineVersion pins the engine version a request or session is served by.
	HeaderEngineVersion = "engine_version"
)

// Timing keys of Result.timing, in nanoseconds.
const (
	TimingAtom   = "atom_ns"
	TimingLoader = "loader_ns"
	TimingEngine = "engine_ns"
)

// Meta is the part of a capability schema's meta that conversion and routing use, filled
// from the capability schemas (libs/capability). A nil *Meta means defaults everywhere.
type Meta struct {
	// Service is the loader service that serves the capability (schema meta "engine");
	// empty means the capability id.
	Service string
	// Inputs maps an input name to its declared data type name (text, audio, image, video, other).
	Inputs map[string]string
	// Accepts maps an output name to its declared data type name.
	Accepts map[string]string
	// OutputAttrType returns the JSON type schemaoutput gives attribute key of output:
	// "integer", "number", "boolean", "string", or "" when it does not say. Nil: untyped.
	OutputAttrType func(output, key string) string
	// OnceTimeout bounds a once request; zero means the router's default.
	OnceTimeout time.Duration
	// FirstResultTimeout bounds the wait for a session's first loader output after its
	// first frame; zero means no bound.
	FirstResultTimeout time.Duration
	// SessionTimeout bounds a session's lifetime; zero means no bound in atom.
	SessionTimeout time.Duration
	// ReadTimeout is the longest wait for the next client frame; zero means no bound in atom.
	ReadTimeout time.Duration
}

// LoaderService returns the loader service that serves capability: Service when set,
// else capability itself.
func (m *Meta) LoaderService(capability string) string {
	if m == nil || m.Service == "" {
		return capability
	}
	return m.Service
}

func (m *Meta) accept(name string) (string, bool) {
	if m == nil {
		return "", false
	}
	t, ok := m.Accepts[name]
	return t, ok
}

func (m *Meta) input(name string) (string, bool) {
	if m == nil {
		return "", false
	}
	t, ok := m.Inputs[name]
	return t, ok
}

func (m *Meta) attrType(output, key string) string {
	if m == nil || m.OutputAttrType == nil {
		return ""
	}
	return m.OutputAttrType(output, key)
}

// dataTypeOf maps an ASE data field name to the loader data type: text, audio, image and
// video map to their own type, anything else to OTHER.
func dataTypeOf(name string) loaderpb.DataType {
	switch name {
	case "text":
		return loaderpb.DataType_DATA_TYPE_TEXT
	case "audio":
		return loaderpb.DataType_DATA_TYPE_AUDIO
	case "image":
		return loaderpb.DataType_DATA_TYPE_IMAGE
	case "video":
		return loaderpb.DataType_DATA_TYPE_VIDEO
	}
	return loaderpb.DataType_DATA_TYPE_OTHER
}

// dataTypeName maps a loader data type to its ASE data field name; unknown values are "other".
func dataTypeName(t loaderpb.DataType) string {
	switch t {
	case loaderpb.DataType_DATA_TYPE_TEXT:
		return "text"
	case loaderpb.DataType_DATA_TYPE_AUDIO:
		return "audio"
	case loaderpb.DataType_DATA_TYPE_IMAGE:
		return "image"
	case loaderpb.DataType_DATA_TYPE_VIDEO:
		return "video"
	}
	return "other"
}

// CheckStatus returns an error with code 10163 unless status is a valid frame status for
// the call kind: 3 for a once call, 0, 1 or 2 for a session frame.
func CheckStatus(status int32, once bool) error {
	if once && status == StatusOnce {
		return nil
	}
	if !once && status >= StatusBegin && status <= StatusEnd {
		return nil
	}
	kind := "session frame"
	if once {
		kind = "once request"
	}
	return fmt.Errorf("%s with status %d: %w", kind, status, aserr.ErrBadRequest)
}

// loaderStatus maps an ASE frame status to the loader status and state: 3 is ONCE with
// state ONCE; 0, 1 and 2 are BEGIN, CONTINUE and END with state STREAM. Other values are
// treated as CONTINUE; callers reject them first with CheckStatus.
func loaderStatus(status int32) (loaderpb.Status, loaderpb.State) {
	switch status {
	case StatusOnce:
		return loaderpb.Status_STATUS_ONCE, loaderpb.State_STATE_ONCE
	case StatusBegin:
		return loaderpb.Status_STATUS_BEGIN, loaderpb.State_STATE_STREAM
	case StatusEnd:
		return loaderpb.Status_STATUS_END, loaderpb.State_STATE_STREAM
	}
	return loaderpb.Status_STATUS_CONTINUE, loaderpb.State_STATE_STREAM
}

// resultStatus maps a loader output status to the ASE result status (the same numbers).
func resultStatus(s loaderpb.Status) int32 {
	switch s {
	case loaderpb.Status_STATUS_BEGIN:
		return StatusBegin
	case loaderpb.Status_STATUS_END:
		return StatusEnd
	case loaderpb.Status_STATUS_ONCE:
		return StatusOnce
	}
	return StatusContinue
}

// IsLast reports whether a loader output status ends its call or session (END or ONCE).
func IsLast(s loaderpb.Status) bool {
	return s == loaderpb.Status_STATUS_END || s == loaderpb.Status_STATUS_ONCE
}

// RouteKey returns the key that keeps a caller on the same loader: the uid header, else app_id.
func RouteKey(f *atompb.Frame) string {
	if uid := f.GetHeader()[HeaderUID]; uid != "" {
		return uid
	}
	return f.GetHeader()[HeaderAppID]
}

// ToLoaderInput converts one frame into a LoaderInput (docs/protocol.md, "atom:
// conversion rules"): every header field plus sid and capability into headers, params into
// params, the output descriptors into expect (Expect), payload items into pl in order (data
// type from the schema's input declaration, else the item's data field, else TEXT), and
// the frame status into status and state. syncID is the frame's position in its session.
// The input shares the frame's params and attribute maps: neither may be written afterwards.
func ToLoaderInput(f *atompb.Frame, syncID int32, meta *Meta) *loaderpb.LoaderInput {
	status, state := loaderStatus(f.GetStatus())
	in := &loaderpb.LoaderInput{
		ServiceId:   f.GetCapability(),
		ServiceName: meta.LoaderService(f.GetCapability()),
		State:       state,
		Headers:     make(map[string]string, len(f.GetHeader())+2),
		Params:      shareMap(f.GetParams()),
		Expect:      Expect(f, meta),
		SyncId:      syncID,
		Status:      status,
	}
	for k, v := range f.GetHeader() {
		in.Headers[k] = v
	}
	if in.Headers[HeaderAppID] == "" && in.Headers[headerAppIDAlias] != "" {
		in.Headers[HeaderAppID] = in.Headers[headerAppIDAlias]
	}
	if f.GetSid() != "" {
		in.Headers[HeaderSid] = f.GetSid()
	}
	if f.GetCapability() != "" {
		in.Headers[HeaderCapability] = f.GetCapability()
	}
	if len(f.GetPayload()) > 0 {
		in.Pl = make([]*loaderpb.Payload, 0, len(f.GetPayload()))
		for _, it := range f.GetPayload() {
			in.Pl = append(in.Pl, &loaderpb.Payload{
				Meta: &loaderpb.MetaDesc{
					Name:      it.GetName(),
					DataType:  inputType(it, meta),
					Attribute: shareMap(it.GetAttributes()),
				},
				Data: it.GetData(),
			})
		}
	}
	return in
}

// headerAppIDAlias is the older spelling of app_id that clients still send.
const headerAppIDAlias = "appid"

// Expect returns the expected outputs of a frame, sorted by name: the frame's output
// descriptors (accepts) with their attributes; a first frame (status 0 or 3) without any
// descriptor expects every output the schema declares, with no attributes. The data type
// of each is the schema's accept declaration, else TEXT.
func Expect(f *atompb.Frame, meta *Meta) []*loaderpb.MetaDesc {
	accepts := f.GetAccepts()
	var names []string
	if len(accepts) > 0 {
		names = make([]string, 0, len(accepts))
		for name := range accepts {
			names = append(names, name)
		}
	} else if meta != nil && (f.GetStatus() == StatusBegin || f.GetStatus() == StatusOnce) {
		for name := range meta.Accepts {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	out := make([]*loaderpb.MetaDesc, 0, len(names))
	for _, name := range names {
		dt := loaderpb.DataType_DATA_TYPE_TEXT
		if t, ok := meta.accept(name); ok {
			dt = dataTypeOf(t)
		}
		out = append(out, &loaderpb.MetaDesc{Name: name, DataType: dt, Attribute: shareMap(accepts[name].GetAttributes())})
	}
	return out
}

// inputType takes the capability's input declaration; an undeclared input falls back to
// the item's own data field name, then TEXT.
func inputType(it *atompb.Item, meta *Meta) loaderpb.DataType {
	if t, ok := meta.input(it.GetName()); ok {
		return dataTypeOf(t)
	}
	if it.GetDataType() != "" {
		return dataTypeOf(it.GetDataType())
	}
	return loaderpb.DataType_DATA_TYPE_TEXT
}

// toResult converts the payloads of one loader output into result items, in order:
// name; data type from the schema's accept declaration of that output, else the loader's;
// attributes from the loader, completed with the attributes of the matching expect entry
// that the loader did not set (so format=json reaches the renderer), each typed attribute
// of schemaoutput rewritten to its canonical JSON literal (TypeAttr); data unchanged.
func toResult(out *loaderpb.LoaderOutput, meta *Meta, expect []*loaderpb.MetaDesc) []*atompb.Item {
	if len(out.GetPl()) == 0 {
		return nil
	}
	items := make([]*atompb.Item, 0, len(out.GetPl()))
	for _, p := range out.GetPl() {
		name := p.GetMeta().GetName()
		dt := dataTypeName(p.GetMeta().GetDataType())
		if t, ok := meta.accept(name); ok {
			dt = dataTypeName(dataTypeOf(t))
		}
		attrs := copyMap(p.GetMeta().GetAttribute())
		for _, e := range expect {
			if e.GetName() != name {
				continue
			}
			for k, v := range e.GetAttribute() {
				if _, ok := attrs[k]; !ok {
					if attrs == nil {
						attrs = map[string]string{}
					}
					attrs[k] = v
				}
			}
		}
		for k, v := range attrs {
			attrs[k] = TypeAttr(meta.attrType(name, k), v)
		}
		items = append(items, &atompb.Item{Name: name, DataType: dt, Attributes: attrs, Data: p.GetData()})
	}
	return items
}

// TypeAttr rewrites an attribute value to the canonical JSON literal of its schema type so
// a renderer can emit it unquoted: "integer" → decimal integer ("16000.0" → "16000"),
// "number" → shortest float form, "boolean" → true or false (from 1/0/t/f/true/false in
// any case). A value that does not parse as its type, and any value of another type, is
// returned unchanged (rendered as a string).
func TypeAttr(typ, v string) string {
	switch typ {
	case "integer":
		if i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			return strconv.FormatInt(i, 10)
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return strconv.FormatInt(int64(f), 10)
		}
	case "number":
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
	case "boolean":
		if b, err := strconv.ParseBool(strings.TrimSpace(v)); err == nil {
			return strconv.FormatBool(b)
		}
	}
	return v
}

// NewResult builds the success Result for one loader output: code 0, sid, the mapped
// status, the payload items (toResult, with the call's expect), and the loader's loader_ns and engine_ns timings. The caller
// adds atom_ns.
func NewResult(out *loaderpb.LoaderOutput, meta *Meta, sid string, expect []*loaderpb.MetaDesc) *atompb.Result {
	return &atompb.Result{
		Code:    0,
		Message: "success",
		Sid:     sid,
		Status:  resultStatus(out.GetStatus()),
		Payload: toResult(out, meta, expect),
		Timing: map[string]int64{
			TimingLoader: out.GetLoaderNs(),
			TimingEngine: out.GetEngineNs(),
		},
	}
}

// ErrorResult builds the Result that carries err's code and message to the client.
func ErrorResult(err error, sid string, status int32) *atompb.Result {
	return &atompb.Result{
		Code:    int32(aserr.CodeOf(err)),
		Message: aserr.MessageOf(err),
		Sid:     sid,
		Status:  status,
	}
}

// OutputError returns the error a loader output carries in its code (nil when code is 0).
// Loaders end calls with a status error instead, but a non-zero code is honoured too.
func OutputError(out *loaderpb.LoaderOutput) error {
	if out.GetCode() == 0 {
		return nil
	}
	msg := out.GetErr()
	if msg == "" {
		msg = "engine error"
	}
	return aserr.New(int(out.GetCode()), msg)
}

// shareMap returns m itself (nil when empty): conversion shares the frame's read-only maps
// with the loader input instead of copying them per frame. Neither side is written after
// conversion.
func shareMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
