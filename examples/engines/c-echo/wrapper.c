/*
 * c-echo — an example engine on the AIGES ABI for the ASF loader.
 *
 * Outputs are the inputs (key, type, descriptors and bytes), optionally prefixed by the
 * `prefix` parameter, with status DataOnce for once requests and the input's status in
 * sessions. It shows every part of the ABI: sync and async once requests, sync (Read) and
 * async (callback from a session thread) sessions, personalisation resources, metering
 * and trace callbacks, and error texts.
 *
 * Parameters (request or session):
 *   prefix=TEXT   prepend TEXT to every output
 *   fail=1        the call (Exec, ExecAsync, Write) returns 20001
 *   fail=create   wrapperCreate fails with 20001
 *   fail=async    the async result callback reports 20001
 *   crash=segv    the call dereferences NULL (segmentation fault)
 *   hang=MS       the call sleeps MS milliseconds first (hang=forever: never returns)
 *   drop=1        async once: never call the callback (the loader times out)
 * Config (wrapperInit): init_fail=1 makes wrapperInit return 20002; name=TEXT is
 * reported by wrapperVersion.
 * Personalisation: psrIds name resources loaded with wrapperLoadRes; the first loaded one
 * is attached to every output as descriptor `res`.
 *
 * Build: make   (or: gcc -shared -fPIC -O2 -pthread -I../../../services/loader/include -o libwrapper.so wrapper.c)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wrapper.h"

#define ERR_FAIL 20001
#define ERR_INIT 20002
#define ERR_HANDLE 20003
#define ERR_NOMEM 20004
#define ERR_RES 20005
#define ERR_PARAM 20006

#define MAX_RES 16

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static wrapperMeterCustom g_meter;
static wrapperTraceLog g_trace;
static int g_inflight; /* async once threads still running */
static char g_version[128] = "c-echo 1.0.0";
static struct {
    int used;
    unsigned int id;
    char* data;
    unsigned int len;
} g_res[MAX_RES];

/* ---- helpers ---------------------------------------------------------------------- */

static const char* param(pParamList p, const char* key) {
    for (; p; p = p->next)
        if (p->key && strcmp(p->key, key) == 0) return p->value ? p->value : "";
    return NULL;
}

