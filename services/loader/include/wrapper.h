/*
 * wrapper.h — the 15 functions an AIGES-compatible engine (libwrapper.so) exports for the
 * ASF loader. Optional symbols: wrapperSetCtrl, wrapperLoadRes, wrapperUnloadRes,
 * wrapperDebugInfo, wrapperExecAsync; every other one must be present.
 *
 * Lifecycle:
 *   start:  wrapperInit(cfg) [+ wrapperSetCtrl]            stop: wrapperFini()
 *   once:   sync  -> wrapperExec -> (loader copies output) -> wrapperExecFree
 *           async -> wrapperExecAsync(cb) -> cb(usrTag, out, ret) with status DataOnce
 *   stream: h = wrapperCreate(usrTag, params, cb|NULL, ...)
 *           repeat wrapperWrite(h, batch) [+ sync: wrapperRead(h, &out) | async: cb(usrTag, out, ret)]
 *           until an output has status DataEnd, or error/timeout/abort -> wrapperDestroy(h)
 *
 * Input lists belong to the loader and are freed after each call: copy what you keep.
 */
#ifndef ASF_AIGES_WRAPPER_H
#define ASF_AIGES_WRAPPER_H

#include "type.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef WRAPPER_API
#define WRAPPER_API __attribute__((visibility("default")))
#endif

/* Hands the engine a control callback (type CTMeterCustom: wrapperMeterCustom,
 * CTTraceLog: wrapperTraceLog). Called after wrapperInit. Optional. */
WRAPPER_API int wrapperSetCtrl(CtrlType type, void* func);

/* Called once at start with the engine's configuration; non-zero fails the start. */
WRAPPER_API int wrapperInit(pConfig cfg);

/* Called once at shutdown, after every session ended. */
WRAPPER_API int wrapperFini(void);

/* Returns the text of a non-zero engine code. */
WRAPPER_API const char* wrapperError(int errNum);

/* Returns the engine's version. */
WRAPPER_API const char* wrapperVersion(void);

/* Loads personalisation resource resId from perData. Optional. */
WRAPPER_API int wrapperLoadRes(pDataList perData, unsigned int resId);

/* Unloads personalisation resource resId. Optional. */
WRAPPER_API int wrapperUnloadRes(unsigned int resId);

/* Starts a session; cb is NULL in sync mode. Returns the engine handle, or NULL with
 * *errNum set. */
WRAPPER_API const void* wrapperCreate(const char* usrTag, pParamList params, wrapperCallback cb,
                                      unsigned int psrIds[], int psrCnt, int* errNum);

/* Writes one ordered input batch of a session. */
WRAPPER_API int wrapperWrite(const void* handle, pDataList reqData);

/* Sync mode: fetches the available output; the engine owns *respData until destroy. */
WRAPPER_API int wrapperRead(const void* handle, pDataList* respData);

/* Ends a session (end status, error, timeout or abort). */
WRAPPER_API int wrapperDestroy(const void* handle);

/* Once request, sync mode. Must be thread-safe. */
WRAPPER_API int wrapperExec(const char* usrTag, pParamList params, pDataList reqData,
                            pDataList* respData, unsigned int psrIds[], int psrCnt);

/* Frees wrapperExec's output, right after the loader copied it. */
WRAPPER_API int wrapperExecFree(const char* usrTag, pDataList* respData);

/* Once request, async mode: the result comes through callback with status DataOnce.
 * timeout is in milliseconds. Optional. */
WRAPPER_API int wrapperExecAsync(const char* usrTag, pParamList params, pDataList reqData,
                                 wrapperCallback callback, int timeout, unsigned int psrIds[], int psrCnt);

/* Returns per-session debug text. Optional. */
WRAPPER_API const char* wrapperDebugInfo(const void* handle);

#ifdef __cplusplus
}
#endif

#endif /* ASF_AIGES_WRAPPER_H */
