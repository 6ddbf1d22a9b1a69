// Package convert maps ASE frames (atompb) to loader messages (loaderpb) and back.
// It holds no transport: it only reads and builds protobuf data types.
//
//	in := convert.ToLoaderInput(frame, syncID, meta)   // frame → LoaderInput
//	res := convert.NewResult(out, meta, sid)            // LoaderOutput → Result
package convert

import (
	"fmt"
	"sort"
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
)

// Timing keys of Result.timing, in nanoseconds.
const (
	TimingAtom   = "atom_ns"
	TimingLoader = "loader_ns"
	TimingEngine = "engine_ns"
)

// Meta is the part of a capability schema's meta that conversion and routing use. A later
// piece of work fills it from the capability schemas in polaris; a nil *Meta means defaults.
type Meta struct {
	// Inputs maps an input name to its declared data type name (text, audio, image, video, other).
	Inputs map[string]string
	// Accepts maps an output name to its declared data type name.
	Accepts map[string]string
	// OnceTimeout bounds a once request; zero means the router's default.
	OnceTimeout time.Duration
	// SessionTimeout bounds a session's lifetime; zero means no bound in atom.
	SessionTimeout time.Duration
	// ReadTimeout is the longest wait for the next client frame; zero means no bound in atom.
	ReadTimeout time.Duration
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

// DataTypeOf maps an ASE data field name to the loader data type: text, audio, image and
// video map to their own type, anything else to OTHER.
func DataTypeOf(name string) loaderpb.DataType {
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

// DataTypeName maps a loader data type to its ASE data field name; unknown values are "other".
func DataTypeName(t loaderpb.DataType) string {
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

// LoaderStatus maps an ASE frame status to the loader status and state: 3 is ONCE with
// state ONCE; 0, 1 and 2 are BEGIN, CONTINUE and END with state STREAM. Other values are
// treated as CONTINUE; callers reject them first with CheckStatus.
func LoaderStatus(status int32) (loaderpb.Status, loaderpb.State) {
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

// ResultStatus maps a loader output status to the ASE result status (the same numbers).
func ResultStatus(s loaderpb.Status) int32 {
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

// ToLoaderInput converts one frame into a LoaderInput: every header field plus sid and
// capability into headers, params into params, accepts into expect (sorted by name, data
// type from meta's accept declaration, else TEXT), payload items into pl (in order), and
// the frame status into status and state. syncID is the frame's position in its session.
func ToLoaderInput(f *atompb.Frame, syncID int32, meta *Meta) *loaderpb.LoaderInput {
	status, state := LoaderStatus(f.GetStatus())
	in := &loaderpb.LoaderInput{
		ServiceId:   f.GetCapability(),
		ServiceName: f.GetCapability(),
		State:       state,
		Headers:     make(map[string]string, len(f.GetHeader())+2),
		Params:      copyMap(f.GetParams()),
		SyncId:      syncID,
		Status:      status,
	}
	for k, v := range f.GetHeader() {
		in.Headers[k] = v
	}
	if f.GetSid() != "" {
		in.Headers[HeaderSid] = f.GetSid()
	}
	if f.GetCapability() != "" {
		in.Headers[HeaderCapability] = f.GetCapability()
	}
	if len(f.GetAccepts()) > 0 {
		names := make([]string, 0, len(f.GetAccepts()))
		for name := range f.GetAccepts() {
			names = append(names, name)
		}
		sort.Strings(names)
		in.Expect = make([]*loaderpb.MetaDesc, 0, len(names))
		for _, name := range names {
			dt := loaderpb.DataType_DATA_TYPE_TEXT
			if t, ok := meta.accept(name); ok {
				dt = DataTypeOf(t)
			}
			in.Expect = append(in.Expect, &loaderpb.MetaDesc{
				Name:      name,
				DataType:  dt,
				Attribute: copyMap(f.GetAccepts()[name].GetAttributes()),
			})
		}
	}
	if len(f.GetPayload()) > 0 {
		in.Pl = make([]*loaderpb.Payload, 0, len(f.GetPayload()))
		for _, it := range f.GetPayload() {
			in.Pl = append(in.Pl, &loaderpb.Payload{
				Meta: &loaderpb.MetaDesc{
					Name:      it.GetName(),
					DataType:  inputType(it, meta),
					Attribute: copyMap(it.GetAttributes()),
				},
				Data: it.GetData(),
			})
		}
	}
	return in
}

// inputType takes the item's own data field name; an item without one falls back to the
// capability's input declaration, then TEXT.
func inputType(it *atompb.Item, meta *Meta) loaderpb.DataType {
	if it.GetDataType() != "" {
		return DataTypeOf(it.GetDataType())
	}
	if t, ok := meta.input(it.GetName()); ok {
		return DataTypeOf(t)
	}
	return loaderpb.DataType_DATA_TYPE_TEXT
}

// ToResult converts the payloads of one loader output into result items: name, data type
// name from the loader data type, attributes copied, data. meta is reserved for typing
// attributes from the capability's output schema.
func ToResult(out *loaderpb.LoaderOutput, meta *Meta) []*atompb.Item {
	_ = meta
	if len(out.GetPl()) == 0 {
		return nil
	}
	items := make([]*atompb.Item, 0, len(out.GetPl()))
	for _, p := range out.GetPl() {
		items = append(items, &atompb.Item{
			Name:       p.GetMeta().GetName(),
			DataType:   DataTypeName(p.GetMeta().GetDataType()),
			Attributes: copyMap(p.GetMeta().GetAttribute()),
			Data:       p.GetData(),
		})
	}
	return items
}

// NewResult builds the success Result for one loader output: code 0, sid, the mapped
// status, the payload items, and the loader's loader_ns and engine_ns timings. The caller
// adds atom_ns.
func NewResult(out *loaderpb.LoaderOutput, meta *Meta, sid string) *atompb.Result {
	return &atompb.Result{
		Code:    0,
		Message: "success",
		Sid:     sid,
		Status:  ResultStatus(out.GetStatus()),
		Payload: ToResult(out, meta),
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