static char* dupstr(const char* s) {
    if (!s) return NULL;
    size_t n = strlen(s);
    char* d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static void free_desc(pDescList d) {
    while (d) {
        pDescList n = d->next;
        free(d->key);
        free(d->value);
        free(d);
        d = n;
    }
}

static void free_list(pDataList l) {
    while (l) {
        pDataList n = l->next;
        free(l->key);
        free(l->data);
        free_desc(l->desc);
        free(l);
        l = n;
    }
}

static pDescList add_desc(pDescList d, const char* key, const char* value) {
    pDescList n = calloc(1, sizeof(*n));
    if (!n) return d;
    n->key = dupstr(key);
    n->value = dupstr(value);
    n->vlen = value ? (unsigned int)strlen(value) : 0;
    n->next = d;
    return n;
}

/* Request options parsed from parameters. */
struct opts {
    char* prefix;
    char* fail;
    char* crash;
    long hang_ms; /* -1: forever */
    int drop;
    char* res; /* resource attached as desc `res` */
};

static void free_opts(struct opts* o) {
    free(o->prefix);
    free(o->fail);
    free(o->crash);
    free(o->res);
    memset(o, 0, sizeof(*o));
}

static void parse_opts(struct opts* o, pParamList p, unsigned int psrIds[], int psrCnt) {
    memset(o, 0, sizeof(*o));
    o->prefix = dupstr(param(p, "prefix"));
    o->fail = dupstr(param(p, "fail"));
    o->crash = dupstr(param(p, "crash"));
    const char* h = param(p, "hang");
    if (h) o->hang_ms = strcmp(h, "forever") == 0 ? -1 : atol(h);
    const char* d = param(p, "drop");
    o->drop = d && strcmp(d, "1") == 0;
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < psrCnt && !o->res; i++)
        for (int r = 0; r < MAX_RES; r++)
            if (g_res[r].used && g_res[r].id == psrIds[i]) {
                o->res = malloc(g_res[r].len + 1);
                if (o->res) {
                    memcpy(o->res, g_res[r].data, g_res[r].len);
                    o->res[g_res[r].len] = 0;
                }
                break;
            }
    pthread_mutex_unlock(&g_mu);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* misbehave crashes or hangs as the options ask. */
static void misbehave(const struct opts* o) {
    if (o->crash && strcmp(o->crash, "segv") == 0) {
        volatile int* p = NULL;
        *p = 1;
    }
    if (o->crash && strcmp(o->crash, "abort") == 0) abort();
    if (o->hang_ms < 0)
        for (;;) sleep_ms(1000);
    if (o->hang_ms > 0) sleep_ms(o->hang_ms);
}

/* echo copies in into a new list: each node keeps key, type and descriptors; data gets
 * the prefix; status is status, or the node's own when status < 0. */
static int echo(pDataList in, const struct opts* o, int status, pDataList* out, unsigned long* bytes) {
    pDataList head = NULL, *tail = &head;
    size_t plen = o->prefix ? strlen(o->prefix) : 0;
    for (; in; in = in->next) {
        pDataList n = calloc(1, sizeof(*n));
        if (!n) goto nomem;
        *tail = n;
        tail = &n->next;
        n->key = dupstr(in->key ? in->key : "");
        n->type = in->type;
        n->status = status < 0 ? in->status : (DataStatus)status;
        n->len = (unsigned int)(plen + in->len);
        n->data = malloc(n->len + 1);
        if (!n->key || !n->data) goto nomem;
        if (plen) memcpy(n->data, o->prefix, plen);
        if (in->len) memcpy((char*)n->data + plen, in->data, in->len);
        ((char*)n->data)[n->len] = 0;
        for (pDescList d = in->desc; d; d = d->next) n->desc = add_desc(n->desc, d->key, d->value);
        if (o->res) n->desc = add_desc(n->desc, "res", o->res);
        *bytes += in->len;
    }
    *out = head;
    return 0;
nomem:
    free_list(head);
    *out = NULL;
    return ERR_NOMEM;
}

static void meter(const void* tag, const char* key, int count) {
    wrapperMeterCustom m;
    pthread_mutex_lock(&g_mu);
    m = g_meter;
    pthread_mutex_unlock(&g_mu);
    if (m) m(tag, key, count);
}

static void trace(const char* tag, const char* key, const char* value) {
    wrapperTraceLog t;
    pthread_mutex_lock(&g_mu);
    t = g_trace;
    pthread_mutex_unlock(&g_mu);
    if (t) t(tag, key, value);
}

/* ---- lifecycle -------------------------------------------------------------------- */

int wrapperInit(pConfig cfg) {
    const char* f = param(cfg, "init_fail");
    if (f && strcmp(f, "1") == 0) return ERR_INIT;
    const char* name = param(cfg, "name");
    pthread_mutex_lock(&g_mu);
    snprintf(g_version, sizeof(g_version), "c-echo 1.0.0%s%s", name ? " " : "", name ? name : "");
    pthread_mutex_unlock(&g_mu);
    return 0;
}

int wrapperFini(void) {
    pthread_mutex_lock(&g_mu);
    while (g_inflight > 0) pthread_cond_wait(&g_cond, &g_mu);
    for (int r = 0; r < MAX_RES; r++)
        if (g_res[r].used) {
            free(g_res[r].data);
            g_res[r].used = 0;
        }
    g_meter = NULL;
    g_trace = NULL;
    pthread_mutex_unlock(&g_mu);
    return 0;
}

const char* wrapperError(int errNum) {
    switch (errNum) {
    case ERR_FAIL: return "c-echo: failure requested by parameter fail";
    case ERR_INIT: return "c-echo: init failure requested by config init_fail";
    case ERR_HANDLE: return "c-echo: unknown session handle";
    case ERR_NOMEM: return "c-echo: out of memory";
    case ERR_RES: return "c-echo: personalisation resource not loaded";
    case ERR_PARAM: return "c-echo: invalid parameter";
    }
    return "c-echo: unknown error";
}

const char* wrapperVersion(void) { return g_version; }

#ifndef CECHO_OMIT_OPTIONAL
int wrapperSetCtrl(CtrlType type, void* func) {
    pthread_mutex_lock(&g_mu);
    if (type == CTMeterCustom) g_meter = (wrapperMeterCustom)func;
    if (type == CTTraceLog) g_trace = (wrapperTraceLog)func;
    pthread_mutex_unlock(&g_mu);
    return 0;
}

int wrapperLoadRes(pDataList perData, unsigned int resId) {
    if (!perData) return ERR_PARAM;
    int rc = ERR_NOMEM;
    pthread_mutex_lock(&g_mu);
    int slot = -1;
    for (int r = 0; r < MAX_RES; r++) {
        if (g_res[r].used && g_res[r].id == resId) { slot = r; break; }
        if (!g_res[r].used && slot < 0) slot = r;
    }
    if (slot >= 0) {
        char* d = malloc(perData->len + 1);
        if (d) {
            if (perData->len) memcpy(d, perData->data, perData->len);
            if (g_res[slot].used) free(g_res[slot].data);
            g_res[slot].used = 1;
            g_res[slot].id = resId;
            g_res[slot].data = d;
            g_res[slot].len = perData->len;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

int wrapperUnloadRes(unsigned int resId) {
    int rc = ERR_RES;
    pthread_mutex_lock(&g_mu);
    for (int r = 0; r < MAX_RES; r++)
        if (g_res[r].used && g_res[r].id == resId) {
            free(g_res[r].data);
            g_res[r].used = 0;
            rc = 0;
        }
    pthread_mutex_unlock(&g_mu);
    return rc;
}
#endif

/* ---- once ------------------------------------------------------------------------- */

int wrapperExec(const char* usrTag, pParamList params, pDataList reqData, pDataList* respData,
                unsigned int psrIds[], int psrCnt) {
    struct opts o;
    parse_opts(&o, params, psrIds, psrCnt);
    misbehave(&o);
    *respData = NULL;
    if (o.fail && strcmp(o.fail, "1") == 0) {
        trace(usrTag, "fail", "requested by parameter fail");
        free_opts(&o);
        return ERR_FAIL;
    }
    unsigned long bytes = 0;
    int rc = echo(reqData, &o, DataOnce, respData, &bytes);
    free_opts(&o);
    if (rc == 0) {
        meter(usrTag, "echo_bytes", (int)bytes);
        trace(usrTag, "mode", "once-sync");
    }
    return rc;
}

int wrapperExecFree(const char* usrTag, pDataList* respData) {
    (void)usrTag;
    if (respData) {
        free_list(*respData);
        *respData = NULL;
    }
    return 0;
}

#ifndef CECHO_OMIT_OPTIONAL
struct async_once {
    char* tag;
    pDataList out;
    int ret;
    wrapperCallback cb;
};

static void* async_once_run(void* arg) {
    struct async_once* a = arg;
    a->cb(a->tag, a->out, a->ret);
    free_list(a->out);
    free(a->tag);
    free(a);
    pthread_mutex_lock(&g_mu);
    g_inflight--;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

int wrapperExecAsync(const char* usrTag, pParamList params, pDataList reqData, wrapperCallback callback,
                     int timeout, unsigned int psrIds[], int psrCnt) {
    (void)timeout;
    struct opts o;
    parse_opts(&o, params, psrIds, psrCnt);
    misbehave(&o);
    if (o.fail && strcmp(o.fail, "1") == 0) {
        free_opts(&o);
        return ERR_FAIL;
    }
    if (o.drop) {
        free_opts(&o);
        return 0;
    }
    struct async_once* a = calloc(1, sizeof(*a));
    if (!a) {
        free_opts(&o);
        return ERR_NOMEM;
    }
    a->cb = callback;
    a->tag = dupstr(usrTag ? usrTag : "");
    unsigned long bytes = 0;
    if (o.fail && strcmp(o.fail, "async") == 0)
        a->ret = ERR_FAIL;
    else
        a->ret = echo(reqData, &o, DataOnce, &a->out, &bytes);
    free_opts(&o);
    meter(usrTag, "echo_bytes", (int)bytes);
    trace(usrTag, "mode", "once-async");
    pthread_mutex_lock(&g_mu);
    g_inflight++;
    pthread_mutex_unlock(&g_mu);
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int err = pthread_create(&th, &attr, async_once_run, a);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        free_list(a->out);
        free(a->tag);
        free(a);
        pthread_mutex_lock(&g_mu);
        g_inflight--;
        pthread_cond_broadcast(&g_cond);
        pthread_mutex_unlock(&g_mu);
        return ERR_NOMEM;
    }
    return 0;
}
#endif

/* ---- sessions --------------------------------------------------------------------- */

struct batch {
    pDataList out;
    int ret;
    struct batch* next;
};

struct session {
    char* tag;
    struct opts o;
    wrapperCallback cb; /* NULL: sync mode */
    int writes;

    /* sync mode */
    pDataList pending; /* written, not yet read */
    pDataList last;    /* returned by the last Read; freed at the next Read or Destroy */

    /* async mode: a thread delivers queued batches through cb */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct batch *head, *tail;
    int stop;
    pthread_t th;
};

static void* session_run(void* arg) {
    struct session* s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stop) pthread_cond_wait(&s->cond, &s->mu);
        if (!s->head) break;
        struct batch* b = s->head;
        s->head = b->next;
        if (!s->head) s->tail = NULL;
        pthread_mutex_unlock(&s->mu);
        /* From the engine's own thread: the loader puts it on the session's span once the
         * frame's engine call has returned. */
        trace(s->tag, "deliver", b->ret ? "error" : "ok");
        s->cb(s->tag, b->out, b->ret);
        free_list(b->out);
        free(b);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

const void* wrapperCreate(const char* usrTag, pParamList params, wrapperCallback cb, unsigned int psrIds[],
                          int psrCnt, int* errNum) {
    struct session* s = calloc(1, sizeof(*s));
    if (!s) {
        *errNum = ERR_NOMEM;
        return NULL;
    }
    parse_opts(&s->o, params, psrIds, psrCnt);
    if (s->o.fail && strcmp(s->o.fail, "create") == 0) {
        free_opts(&s->o);
        free(s);
        *errNum = ERR_FAIL;
        return NULL;
    }
    s->tag = dupstr(usrTag ? usrTag : "");
    s->cb = cb;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (cb && pthread_create(&s->th, NULL, session_run, s) != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cond);
        free_opts(&s->o);
        free(s->tag);
        free(s);
        *errNum = ERR_NOMEM;
        return NULL;
    }
    trace(usrTag, "session", cb ? "async" : "sync");
    *errNum = 0;
    return s;
}

static __attribute__((unused)) void append(pDataList* dst, pDataList l) {
    while (*dst) dst = &(*dst)->next;
    *dst = l;
}

#ifndef CECHO_OMIT_WRITE
int wrapperWrite(const void* handle, pDataList reqData) {
    struct session* s = (struct session*)handle;
    if (!s) return ERR_HANDLE;
    misbehave(&s->o);
    /* A trace event on the loader's span of this frame (value: the write's number). */
    char n[16];
    snprintf(n, sizeof(n), "%d", s->writes + 1);
    trace(s->tag, "write", n);
    if (s->o.fail && strcmp(s->o.fail, "1") == 0) return ERR_FAIL;
    s->writes++;
    pDataList out = NULL;
    unsigned long bytes = 0;
    int rc = echo(reqData, &s->o, -1, &out, &bytes);
    if (rc != 0) return rc;
    meter(s->tag, "echo_bytes", (int)bytes);
    if (!s->cb) {
        pthread_mutex_lock(&s->mu);
        append(&s->pending, out);
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    struct batch* b = calloc(1, sizeof(*b));
    if (!b) {
        free_list(out);
        return ERR_NOMEM;
    }
    b->out = out;
    if (s->o.fail && strcmp(s->o.fail, "async") == 0) {
        free_list(b->out);
        b->out = NULL;
        b->ret = ERR_FAIL;
    }
    pthread_mutex_lock(&s->mu);
    if (s->tail)
        s->tail->next = b;
    else
        s->head = b;
    s->tail = b;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

#endif

int wrapperRead(const void* handle, pDataList* respData) {
    struct session* s = (struct session*)handle;
    if (!s || !respData) return ERR_HANDLE;
    pthread_mutex_lock(&s->mu);
    free_list(s->last);
    s->last = s->pending;
    s->pending = NULL;
    *respData = s->last;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int wrapperDestroy(const void* handle) {
    struct session* s = (struct session*)handle;
    if (!s) return ERR_HANDLE;
    if (s->cb) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);
    }
    free_list(s->pending);
    free_list(s->last);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free_opts(&s->o);
    free(s->tag);
    free(s);
    return 0;
}

#ifndef CECHO_OMIT_OPTIONAL
const char* wrapperDebugInfo(const void* handle) {
    static __thread char buf[256];
    struct session* s = (struct session*)handle;
    if (!s) return "c-echo: no session";
    snprintf(buf, sizeof(buf), "c-echo session %s writes=%d mode=%s", s->tag, s->writes, s->cb ? "async" : "sync");
    return buf;
}
#endif
