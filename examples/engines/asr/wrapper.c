/*
 * asr — a streaming speech recognition engine on the AIGES ABI, built on libpocketsphinx
 * with the en-us acoustic model, dictionary and language model of the pocketsphinx-en-us
 * package.
 *
 * Input: audio items, 16 kHz 16-bit mono little-endian PCM (any frame size; 40 ms =
 * 1280 bytes is usual). Output: item `result`, a UTF-8 JSON document
 *     {"text":"turn the light on","final":true,"seq":12}
 * with descriptors encoding=utf8, format=json, seq=N.
 *
 *   stream: every written frame is decoded at once; when the best hypothesis changes, a
 *           partial result (final=false, status DataContinue) is produced; the frame with
 *           status DataEnd ends the utterance and produces the final result (final=true,
 *           status DataEnd). Sync mode: wrapperRead returns the latest result; async mode:
 *           the callback gets every result from inside wrapperWrite.
 *   once:   the whole audio is decoded and the final result returned (status DataOnce).
 *
 * Parameters (request or session):
 *   grammar=JSGF        recognise the sentences of this JSGF grammar (command recognition)
 *   keywords=LIST       spot these keyphrases (separated by ',' ';' or newlines; each may
 *                       end with its own /threshold/, e.g. "hello computer /1e-40/")
 *   threshold=X         default keyphrase threshold (default 1e-40)
 *   (neither)           the statistical language model (config lm)
 * Config (wrapperInit):
 *   model=DIR           acoustic model (default /usr/share/pocketsphinx/model/en-us/en-us)
 *   dict=FILE           pronunciation dictionary (default .../en-us/cmudict-en-us.dict)
 *   lm=FILE|none        language model (default .../en-us/en-us.lm.bin); none: grammar and
 *                       keyword sessions only (faster start, less memory)
 *   decoders=N          decoders created at init (default 1); more are created on demand
 *                       and kept for reuse (at most one per concurrent session)
 *   log=FILE            pocketsphinx log (default /dev/null)
 *
 * Build: gcc -shared -fPIC -O2 -pthread -I../../../services/loader/include $(pkg-config --cflags pocketsphinx) \
 *          -o libasr.so wrapper.c $(pkg-config --libs pocketsphinx)
 */
#define _GNU_SOURCE
#include <pocketsphinx.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wrapper.h"

#define ERR_PARAM 20201
#define ERR_INIT 20202
#define ERR_DECODE 20203
#define ERR_NOMEM 20204
#define ERR_HANDLE 20205
#define ERR_GRAMMAR 20206
#define ERR_NOLM 20207
#define ERR_KEYWORDS 20208

#define MODEL_ROOT "/usr/share/pocketsphinx/model/en-us"

/* ---- config and decoder pool ------------------------------------------------------ */

struct decoder {
    ps_decoder_t* ps;
    char* lm_search; /* name of the language-model search, NULL without lm */
    struct decoder* next;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_model[1024], g_dict[1024], g_lm[1024], g_log[1024];
static struct decoder* g_free;  /* idle decoders */
static int g_total;             /* decoders alive */
static int g_inited;

static struct decoder* decoder_new(void) {
    cmd_ln_t* cfg;
    if (g_lm[0])
        cfg = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", g_model, "-dict", g_dict, "-lm", g_lm, "-samprate", "16000",
                          "-logfn", g_log, NULL);
    else
        cfg = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", g_model, "-dict", g_dict, "-samprate", "16000", "-logfn",
                          g_log, NULL);
    if (!cfg) return NULL;
    ps_decoder_t* ps = ps_init(cfg);
    cmd_ln_free_r(cfg); /* ps_init retains it */
    if (!ps) return NULL;
    struct decoder* d = calloc(1, sizeof(*d));
    if (!d) {
        ps_free(ps);
        return NULL;
    }
    d->ps = ps;
    const char* name = ps_get_search(ps);
    if (g_lm[0] && name) d->lm_search = strdup(name);
    return d;
}

static void decoder_free(struct decoder* d) {
    if (!d) return;
    ps_free(d->ps);
    free(d->lm_search);
    free(d);
}

