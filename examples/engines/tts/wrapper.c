/*
 * tts — a speech synthesis engine on the AIGES ABI, built on libespeak-ng.
 *
 * Input: a text item (UTF-8). Output: item `audio`, 16 kHz 16-bit mono little-endian PCM
 * (descriptors encoding=raw, sample_rate=16000, channels=1, bit_depth=16, seq=N).
 * espeak-ng synthesises at its own rate (22050 Hz); a streaming linear-interpolation
 * resampler brings it to 16 kHz.
 *
 *   once:   wrapperExec / wrapperExecAsync return the whole utterance (status DataOnce).
 *   stream: every written frame's text is synthesised as it arrives. Async mode (loader
 *           --async) hands each chunk to the callback as espeak-ng produces it (status
 *           DataContinue); sync mode queues the chunks and wrapperRead returns them joined.
 *           The frame with status DataEnd ends the session with a last `audio` output of
 *           status DataEnd (possibly empty).
 *
 * Parameters (request or session):
 *   voice=NAME    espeak-ng voice (default en-us; `espeak-ng --voices` lists them)
 *   speed=WPM     words per minute, 80..450 (default 175)
 *   pitch=P       base pitch 0..100 (default 50)
 * Config (wrapperInit):
 *   data_path=DIR directory holding espeak-ng-data (default: the package's)
 *   chunk_ms=MS   synthesis chunk length, 20..1000 (default 100)
 *
 * espeak-ng keeps global state: synthesis runs under one engine-wide lock, so
 * concurrent requests are served one after another.
 *
 * Build: gcc -shared -fPIC -O2 -pthread -I../../../services/loader/include -o libtts.so wrapper.c -lespeak-ng
 */
#define _GNU_SOURCE
#include <espeak-ng/speak_lib.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wrapper.h"

#define ERR_PARAM 20101
#define ERR_INIT 20102
#define ERR_SYNTH 20103
#define ERR_NOMEM 20104
#define ERR_HANDLE 20105
#define ERR_VOICE 20106
#define ERR_NOTEXT 20107

#define OUT_RATE 16000

static pthread_mutex_t g_synth = PTHREAD_MUTEX_INITIALIZER; /* espeak-ng is not reentrant */
static int g_rate;                                          /* espeak-ng's sample rate */
static int g_inited;

/* ---- lists ------------------------------------------------------------------------ */

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

/* audio_node makes one `audio` output owning pcm (len bytes). */
static pDataList audio_node(char* pcm, unsigned int len, DataStatus st, int seq) {
    pDataList n = calloc(1, sizeof(*n));
    if (!n) {
        free(pcm);
        return NULL;
    }
    char buf[32];
    n->key = dupstr("audio");
    n->data = pcm;
    n->len = len;
    n->type = DataAudio;
    n->status = st;
    snprintf(buf, sizeof(buf), "%d", seq);
    n->desc = add_desc(n->desc, "seq", buf);
    n->desc = add_desc(n->desc, "bit_depth", "16");
    n->desc = add_desc(n->desc, "channels", "1");
    n->desc = add_desc(n->desc, "sample_rate", "16000");
    n->desc = add_desc(n->desc, "encoding", "raw");
    return n;
}

/* ---- resampling ------------------------------------------------------------------- */

/* Streaming linear interpolation from rate `in` to OUT_RATE. Times are in input samples
 * counted from the start of the utterance. */
struct resampler {
    double step;  /* input samples per output sample */
    double t;     /* time of the next output sample */
    long base;    /* index of the first sample of the current chunk */
    short last;   /* sample base-1 */
    int have_last;
};

static void rs_init(struct resampler* r, int in) {
    memset(r, 0, sizeof(*r));
    r->step = (double)in / OUT_RATE;
}

