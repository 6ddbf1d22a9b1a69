/*
 * wrapper.c — a test engine written the way AIGES engines are: functions declared with the
 * WrapperAPI macro in both of the positions AIGES engines use, the wrapperXxxPtr typedefs,
 * AIGES's empty parameter lists, and all 15 functions defined (AIGES's loader requires
 * every symbol). It upper-cases its text inputs.
 *
 * The same file compiles as C and as C++ (g++ -x c++), with -Wall -Werror and
 * -fvisibility=hidden: only WrapperAPI functions are exported, so loading it proves the
 * macro exports them.
 *
 *   once:     every input -> an output of the same name and type, upper-cased, DataOnce;
 *             meters "chars" and traces "stage"="exec" for usrTag
 *   session:  wrapperWrite upper-cases the batch; sync: wrapperRead returns it once;
 *             async: the callback gets it from inside wrapperWrite
 *   params:   fail=1 makes wrapperExec return ERR_FAIL
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wrapper.h"

#define ERR_FAIL   31001
#define ERR_HANDLE 31002
#define ERR_NOMEM  31003
#define ERR_CHECK  31004

static wrapperMeterCustom g_meter = NULL;
static wrapperTraceLog g_trace = NULL;
static char g_version[64] = "aigesstyle 1.0";

/* Per-session state; the handle the loader sees is a pointer to it. */
typedef struct Session {
    char* tag;
    wrapperCallback cb;
    pDataList pending; /* sync mode: the last batch, handed out by wrapperRead */
    int handedOut;
    int writes;
    char debug[64];
} Session;

static const char* param(pParamList p, const char* key) {
    for (; p != NULL; p = p->next)
        if (p->key != NULL && strcmp(p->key, key) == 0) return p->value;
    return NULL;
}

static char* dupstr(const char* s) {
    size_t n = strlen(s) + 1;
    char* d = (char*)malloc(n);
    if (d != NULL) memcpy(d, s, n);
    return d;
}

static void freeDesc(pDescList d) {
    while (d != NULL) {
        pDescList n = d->next;
        free(d->key);
        free(d->value);
        free(d);
        d = n;
    }
}

static void freeList(pDataList d) {
    while (d != NULL) {
        pDataList n = d->next;
        free(d->key);
        free(d->data);
        freeDesc(d->desc);
        free(d);
        d = n;
    }
}

/* upper copies in into a new list: same keys, types and desc, data upper-cased, the given
 * status (or each node's own when status < 0). */
static pDataList upper(pDataList in, int status) {
    pDataList head = NULL, *tail = &head;
    for (; in != NULL; in = in->next) {
        pDataList n = (pDataList)calloc(1, sizeof(struct DataList));
        if (n == NULL) break;
        n->key = dupstr(in->key ? in->key : "");
        n->data = malloc(in->len + 1);
        n->len = in->len;
        if (n->data != NULL && in->len > 0) memcpy(n->data, in->data, in->len);
        for (unsigned int i = 0; n->data != NULL && i < n->len; i++)
            ((char*)n->data)[i] = (char)toupper(((unsigned char*)n->data)[i]);
        n->type = in->type;
        n->status = status < 0 ? in->status : (DataStatus)status;
        pDescList* dt = &n->desc;
        for (pDescList d = in->desc; d != NULL; d = d->next) {
            pDescList c = (pDescList)calloc(1, sizeof(struct ParamList));
            if (c == NULL) break;
            c->key = dupstr(d->key);
            c->value = dupstr(d->value);
            c->vlen = d->vlen;
            *dt = c;
            dt = &c->next;
        }
        *tail = n;
        tail = &n->next;
    }
    return head;
}

/* ---- lifecycle (AIGES's empty parameter lists, WrapperAPI after int) ---------------- */

int WrapperAPI wrapperSetCtrl(CtrlType type, void* func) {
    switch (type) {
    case CTMeterCustom: g_meter = (wrapperMeterCustom)func; break;
    case CTTraceLog: g_trace = (wrapperTraceLog)func; break;
    case CTMetricsLog:
    case CTCalcCustom: break; /* never handed out by the ASF loader */
    }
    return 0;
}

static int headerChecks(void);

int WrapperAPI wrapperInit(pConfig cfg) {
    if (!headerChecks()) return ERR_CHECK;
    const char* name = param(cfg, "name");
    if (name != NULL) snprintf(g_version, sizeof(g_version), "aigesstyle 1.0 %s", name);
    return 0;
}

int WrapperAPI wrapperFini() {
    g_meter = NULL;
    g_trace = NULL;
    return 0;
}

/* ---- pointer returns: WrapperAPI first (after the '*' g++ would ignore it) ---------- */

WrapperAPI const char* wrapperError(int errNum) {
    switch (errNum) {
    case ERR_FAIL: return "aigesstyle: failure requested by parameter fail";
    case ERR_HANDLE: return "aigesstyle: unknown session handle";
    case ERR_NOMEM: return "aigesstyle: out of memory";
    case ERR_CHECK: return "aigesstyle: a declaration of wrapper.h or type.h differs from AIGES's";
    }
    return "aigesstyle: unknown error";
}

WrapperAPI const char* wrapperVersion() { return g_version; }

int WrapperAPI wrapperLoadRes(pDataList perData, unsigned int resId) {
    (void)perData;
    (void)resId;
    return 0;
}

int WrapperAPI wrapperUnloadRes(unsigned int resId) {
    (void)resId;
    return 0;
}

/* ---- once ------------------------------------------------------------------------ */

