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
 *
 * Source compatibility with AIGES's wrapper.h: the same declarations, the callback
 * typedefs (wrapperCallback, wrapperMeterCustom, wrapperTraceLog, wrapperCalc) and, beside
 * each function, its pointer typedef wrapperXxxPtr (wrapperInit -> wrapperInitPtr) for
 * engines and tools that resolve or tabulate the functions. Engines may declare their
 * functions with either export macro:
 *
 *   int WrapperAPI wrapperInit(pConfig cfg) { ... }          (AIGES spelling)
 *   WRAPPER_API int wrapperInit(pConfig cfg) { ... }         (this project's examples)
 *
 * The pointer typedefs carry no visibility attribute (it does not apply to pointer types,
 * and g++ warns about it there); they are the same types AIGES declares. The include
 * guard is shared with AIGES's __AIGES_WRAPPER_H__.
 */
#include "type.h"

/* WRAPPER_API is this project's spelling of WrapperAPI. */
#ifndef WRAPPER_API
#define WRAPPER_API WrapperAPI
#endif

#if !defined(ASF_AIGES_WRAPPER_H) && !defined(__AIGES_WRAPPER_H__)
#define ASF_AIGES_WRAPPER_H
#define __AIGES_WRAPPER_H__

#ifdef __cplusplus
extern "C" {
#endif

/* Result callback of async sessions and wrapperExecAsync; may be called from any thread.
 * ret != 0 is an error whose text comes from wrapperError. respData stays owned by the
 * engine: the loader copies it before returning. */
typedef int (*wrapperCallback)(const void* usrTag, pDataList respData, int ret);

/* Custom metering (CTMeterCustom): count units of meterKey for the request or session
 * usrTag; call it between wrapperCreate and wrapperDestroy, or inside wrapperExec. */
typedef int (*wrapperMeterCustom)(const void* usrTag, const char* meterKey, int count);

/* Trace log (CTTraceLog): key/value attached to the request or session usrTag. */
typedef int (*wrapperTraceLog)(const char* usrTag, const char* key, const char* value);

/* Metering with a channel (CTCalcCustom), declared by some AIGES releases. This loader
 * never hands it out: engines must cope with not receiving it. */
typedef int (*wrapperCalc)(const void* usrTag, const char* channel, const char* func, const char* count);

/* Hands the engine a control callback (type CTMeterCustom: wrapperMeterCustom,
 * CTTraceLog: wrapperTraceLog). Called after wrapperInit. Optional. */
WrapperAPI int wrapperSetCtrl(CtrlType type, void* func);
typedef int (*wrapperSetCtrlPtr)(CtrlType type, void* func);

/* Called once at start with the engine's configuration; non-zero fails the start. */
WrapperAPI int wrapperInit(pConfig cfg);
typedef int (*wrapperInitPtr)(pConfig cfg);

/* Called once at shutdown, after every session ended. */
WrapperAPI int wrapperFini(void);
typedef int (*wrapperFiniPtr)(void);

/* Returns the text of a non-zero engine code. */
WrapperAPI const char* wrapperError(int errNum);
typedef const char* (*wrapperErrorPtr)(int errNum);

/* Returns the engine's version. */
WrapperAPI const char* wrapperVersion(void);
typedef const char* (*wrapperVersionPtr)(void);

/* Loads personalisation resource resId from perData. Optional. */
WrapperAPI int wrapperLoadRes(pDataList perData, unsigned int resId);
typedef int (*wrapperLoadResPtr)(pDataList perData, unsigned int resId);

/* Unloads personalisation resource resId. Optional. */
WrapperAPI int wrapperUnloadRes(unsigned int resId);
typedef int (*wrapperUnloadResPtr)(unsigned int resId);

/* Starts a session; cb is NULL in sync mode. Returns the engine handle, or NULL with
 * *errNum set. */
WrapperAPI const void* wrapperCreate(const char* usrTag, pParamList params, wrapperCallback cb,
                                     unsigned int psrIds[], int psrCnt, int* errNum);
typedef const void* (*wrapperCreatePtr)(const char* usrTag, pParamList params, wrapperCallback cb,
                                        unsigned int psrIds[], int psrCnt, int* errNum);

/* Writes one ordered input batch of a session. */
WrapperAPI int wrapperWrite(const void* handle, pDataList reqData);
typedef int (*wrapperWritePtr)(const void* handle, pDataList reqData);

/* Sync mode: fetches the available output; the engine owns *respData until destroy. */
WrapperAPI int wrapperRead(const void* handle, pDataList* respData);
typedef int (*wrapperReadPtr)(const void* handle, pDataList* respData);

/* Ends a session (end status, error, timeout or abort). */
WrapperAPI int wrapperDestroy(const void* handle);
typedef int (*wrapperDestroyPtr)(const void* handle);

/* Once request, sync mode. Must be thread-safe. */
WrapperAPI int wrapperExec(const char* usrTag, pParamList params, pDataList reqData,
                           pDataList* respData, unsigned int psrIds[], int psrCnt);
typedef int (*wrapperExecPtr)(const char* usrTag, pParamList params, pDataList reqData,
                              pDataList* respData, unsigned int psrIds[], int psrCnt);

/* Frees wrapperExec's output, right after the loader copied it. */
WrapperAPI int wrapperExecFree(const char* usrTag, pDataList* respData);
typedef int (*wrapperExecFreePtr)(const char* usrTag, pDataList* respData);

/* Once request, async mode: the result comes through callback with status DataOnce.
 * timeout is in milliseconds. Optional. */
WrapperAPI int wrapperExecAsync(const char* usrTag, pParamList params, pDataList reqData,
                                wrapperCallback callback, int timeout, unsigned int psrIds[], int psrCnt);
typedef int (*wrapperExecAsyncPtr)(const char* usrTag, pParamList params, pDataList reqData,
                                   wrapperCallback callback, int timeout, unsigned int psrIds[], int psrCnt);

/* Returns per-session debug text. Optional. */
WrapperAPI const char* wrapperDebugInfo(const void* handle);
typedef const char* (*wrapperDebugInfoPtr)(const void* handle);

#ifdef __cplusplus
}
#endif

#endif /* ASF_AIGES_WRAPPER_H / __AIGES_WRAPPER_H__ */