/* rs_run converts n input samples, appending to *out (grown as needed). */
static int rs_run(struct resampler* r, const short* in, int n, short** out, size_t* olen, size_t* ocap) {
    if (n <= 0) return 0;
    long end = r->base + n - 1; /* last input index available */
    while (r->t <= (double)end) {
        long i = (long)r->t;
        double f = r->t - (double)i;
        double s0, s1;
        s0 = (i < r->base) ? r->last : in[i - r->base];
        if (f > 0) {
            if (i + 1 > end) break; /* needs the next chunk */
            s1 = (i + 1 < r->base) ? r->last : in[i + 1 - r->base];
        } else {
            s1 = s0;
        }
        if (i < r->base && !r->have_last) s0 = s1;
        double v = s0 + (s1 - s0) * f;
        if (*olen == *ocap) {
            size_t nc = *ocap ? *ocap * 2 : 4096;
            short* p = realloc(*out, nc * sizeof(short));
            if (!p) return ERR_NOMEM;
            *out = p;
            *ocap = nc;
        }
        (*out)[(*olen)++] = (short)(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
        r->t += r->step;
    }
    r->last = in[n - 1];
    r->have_last = 1;
    r->base += n;
    return 0;
}

/* ---- synthesis -------------------------------------------------------------------- */

/* A sink receives the resampled chunks of one synthesis. */
struct sink {
    struct resampler rs;
    short* buf; /* resampled samples not handed on yet */
    size_t len, cap;
    int err;
    /* chunk, when set, receives each chunk as it is produced (ownership passes). */
    int (*chunk)(void* arg, char* pcm, unsigned int len);
    void* arg;
};

static int synth_cb(short* wav, int n, espeak_EVENT* ev) {
    struct sink* s = ev ? (struct sink*)ev->user_data : NULL;
    if (!s || s->err) return 1;
    if (wav && n > 0) {
        if (g_rate == OUT_RATE) {
            if (s->len + (size_t)n > s->cap) {
                size_t nc = s->cap ? s->cap : 4096;
                while (nc < s->len + (size_t)n) nc *= 2;
                short* p = realloc(s->buf, nc * sizeof(short));
                if (!p) return s->err = ERR_NOMEM, 1;
                s->buf = p;
                s->cap = nc;
            }
            memcpy(s->buf + s->len, wav, (size_t)n * sizeof(short));
            s->len += (size_t)n;
        } else if ((s->err = rs_run(&s->rs, wav, n, &s->buf, &s->len, &s->cap)) != 0) {
            return 1;
        }
    }
    if (s->chunk && s->len > 0) {
        char* pcm = (char*)s->buf;
        unsigned int bytes = (unsigned int)(s->len * sizeof(short));
        s->buf = NULL;
        s->len = s->cap = 0;
        if ((s->err = s->chunk(s->arg, pcm, bytes)) != 0) return 1;
    }
    return 0;
}

struct voice {
    char name[64];
    int speed, pitch;
};

static int parse_voice(struct voice* v, pParamList p) {
    const char* name = param(p, "voice");
    const char* speed = param(p, "speed");
    const char* pitch = param(p, "pitch");
    snprintf(v->name, sizeof(v->name), "%s", name && *name ? name : "en-us");
    v->speed = espeakRATE_NORMAL;
    v->pitch = 50;
    char* end;
    if (speed && *speed) {
        long x = strtol(speed, &end, 10);
        if (*end || x < espeakRATE_MINIMUM || x > espeakRATE_MAXIMUM) return ERR_PARAM;
        v->speed = (int)x;
    }
    if (pitch && *pitch) {
        long x = strtol(pitch, &end, 10);
        if (*end || x < 0 || x > 100) return ERR_PARAM;
        v->pitch = (int)x;
    }
    for (const char* c = v->name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
              *c == '_' || *c == '+' || *c == '/'))
            return ERR_PARAM;
    return 0;
}

/* synth synthesises text (len bytes, not NUL-terminated) with v into s. */
static int synth(const struct voice* v, const char* text, unsigned int len, struct sink* s) {
    char* t = malloc(len + 1);
    if (!t) return ERR_NOMEM;
    memcpy(t, text, len);
    t[len] = 0;
    rs_init(&s->rs, g_rate);
    pthread_mutex_lock(&g_synth);
    int rc = 0;
    if (espeak_SetVoiceByName(v->name) != EE_OK) rc = ERR_VOICE;
    if (!rc && (espeak_SetParameter(espeakRATE, v->speed, 0) != EE_OK ||
                espeak_SetParameter(espeakPITCH, v->pitch, 0) != EE_OK))
        rc = ERR_PARAM;
    if (!rc && espeak_Synth(t, len + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, s) != EE_OK) rc = ERR_SYNTH;
    if (!rc && espeak_Synchronize() != EE_OK) rc = ERR_SYNTH;
    pthread_mutex_unlock(&g_synth);
    free(t);
    if (!rc) rc = s->err;
    return rc;
}

