/* shim.c — see shim.h. The trampolines hand the engine's callbacks to the Go functions
 * exported in callbacks.go. */
#include <dlfcn.h>
#include <string.h>

#include "shim.h"
#include "_cgo_export.h"

void* asf_dlopen(const char* path, char* err, size_t errlen) {
    void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char* e = dlerror();
        strncpy(err, e ? e : "dlopen failed", errlen - 1);
        err[errlen - 1] = 0;
    }
    return h;
}

void* asf_dlsym(void* h, const char* name) { return dlsym(h, name); }

static int tramp_callback(const void* usrTag, pDataList resp, int ret) {
    return asfGoCallback((void*)usrTag, resp, ret);
}

static int tramp_meter(const void* usrTag, const char* key, int count) {
    return asfGoMeter((void*)usrTag, (char*)key, count);
}

static int tramp_trace(const char* usrTag, const char* key, const char* value) {
    return asfGoTrace((char*)usrTag, (char*)key, (char*)value);
}

int asf_set_ctrl(void* f) {
    int (*fn)(CtrlType, void*) = (int (*)(CtrlType, void*))f;
    int rc = fn(CTMeterCustom, (void*)(wrapperMeterCustom)tramp_meter);
    if (rc != 0) return rc;
    return fn(CTTraceLog, (void*)(wrapperTraceLog)tramp_trace);
}

int asf_init(void* f, pConfig cfg) { return ((int (*)(pConfig))f)(cfg); }
int asf_fini(void* f) { return ((int (*)(void))f)(); }
const char* asf_error(void* f, int code) { return ((const char* (*)(int))f)(code); }
const char* asf_version(void* f) { return ((const char* (*)(void))f)(); }
int asf_load_res(void* f, pDataList data, unsigned int id) { return ((int (*)(pDataList, unsigned int))f)(data, id); }
int asf_unload_res(void* f, unsigned int id) { return ((int (*)(unsigned int))f)(id); }

const void* asf_create(void* f, const char* tag, pParamList params, int async, unsigned int* psr, int psrCnt, int* errNum) {
    typedef const void* (*fn_t)(const char*, pParamList, wrapperCallback, unsigned int[], int, int*);
    return ((fn_t)f)(tag, params, async ? tramp_callback : NULL, psr, psrCnt, errNum);
}

int asf_write(void* f, const void* h, pDataList data) { return ((int (*)(const void*, pDataList))f)(h, data); }
int asf_read(void* f, const void* h, pDataList* out) { return ((int (*)(const void*, pDataList*))f)(h, out); }
int asf_destroy(void* f, const void* h) { return ((int (*)(const void*))f)(h); }

int asf_exec(void* f, const char* tag, pParamList params, pDataList data, pDataList* out, unsigned int* psr, int psrCnt) {
    typedef int (*fn_t)(const char*, pParamList, pDataList, pDataList*, unsigned int[], int);
    return ((fn_t)f)(tag, params, data, out, psr, psrCnt);
}

int asf_exec_free(void* f, const char* tag, pDataList* out) {
    return ((int (*)(const char*, pDataList*))f)(tag, out);
}

int asf_exec_async(void* f, const char* tag, pParamList params, pDataList data, int timeout, unsigned int* psr, int psrCnt) {
    typedef int (*fn_t)(const char*, pParamList, pDataList, wrapperCallback, int, unsigned int[], int);
    return ((fn_t)f)(tag, params, data, tramp_callback, timeout, psr, psrCnt);
}

const char* asf_debug_info(void* f, const void* h) { return ((const char* (*)(const void*))f)(h); }

void asf_free_params(pParamList p) {
    while (p) {
        pParamList n = p->next;
        free(p->key);
        free(p->value);
        free(p);
        p = n;
    }
}

void asf_free_data(pDataList d) {
    while (d) {
        pDataList n = d->next;
        free(d->key);
        free(d->data);
        asf_free_params(d->desc);
        free(d);
        d = n;
    }
}