/* acquire takes an idle decoder or makes one. */
static struct decoder* acquire(void) {
    pthread_mutex_lock(&g_mu);
    struct decoder* d = g_free;
    if (d) {
        g_free = d->next;
        d->next = NULL;
    } else if (g_inited) {
        g_total++;
    }
    int inited = g_inited;
    pthread_mutex_unlock(&g_mu);
    if (d || !inited) return d;
    d = decoder_new(); /* slow: outside the lock */
    if (!d) {
        pthread_mutex_lock(&g_mu);
        g_total--;
        pthread_mutex_unlock(&g_mu);
    }
    return d;
}

static void release(struct decoder* d) {
    if (!d) return;
    ps_unset_search(d->ps, "grammar");
    ps_unset_search(d->ps, "keywords");
    pthread_mutex_lock(&g_mu);
    d->next = g_free;
    g_free = d;
    pthread_mutex_unlock(&g_mu);
}

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

static void free_list(pDataList l) {
    while (l) {
        pDataList n = l->next;
        free(l->key);
        free(l->data);
        for (pDescList d = l->desc; d;) {
            pDescList dn = d->next;
            free(d->key);
            free(d->value);
            free(d);
            d = dn;
        }
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

/* result_node builds the `result` output for hyp. */
static pDataList result_node(const char* hyp, int final, int seq, DataStatus st) {
    if (!hyp) hyp = "";
    while (*hyp == ' ') hyp++;
    size_t n = strlen(hyp);
    while (n > 0 && hyp[n - 1] == ' ') n--; /* keyword spotting ends hypotheses with a space */
    char* js = malloc(2 * n + 64);
    pDataList node = calloc(1, sizeof(*node));
    if (!js || !node) {
        free(js);
        free(node);
        return NULL;
    }
    char* p = js;
    p += sprintf(p, "{\"text\":\"");
    for (const char* c = hyp; c < hyp + n; c++) {
        if (*c == '"' || *c == '\\') *p++ = '\\';
        if ((unsigned char)*c < 0x20) continue;
        *p++ = *c;
    }
    p += sprintf(p, "\",\"final\":%s,\"seq\":%d}", final ? "true" : "false", seq);
    char buf[32];
    snprintf(buf, sizeof(buf), "%d", seq);
    node->key = dupstr("result");
    node->data = js;
    node->len = (unsigned int)(p - js);
    node->type = DataText;
    node->status = st;
    node->desc = add_desc(node->desc, "seq", buf);
    node->desc = add_desc(node->desc, "format", "json");
    node->desc = add_desc(node->desc, "encoding", "utf8");
    return node;
}

/* ---- searches --------------------------------------------------------------------- */

/* use_search activates the search params ask for on d. */
static int use_search(struct decoder* d, pParamList params) {
    const char* grammar = param(params, "grammar");
    const char* keywords = param(params, "keywords");
    if (grammar && *grammar) {
        if (ps_set_jsgf_string(d->ps, "grammar", grammar) != 0) return ERR_GRAMMAR;
        return ps_set_search(d->ps, "grammar") == 0 ? 0 : ERR_GRAMMAR;
    }
    if (keywords && *keywords) {
        const char* th = param(params, "threshold");
        if (!th || !*th) th = "1e-40";
        char* end;
        strtod(th, &end);
        if (*end) return ERR_PARAM;
        char path[] = "/tmp/asr-kws-XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0) return ERR_KEYWORDS;
        FILE* f = fdopen(fd, "w");
        if (!f) {
            close(fd);
            unlink(path);
            return ERR_KEYWORDS;
        }
        int count = 0;
        const char* s = keywords;
        while (*s) {
            size_t n = strcspn(s, ",;\n");
            while (n > 0 && (*s == ' ' || *s == '\t')) s++, n--;
            size_t m = n;
            while (m > 0 && (s[m - 1] == ' ' || s[m - 1] == '\t' || s[m - 1] == '\r')) m--;
            if (m > 0) {
                if (memchr(s, '/', m))
                    fprintf(f, "%.*s\n", (int)m, s);
                else
                    fprintf(f, "%.*s /%s/\n", (int)m, s, th);
                count++;
            }
            s += n;
            if (*s) s++;
        }
        fclose(f);
        int rc = count > 0 && ps_set_kws(d->ps, "keywords", path) == 0 ? 0 : ERR_KEYWORDS;
        unlink(path);
        if (rc) return rc;
        return ps_set_search(d->ps, "keywords") == 0 ? 0 : ERR_KEYWORDS;
    }
    if (!d->lm_search) return ERR_NOLM;
    return ps_set_search(d->ps, d->lm_search) == 0 ? 0 : ERR_NOLM;
}

/* ---- lifecycle -------------------------------------------------------------------- */

static void cfg_str(char* dst, size_t n, pConfig cfg, const char* key, const char* def) {
    const char* v = param(cfg, key);
    snprintf(dst, n, "%s", v && *v ? v : def);
}

int wrapperInit(pConfig cfg) {
    pthread_mutex_lock(&g_mu);
    cfg_str(g_model, sizeof(g_model), cfg, "model", MODEL_ROOT "/en-us");
    cfg_str(g_dict, sizeof(g_dict), cfg, "dict", MODEL_ROOT "/cmudict-en-us.dict");
    cfg_str(g_lm, sizeof(g_lm), cfg, "lm", MODEL_ROOT "/en-us.lm.bin");
    cfg_str(g_log, sizeof(g_log), cfg, "log", "/dev/null");
    if (strcmp(g_lm, "none") == 0) g_lm[0] = 0;
    const char* dn = param(cfg, "decoders");
    int n = dn && *dn ? atoi(dn) : 1;
    g_inited = 1;
    pthread_mutex_unlock(&g_mu);
    if (n < 0 || n > 64) return ERR_PARAM;
    for (int i = 0; i < n; i++) {
        struct decoder* d = decoder_new();
        if (!d) return ERR_INIT;
        pthread_mutex_lock(&g_mu);
        g_total++;
        d->next = g_free;
        g_free = d;
        pthread_mutex_unlock(&g_mu);
    }
    return 0;
}

int wrapperFini(void) {
    pthread_mutex_lock(&g_mu);
    struct decoder* d = g_free;
    g_free = NULL;
    g_total = 0;
    g_inited = 0;
    pthread_mutex_unlock(&g_mu);
    while (d) {
        struct decoder* n = d->next;
        decoder_free(d);
        d = n;
    }
    return 0;
}

const char* wrapperError(int errNum) {
    switch (errNum) {
    case ERR_PARAM: return "asr: invalid parameter";
    case ERR_INIT: return "asr: pocketsphinx initialisation failed (is pocketsphinx-en-us installed?)";
    case ERR_DECODE: return "asr: decoding failed";
    case ERR_NOMEM: return "asr: out of memory";
    case ERR_HANDLE: return "asr: unknown session handle";
    case ERR_GRAMMAR: return "asr: invalid JSGF grammar (or a word missing from the dictionary)";
    case ERR_NOLM: return "asr: no language model loaded (config lm=none): send a grammar or keywords";
    case ERR_KEYWORDS: return "asr: invalid keyword list";
    }
    return "asr: unknown error";
}

const char* wrapperVersion(void) { return "asr 1.0.0 (pocketsphinx)"; }

int wrapperSetCtrl(CtrlType type, void* func) {
    (void)type;
    (void)func;
    return 0;
}

/* ---- utterances ------------------------------------------------------------------- */

struct utt {
    struct decoder* d;
    unsigned char carry; /* odd byte left from the previous frame */
    int has_carry;
};

/* feed decodes the audio items of l. */
static int feed(struct utt* u, pDataList l) {
    for (; l; l = l->next) {
        if (l->type != DataAudio || !l->data || l->len == 0) continue;
        const unsigned char* p = l->data;
        size_t n = l->len;
        if (u->has_carry) {
            int16 s = (int16)(u->carry | (p[0] << 8));
            if (ps_process_raw(u->d->ps, &s, 1, FALSE, FALSE) < 0) return ERR_DECODE;
            p++, n--;
            u->has_carry = 0;
        }
        size_t samples = n / 2;
        if (samples > 0) {
            int16* buf = malloc(samples * sizeof(int16));
            if (!buf) return ERR_NOMEM;
            memcpy(buf, p, samples * sizeof(int16));
            int rc = ps_process_raw(u->d->ps, buf, samples, FALSE, FALSE);
            free(buf);
            if (rc < 0) return ERR_DECODE;
        }
        if (n % 2) {
            u->carry = p[n - 1];
            u->has_carry = 1;
        }
    }
    return 0;
}

static int begin(struct utt* u, pParamList params) {
    memset(u, 0, sizeof(*u));
    u->d = acquire();
    if (!u->d) return ERR_INIT;
    int rc = use_search(u->d, params);
    if (!rc && ps_start_utt(u->d->ps) != 0) rc = ERR_DECODE;
    if (rc) {
        release(u->d);
        u->d = NULL;
    }
    return rc;
}

static const char* hyp_of(struct utt* u) {
    int32 score;
    const char* h = ps_get_hyp(u->d->ps, &score);
    return h ? h : "";
}

/* ---- once ------------------------------------------------------------------------- */

static int once(pParamList params, pDataList req, pDataList* out) {
    *out = NULL;
    struct utt u;
    int rc = begin(&u, params);
    if (rc) return rc;
    rc = feed(&u, req);
    ps_end_utt(u.d->ps);
    if (!rc) {
        *out = result_node(hyp_of(&u), 1, 0, DataOnce);
        if (!*out) rc = ERR_NOMEM;
    }
    release(u.d);
    return rc;
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
    struct utt u;
    char* last_hyp;     /* text of the last result */
    int seq;
    int ended;
    pDataList pending;  /* sync mode: latest result not read yet */
    pDataList last;     /* sync mode: returned by the last Read */
};

/* publish hands a result on: to the callback, or as the pending result for Read (a newer
 * one replaces an unread partial; results carry the whole hypothesis). */
static int publish(struct session* s, const char* hyp, int final) {
    pDataList n = result_node(hyp, final, ++s->seq, final ? DataEnd : DataContinue);
    if (!n) return ERR_NOMEM;
    free(s->last_hyp);
    s->last_hyp = dupstr(hyp);
    if (s->cb) {
        s->cb(s->tag, n, 0);
        free_list(n);
        return 0;
    }
    free_list(s->pending);
    s->pending = n;
    return 0;
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
    int rc = begin(&s->u, params);
    if (rc) {
        free(s);
        *errNum = rc;
        return NULL;
    }
    s->tag = dupstr(usrTag ? usrTag : "");
    s->cb = cb;
    s->last_hyp = dupstr("");
    *errNum = 0;
    return s;
}

int wrapperWrite(const void* handle, pDataList reqData) {
    struct session* s = (struct session*)handle;
    if (!s || !s->u.d) return ERR_HANDLE;
    if (s->ended) return 0;
    int end = 0;
    for (pDataList n = reqData; n; n = n->next)
        if (n->status == DataEnd || n->status == DataOnce) end = 1;
    int rc = feed(&s->u, reqData);
    if (rc) return rc;
    if (end) {
        ps_end_utt(s->u.d->ps);
        s->ended = 1;
        return publish(s, hyp_of(&s->u), 1);
    }
    const char* h = hyp_of(&s->u);
    if (*h && strcmp(h, s->last_hyp) != 0) return publish(s, h, 0);
    return 0;
}

int wrapperRead(const void* handle, pDataList* respData) {
    struct session* s = (struct session*)handle;
    if (!s || !respData) return ERR_HANDLE;
    free_list(s->last);
    s->last = s->pending;
    s->pending = NULL;
    *respData = s->last;
    return 0;
}

int wrapperDestroy(const void* handle) {
    struct session* s = (struct session*)handle;
    if (!s) return ERR_HANDLE;
    if (s->u.d) {
        if (!s->ended) ps_end_utt(s->u.d->ps);
        release(s->u.d);
    }
    free_list(s->pending);
    free_list(s->last);
    free(s->last_hyp);
    free(s->tag);
    free(s);
    return 0;
}

const char* wrapperDebugInfo(const void* handle) {
    static __thread char buf[256];
    struct session* s = (struct session*)handle;
    if (!s) return "asr: no session";
    snprintf(buf, sizeof(buf), "asr session results=%d ended=%d hyp=%.160s", s->seq, s->ended,
             s->last_hyp ? s->last_hyp : "");
    return buf;
}