/* text_of returns the first text item of l (or the first item at all). */
static pDataList text_of(pDataList l) {
    for (pDataList n = l; n; n = n->next)
        if (n->type == DataText) return n;
    return l;
}

/* ---- lifecycle -------------------------------------------------------------------- */

int wrapperInit(pConfig cfg) {
    const char* path = param(cfg, "data_path");
    const char* cm = param(cfg, "chunk_ms");
    int chunk = cm ? atoi(cm) : 100;
    if (chunk < 20 || chunk > 1000) return ERR_PARAM;
    pthread_mutex_lock(&g_synth);
    if (!g_inited) {
        g_rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, chunk, path && *path ? path : NULL,
                                   espeakINITIALIZE_DONT_EXIT);
        if (g_rate > 0) {
            espeak_SetSynthCallback(synth_cb);
            g_inited = 1;
        }
    }
    int ok = g_inited;
    pthread_mutex_unlock(&g_synth);
    return ok ? 0 : ERR_INIT;
}

/* wrapperFini leaves espeak-ng initialised: the library stays mapped after Fini, and
 * espeak-ng initialised again after espeak_Terminate in the same process can hang in
 * synthesis, so a later wrapperInit (a restarted or second engine instance in this process)
 * reuses it. */
int wrapperFini(void) { return 0; }

const char* wrapperError(int errNum) {
    switch (errNum) {
    case ERR_PARAM: return "tts: invalid parameter (speed 80..450, pitch 0..100, voice a name)";
    case ERR_INIT: return "tts: espeak-ng initialisation failed (is espeak-ng-data installed?)";
    case ERR_SYNTH: return "tts: espeak-ng synthesis failed";
    case ERR_NOMEM: return "tts: out of memory";
    case ERR_HANDLE: return "tts: unknown session handle";
    case ERR_VOICE: return "tts: unknown voice";
    case ERR_NOTEXT: return "tts: no text input";
    }
    return "tts: unknown error";
}

const char* wrapperVersion(void) { return "tts 1.0.0 (espeak-ng)"; }

int wrapperSetCtrl(CtrlType type, void* func) {
    (void)type;
    (void)func;
    return 0;
}

/* ---- once ------------------------------------------------------------------------- */

static int once(pParamList params, pDataList req, pDataList* out) {
    *out = NULL;
    struct voice v;
    int rc = parse_voice(&v, params);
    if (rc) return rc;
    pDataList t = text_of(req);
    if (!t || !t->data || t->len == 0) return ERR_NOTEXT;
    struct sink s;
    memset(&s, 0, sizeof(s));
    rc = synth(&v, t->data, t->len, &s);
    if (rc) {
        free(s.buf);
        return rc;
    }
    *out = audio_node((char*)s.buf, (unsigned int)(s.len * sizeof(short)), DataOnce, 0);
    return *out ? 0 : ERR_NOMEM;
}

int wrapperExec(const char* usrTag, pParamList params, pDataList reqData, pDataList* respData,
                unsigned int psrIds[], int psrCnt) {
    (void)usrTag;
    (void)psrIds;
    (void)psrCnt;
    return once(params, reqData, respData);
}

int wrapperExecFree(const char* usrTag, pDataList* respData) {
    (void)usrTag;
    if (respData) {
        free_list(*respData);
        *respData = NULL;
    }
    return 0;
}

int wrapperExecAsync(const char* usrTag, pParamList params, pDataList reqData, wrapperCallback callback,
                     int timeout, unsigned int psrIds[], int psrCnt) {
    (void)timeout;
    (void)psrIds;
    (void)psrCnt;
    pDataList out = NULL;
    int rc = once(params, reqData, &out);
    if (rc) return rc;
    callback(usrTag, out, 0);
    free_list(out);
    return 0;
}

