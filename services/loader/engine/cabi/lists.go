package cabi

/*
#include "shim.h"
*/
import "C"

import (
	"sort"
	"strconv"
	"unsafe"

	"github.com/athenaserving/asf/services/loader/engine"
)

// maxNodes bounds how many nodes of an engine's output list are read (a guard against a
// corrupted, cyclic list).
const maxNodes = 1 << 16

// cParams builds a ParamList in C memory from m (keys sorted); free with C.asf_free_params.
func cParams(m map[string]string) C.pParamList {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(keys))) // prepending: reverse gives sorted order
	var head C.pParamList
	for _, k := range keys {
		head = cParam(head, k, m[k])
	}
	return head
}

func cParam(next C.pParamList, k, v string) C.pParamList {
	n := (C.pParamList)(C.calloc(1, C.size_t(unsafe.Sizeof(C.struct_ParamList{}))))
	n.key = C.CString(k)
	n.value = C.CString(v)
	n.vlen = C.uint(len(v))
	n.next = next
	return n
}

// cData builds a DataList in C memory from ps, every node with status st; extra
// descriptors (seq, status) are added when not set. Free with C.asf_free_data.
func cData(ps []engine.Payload, st engine.Status, extra map[string]string) C.pDataList {
	var head C.pDataList
	for i := len(ps) - 1; i >= 0; i-- {
		p := ps[i]
		n := (C.pDataList)(C.calloc(1, C.size_t(unsafe.Sizeof(C.struct_DataList{}))))
		n.key = C.CString(p.Name)
		// One spare zero byte: engines often treat text as a C string.
		n.data = C.calloc(C.size_t(len(p.Data)+1), 1)
		if len(p.Data) > 0 {
			copy(unsafe.Slice((*byte)(n.data), len(p.Data)), p.Data)
		}
		n.len = C.uint(len(p.Data))
		n._type = cType(p.Type)
		n.status = C.DataStatus(st)
		attrs := p.Attrs
		if len(extra) > 0 {
			attrs = make(map[string]string, len(p.Attrs)+len(extra))
			for k, v := range extra {
				attrs[k] = v
			}
			for k, v := range p.Attrs {
				attrs[k] = v
			}
		}
		n.desc = C.pDescList(cParams(attrs))
		n.next = head
		head = n
	}
	return head
}

// cPsr copies ids into C memory (nil for none); free with C.free.
func cPsr(ids []uint32) (*C.uint, C.int) {
	if len(ids) == 0 {
		return nil, 0
	}
	p := (*C.uint)(C.calloc(C.size_t(len(ids)), C.size_t(unsafe.Sizeof(C.uint(0)))))
	copy(unsafe.Slice(p, len(ids)), unsafe.Slice((*C.uint)(unsafe.Pointer(&ids[0])), len(ids)))
	return p, C.int(len(ids))
}

func cType(t engine.DataType) C.DataType {
	if t < engine.DataText || t > engine.DataOther {
		return C.DataPer
	}
	return C.DataType(t) // DataOther == DataPer == 4
}

func goType(t C.DataType) engine.DataType {
	if t < C.DataText || t > C.DataVideo {
		return engine.DataOther
	}
	return engine.DataType(t)
}

// goData copies an engine's output list into Go memory and returns it with the list's
// status: END when a node ends the stream (or is ONCE), else the highest node status.
func goData(l C.pDataList) ([]engine.Payload, engine.Status) {
	var out []engine.Payload
	st := engine.StatusBegin
	for n := 0; l != nil && n < maxNodes; n++ {
		p := engine.Payload{Meta: engine.Meta{Name: C.GoString(l.key), Type: goType(l._type), Attrs: goParams(C.pParamList(l.desc))}}
		if l.len > 0 && l.data != nil {
			p.Data = C.GoBytes(l.data, C.int(l.len))
		} else {
			p.Data = []byte{}
		}
		switch s := engine.Status(l.status); s {
		case engine.StatusEnd, engine.StatusOnce:
			st = engine.StatusEnd
		case engine.StatusContinue:
			if st == engine.StatusBegin {
				st = engine.StatusContinue
			}
		}
		out = append(out, p)
		l = l.next
	}
	return out, st
}

func goParams(p C.pParamList) map[string]string {
	if p == nil {
		return nil
	}
	m := map[string]string{}
	for n := 0; p != nil && n < maxNodes; n++ {
		if p.key != nil {
			var v string
			switch {
			case p.value == nil:
			case p.vlen > 0:
				v = C.GoStringN(p.value, C.int(p.vlen))
			default:
				v = C.GoString(p.value)
			}
			m[C.GoString(p.key)] = v
		}
		p = p.next
	}
	return m
}

// frameDesc is what every session input node carries besides its own attributes.
func frameDesc(f engine.Frame) map[string]string {
	return map[string]string{"seq": strconv.Itoa(int(f.SyncID)), "status": strconv.Itoa(int(f.Status))}
}

// roundTrip converts ps to a C list and back (tests and fuzzing of the list conversions).
func roundTrip(ps []engine.Payload, st engine.Status) ([]engine.Payload, engine.Status) {
	l := cData(ps, st, nil)
	defer C.asf_free_data(l)
	return goData(l)
}

// liveTags is the number of usrTags registered (tests: zero when nothing runs).
func liveTags() int { return tags.size() }
