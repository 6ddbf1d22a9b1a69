package cabi

/*
#include "shim.h"
*/
import "C"

import (
	"unsafe"

	"github.com/athenaserving/asf/services/loader/engine"
)

// asfGoCallback receives wrapperCallback calls (async once results and async session
// outputs) from any engine thread. It copies respData before returning.
//
//export asfGoCallback
func asfGoCallback(usrTag unsafe.Pointer, resp C.pDataList, ret C.int) C.int {
	if usrTag == nil {
		return 0
	}
	key := C.GoString((*C.char)(usrTag))
	t := tags.get(key)
	if t == nil {
		return 0 // request timed out or session destroyed: drop
	}
	outs, st := goData(resp)
	var err error
	if ret != 0 {
		kind, call := ErrExecAsync, symExecAsync
		if t.emit != nil {
			kind, call = ErrRead, "wrapperCallback"
		}
		err = t.eng.fail(call, kind, int(ret))
	}
	switch {
	case t.once != nil:
		if tags.take(key) == nil {
			return 0 // timed out meanwhile
		}
		t.once <- onceResult{outs: outs, err: err}
	case t.emit != nil:
		if err != nil {
			t.emit(engine.Result{Err: err})
		} else {
			t.emit(engine.Result{Status: st, Outputs: outs})
		}
	}
	return 0
}

// asfGoMeter receives wrapperMeterCustom calls.
//
//export asfGoMeter
func asfGoMeter(usrTag unsafe.Pointer, key *C.char, count C.int) C.int {
	e := engineOf(usrTag)
	if e == nil || e.meter == nil || key == nil {
		return 0
	}
	k := C.GoString(key)
	if _, ok := e.meterKeys.Load(k); !ok {
		if e.nKeys.Add(1) > maxMeterKeys {
			k = "other"
		} else {
			e.meterKeys.Store(k, struct{}{})
		}
	}
	e.meter.WithLabelValues(k).Add(float64(count))
	return 0
}

// asfGoTrace receives wrapperTraceLog calls from any engine thread: an event and an
// attribute on the span of the engine call the usrTag names (the request's, or the
// session's create or latest frame, else the session's span) when it is traced, and a
// debug log line.
//
//export asfGoTrace
func asfGoTrace(usrTag, key, value *C.char) C.int {
	var tag string
	var t *target
	if usrTag != nil {
		tag = C.GoString(usrTag)
		t = tags.get(tag)
	}
	e := lastInit.Load()
	if t != nil {
		e = t.eng
	}
	if e == nil {
		return 0
	}
	k, v := C.GoString(key), C.GoString(value)
	if t != nil {
		t.traceLog(k, v)
	}
	e.opts.Log.Debug().Str("sid", tag).Str("key", k).Str("value", v).Msg("engine trace")
	return 0
}

// engineOf finds the engine that owns usrTag, else the engine initialised last.
func engineOf(usrTag unsafe.Pointer) *Engine {
	if usrTag != nil {
		if t := tags.get(C.GoString((*C.char)(usrTag))); t != nil {
			return t.eng
		}
	}
	return lastInit.Load()
}