/* ---- sessions --------------------------------------------------------------------- */

struct session {
    char* tag;
    wrapperCallback cb; /* NULL: sync mode */
    struct voice v;
    int seq;
    pthread_mutex_t mu;
    char* pending; /* sync mode: audio not read yet */
    size_t plen;
    int ended;     /* sync mode: the END output is pending */
    pDataList last; /* sync mode: returned by the last Read */
};

/* emit_chunk hands one chunk on: to the callback, or to the pending buffer. */
static int emit_chunk(void* arg, char* pcm, unsigned int len) {
    struct session* s = arg;
    if (s->cb) {
        pDataList n = audio_node(pcm, len, DataContinue, ++s->seq);
        if (!n) return ERR_NOMEM;
        s->cb(s->tag, n, 0);
        free_list(n);
        return 0;
    }
    pthread_mutex_lock(&s->mu);
    char* p = realloc(s->pending, s->plen + len);
    if (p) {
        memcpy(p + s->plen, pcm, len);
        s->pending = p;
        s->plen += len;
    }
    pthread_mutex_unlock(&s->mu);
    free(pcm);
    return p ? 0 : ERR_NOMEM;
}

const void* wrapperCreate(const char* usrTag, pParamList params, wrapperCallback cb, unsigned int psrIds[],
                          int psrCnt, int* errNum) {
    (void)psrIds;
    (void)psrCnt;
    struct session* s = calloc(1, sizeof(*s));
    if (!s) {
        *errNum = ERR_NOMEM;
        return NULL;
    }
    int rc = parse_voice(&s->v, params);
    if (rc) {
        free(s);
        *errNum = rc;
        return NULL;
    }
    s->tag = dupstr(usrTag ? usrTag : "");
    s->cb = cb;
    pthread_mutex_init(&s->mu, NULL);
    *errNum = 0;
    return s;
}

int wrapperWrite(const void* handle, pDataList reqData) {
    struct session* s = (struct session*)handle;
    if (!s) return ERR_HANDLE;
    int end = 0;
    for (pDataList n = reqData; n; n = n->next)
        if (n->status == DataEnd || n->status == DataOnce) end = 1;
    pDataList t = text_of(reqData);
    if (t && t->data && t->len > 0) {
        struct sink k;
        memset(&k, 0, sizeof(k));
        k.chunk = emit_chunk;
        k.arg = s;
        int rc = synth(&s->v, t->data, t->len, &k);
        free(k.buf);
        if (rc) return rc;
    }
    if (!end) return 0;
    if (s->cb) {
        pDataList n = audio_node(NULL, 0, DataEnd, ++s->seq);
        if (!n) return ERR_NOMEM;
        s->cb(s->tag, n, 0);
        free_list(n);
        return 0;
    }
    pthread_mutex_lock(&s->mu);
    s->ended = 1;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int wrapperRead(const void* handle, pDataList* respData) {
    struct session* s = (struct session*)handle;
    if (!s || !respData) return ERR_HANDLE;
    pthread_mutex_lock(&s->mu);
    free_list(s->last);
    s->last = NULL;
    if (s->plen > 0 || s->ended) {
        s->last = audio_node(s->pending, (unsigned int)s->plen, s->ended ? DataEnd : DataContinue, ++s->seq);
        s->pending = NULL;
        s->plen = 0;
        s->ended = 0;
    }
    *respData = s->last;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int wrapperDestroy(const void* handle) {
    struct session* s = (struct session*)handle;
    if (!s) return ERR_HANDLE;
    free(s->pending);
    free_list(s->last);
    pthread_mutex_destroy(&s->mu);
    free(s->tag);
    free(s);
    return 0;
}

const char* wrapperDebugInfo(const void* handle) {
    static __thread char buf[160];
    struct session* s = (struct session*)handle;
    if (!s) return "tts: no session";
    snprintf(buf, sizeof(buf), "tts session voice=%s speed=%d pitch=%d chunks=%d", s->v.name, s->v.speed, s->v.pitch,
             s->seq);
    return buf;
}