int WrapperAPI wrapperExec(const char* usrTag, pParamList params, pDataList reqData, pDataList* respData,
                           unsigned int psrIds[], int psrCnt) {
    (void)psrIds;
    (void)psrCnt;
    const char* fail = param(params, "fail");
    if (fail != NULL && strcmp(fail, "1") == 0) return ERR_FAIL;
    int chars = 0;
    for (pDataList d = reqData; d != NULL; d = d->next) chars += (int)d->len;
    *respData = upper(reqData, DataOnce);
    if (reqData != NULL && *respData == NULL) return ERR_NOMEM;
    if (g_meter != NULL) g_meter(usrTag, "chars", chars);
    if (g_trace != NULL) g_trace(usrTag, "stage", "exec");
    return 0;
}

int WrapperAPI wrapperExecFree(const char* usrTag, pDataList* respData) {
    (void)usrTag;
    freeList(*respData);
    *respData = NULL;
    return 0;
}

int WrapperAPI wrapperExecAsync(const char* usrTag, pParamList params, pDataList reqData, wrapperCallback callback,
                                int timeout, unsigned int psrIds[], int psrCnt) {
    (void)timeout;
    pDataList out = NULL;
    int ret = wrapperExec(usrTag, params, reqData, &out, psrIds, psrCnt);
    callback(usrTag, out, ret);
    freeList(out);
    return 0;
}

/* ---- session --------------------------------------------------------------------- */

WrapperAPI const void* wrapperCreate(const char* usrTag, pParamList params, wrapperCallback cb, unsigned int psrIds[],
                                     int psrCnt, int* errNum) {
    (void)params;
    (void)psrIds;
    (void)psrCnt;
    Session* s = (Session*)calloc(1, sizeof(Session));
    if (s == NULL || (s->tag = dupstr(usrTag ? usrTag : "")) == NULL) {
        free(s);
        *errNum = ERR_NOMEM;
        return NULL;
    }
    s->cb = cb;
    *errNum = 0;
    return s;
}

int WrapperAPI wrapperWrite(const void* handle, pDataList reqData) {
    Session* s = (Session*)handle;
    if (s == NULL) return ERR_HANDLE;
    s->writes++;
    pDataList out = upper(reqData, -1);
    if (g_meter != NULL) g_meter(s->tag, "writes", 1);
    if (s->cb != NULL) {
        s->cb(s->tag, out, 0);
        freeList(out);
        return 0;
    }
    freeList(s->pending);
    s->pending = out;
    s->handedOut = 0;
    return 0;
}

int WrapperAPI wrapperRead(const void* handle, pDataList* respData) {
    Session* s = (Session*)handle;
    if (s == NULL) return ERR_HANDLE;
    *respData = s->handedOut ? NULL : s->pending; /* stays ours until the next write or destroy */
    s->handedOut = 1;
    return 0;
}

int WrapperAPI wrapperDestroy(const void* handle) {
    Session* s = (Session*)handle;
    if (s == NULL) return ERR_HANDLE;
    freeList(s->pending);
    free(s->tag);
    free(s);
    return 0;
}

WrapperAPI const char* wrapperDebugInfo(const void* handle) {
    Session* s = (Session*)handle;
    if (s == NULL) return "";
    snprintf(s->debug, sizeof(s->debug), "aigesstyle writes=%d", s->writes);
    return s->debug;
}

/* ---- the AIGES pointer typedefs ---------------------------------------------------- */

/* Each function stored through its wrapperXxxPtr typedef: a signature that drifts from
 * its typedef fails to compile (an error in C++, -Werror=incompatible-pointer-types in C). */
typedef struct AigesApi {
    wrapperSetCtrlPtr setCtrl;
    wrapperInitPtr init;
    wrapperFiniPtr fini;
    wrapperErrorPtr error;
    wrapperVersionPtr version;
    wrapperLoadResPtr loadRes;
    wrapperUnloadResPtr unloadRes;
    wrapperCreatePtr create;
    wrapperWritePtr write;
    wrapperReadPtr read;
    wrapperDestroyPtr destroy;
    wrapperExecPtr exec;
    wrapperExecFreePtr execFree;
    wrapperExecAsyncPtr execAsync;
    wrapperDebugInfoPtr debugInfo;
} AigesApi;

static const AigesApi g_api = {
    wrapperSetCtrl, wrapperInit,      wrapperFini,   wrapperError, wrapperVersion,
    wrapperLoadRes, wrapperUnloadRes, wrapperCreate, wrapperWrite, wrapperRead,
    wrapperDestroy, wrapperExec,      wrapperExecFree, wrapperExecAsync, wrapperDebugInfo,
};

/* headerChecks reports whether the table is complete and the constants of AIGES's headers
 * hold AIGES's values; wrapperInit fails with ERR_CHECK otherwise. */
static int headerChecks(void) {
    const AigesApi* a = &g_api;
    if (!a->setCtrl || !a->init || !a->fini || !a->error || !a->version || !a->loadRes || !a->unloadRes ||
        !a->create || !a->write || !a->read || !a->destroy || !a->exec || !a->execFree || !a->execAsync ||
        !a->debugInfo)
        return 0;
    static const wrapperCalc calc = NULL; /* declared, never handed out */
    return calc == NULL && CTMeterCustom == 0 && CTMetricsLog == 1 && CTTraceLog == 2 && CTCalcCustom == 99 &&
           DataText == 0 && DataAudio == 1 && DataImage == 2 && DataVideo == 3 && DataPer == 4 &&
           DataBegin == 0 && DataContinue == 1 && DataEnd == 2 && DataOnce == 3;
}
