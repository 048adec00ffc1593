/* libcurl's multi socket interface on the daemon's libevent base: curl says
 * which sockets and timeout it cares about, libevent tells curl when they
 * fire. Finished transfers are collected first and their callbacks run
 * after curl returns, so a callback may submit new transfers. Easy handles
 * are pooled; the multi's connection cache keeps connections alive. */
#include "transport.h"
#include "clock.h"
#include "h1.h"
#include "h2.h"
#include "smtpc.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#define POOL_MAX 1024
#define BODY_MAX (1u << 20)

typedef struct xfer xfer;

struct transport {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    size_t inflight;
    CURL *pool[2][POOL_MAX]; /* idle handles, by kind (HTTP, SMTP) */
    size_t npool[2];
    xfer *all; /* transfers in flight (doubly linked) */
    struct sock *socks;
    int in_action;
    h1 *h1;        /* the native client: http://, and https:// without HTTP/2 */
    h2 *h2;        /* the native HTTP/2 client: https:// with http2 = true or auto */
    int proxy;     /* a proxy is set in the environment: libcurl takes every transfer */
    int proxy_tls; /* https_proxy (or a proxy for all): libcurl takes https */
    unsigned long long n_native, n_native_tls, n_curl; /* transfers taken, by client */
    char *ca_file;
    long maxage_s;
    smtpc *smtpc;  /* the native SMTP client (smtp_client = native) */
    int smtp_curl; /* smtp_client = curl, or an SMTP proxy set: libcurl takes SMTP */
    unsigned long long n_native_smtp; /* idle connections are not reused after this */
};

struct xfer {
    transport *t;
    CURL *easy;
    oc_request req;
    struct curl_slist *headers, *rcpt;
    struct curl_slist hdr[OC_MAX_HEADERS + 1]; /* the header list's nodes, in place */
    oc_buf resp;
    size_t upload_off;
    char retry_after[128];
    char content_type[128];
    char reply[256]; /* SMTP: the server's last reply line (code, enhanced code, text) */
    int too_large;
    int head_done; /* the final answer's head (status line and headers) is complete */
    int in_head;   /* header lines of a response block are arriving */
    long long start_us;
    CURLcode rc;
    xfer *done_next; /* the list of finished transfers awaiting callbacks */
    transport_done_fn done;
    void *arg;
    xfer *prev, *next;
};

typedef struct sock {
    struct event *ev;
    int what; /* the CURL_POLL_* the event is armed for */
    transport *t;
    struct sock *prev, *next; /* every socket curl watches, freed at the end */
} sock;

static void check_done(transport *t);

static void action(transport *t, curl_socket_t fd, int ev_bitmask)
{
    int running;
    t->in_action++;
    curl_multi_socket_action(t->multi, fd, ev_bitmask, &running);
    t->in_action--;
    check_done(t);
}

static void sock_cb(evutil_socket_t fd, short what, void *arg)
{
    transport *t = arg;
    int mask = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    action(t, fd, mask);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    action(arg, CURL_SOCKET_TIMEOUT, 0);
}

static void sock_free(transport *t, sock *sk)
{
    if (sk->prev)
        sk->prev->next = sk->next;
    else
        t->socks = sk->next;
    if (sk->next)
        sk->next->prev = sk->prev;
    if (sk->ev)
        event_free(sk->ev);
    free(sk);
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    transport *t = userp;
    sock *sk = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            sock_free(t, sk);
            curl_multi_assign(t->multi, s, NULL);
        }
        return 0;
    }
    short kind =
        EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!sk) {
        sk = calloc(1, sizeof(*sk));
        if (!sk)
            return -1;
        sk->t = t;
        sk->next = t->socks;
        if (t->socks)
            t->socks->prev = sk;
        t->socks = sk;
        curl_multi_assign(t->multi, s, sk);
    } else {
        event_del(sk->ev);
        event_free(sk->ev);
    }
    sk->ev = event_new(t->base, s, kind, sock_cb, t);
    event_add(sk->ev, NULL);
    return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    transport *t = userp;
    if (timeout_ms < 0) {
        evtimer_del(t->timer);
        return 0;
    }
    /* 0 means "now": a zero timer runs it on the next loop turn, outside
     * curl's own call stack */
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(t->timer, &tv);
    return 0;
}

/* A request the HTTP/2 client gives back (its origin did not choose h2 by
 * ALPN): nothing of it was written; it goes the way an HTTP/1.1 request
 * goes. A request that cannot even be set up then fails as never sent. */
static void h2_fallback(void *ctx, oc_request *req, const transport_req_opts *opts,
                        transport_done_fn done, void *arg)
{
    if (transport_submit(ctx, req, opts, done, arg) == 0)
        return;
    oc_response r = {0};
    r.net_error = OC_NET_OTHER;
    r.net_detail = "could not set up the request";
    r.body = "";
    r.now_ms = omni_now_ms();
    if (done)
        done(arg, &r, 0);
}

transport *transport_new(struct event_base *base, const transport_opts *opts)
{
    static int global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        global_done = 1;
    }
    transport *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->base = base;
    t->ca_file = opts && opts->ca_file ? strdup(opts->ca_file) : NULL;
    int idle_ms = opts && opts->keepalive_idle_ms > 0 ? opts->keepalive_idle_ms : 30000;
    t->maxage_s = idle_ms < 1000 ? 1 : idle_ms / 1000;
    t->multi = curl_multi_init();
    t->timer = evtimer_new(base, timer_cb, t);
    t->h1 = h1_new(base, opts ? opts->max_total_connections : 0,
                   opts ? opts->max_host_connections : 0, idle_ms, t->ca_file);
    t->h2 = h2_new(base, opts ? opts->max_total_connections : 0,
                   opts ? opts->max_host_connections : 0, idle_ms, t->ca_file, h2_fallback, t);
    /* libcurl honours http_proxy / all_proxy (and no_proxy); the native
     * client does not speak to proxies, so with one set it stands aside */
    const char *px = getenv("http_proxy");
    if (!px || !*px)
        px = getenv("all_proxy");
    if (!px || !*px)
        px = getenv("ALL_PROXY");
    t->proxy = px && *px;
    px = getenv("https_proxy");
    if (!px || !*px)
        px = getenv("HTTPS_PROXY");
    t->proxy_tls = t->proxy || (px && *px);
    /* SMTP: the native client unless smtp_client = curl or a proxy libcurl
     * would use for smtp(s):// is set */
    t->smtp_curl = opts && opts->smtp_curl;
    const char *spx[] = {"smtp_proxy", "smtps_proxy", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(spx) / sizeof(spx[0]); i++) {
        const char *v = getenv(spx[i]);
        if (v && *v)
            t->smtp_curl = 1;
    }
    if (!t->smtp_curl)
        t->smtpc = smtpc_new(base, opts ? opts->max_total_connections : 0,
                             opts ? opts->max_host_connections : 0, idle_ms, t->ca_file);
    if (!t->multi || !t->timer || !t->h1 || !t->h2 || (!t->smtp_curl && !t->smtpc)) {
        transport_free(t);
        return NULL;
    }
    curl_multi_setopt(t->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(t->multi, CURLMOPT_SOCKETDATA, t);
    curl_multi_setopt(t->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(t->multi, CURLMOPT_TIMERDATA, t);
    curl_multi_setopt(t->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    if (opts && opts->max_total_connections > 0) {
        curl_multi_setopt(t->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                          (long)opts->max_total_connections);
        curl_multi_setopt(t->multi, CURLMOPT_MAXCONNECTS, (long)opts->max_total_connections);
    }
    if (opts && opts->max_host_connections > 0)
        curl_multi_setopt(t->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                          (long)opts->max_host_connections);
    return t;
}

static size_t on_body(char *p, size_t size, size_t n, void *userp)
{
    xfer *x = userp;
    size_t len = size * n;
    if (x->resp.len + len > BODY_MAX) {
        x->too_large = 1;
        return 0; /* aborts the transfer */
    }
    if (oc_buf_append(&x->resp, p, len) < 0)
        return 0;
    return len;
}

static void header_value(const char *p, size_t len, size_t name_len, char *out, size_t out_len)
{
    const char *v = p + name_len;
    const char *e = p + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
        e--;
    size_t n = (size_t)(e - v);
    if (n >= out_len)
        n = out_len - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *userp)
{
    xfer *x = userp;
    size_t len = size * n;
    if (x->req.kind == OC_REQ_SMTP) {
        /* libcurl hands SMTP's reply lines to the header callback: keep the
         * one that ended the transaction, for the connector to read the
         * enhanced status code (RFC 3463) and the server's words: the last
         * line, or the first line of the first refusal (4xx/5xx), which the
         * QUIT's "221 Bye" after it must not replace */
        if (len >= 3 && isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
            isdigit((unsigned char)p[2]) && x->reply[0] != '4' && x->reply[0] != '5') {
            size_t k = 0;
            for (size_t i = 0; i < len && k + 1 < sizeof(x->reply); i++)
                if (p[i] != '\r' && p[i] != '\n')
                    x->reply[k++] = (unsigned char)p[i] < 0x20 ? ' ' : p[i];
            x->reply[k] = '\0';
        }
        return len;
    }
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* a new response block (after 100 Continue, say): forget the old */
        x->retry_after[0] = x->content_type[0] = '\0';
        x->in_head = 1;
        x->head_done = 0;
    } else if ((len == 2 && p[0] == '\r') || (len == 1 && p[0] == '\n')) {
        /* the empty line ends a head; a 1xx head is followed by another */
        long status = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        if (x->in_head && status >= 200)
            x->head_done = 1;
        x->in_head = 0;
    } else if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        header_value(p, len, 12, x->retry_after, sizeof(x->retry_after));
    } else if (len > 13 && strncasecmp(p, "Content-Type:", 13) == 0) {
        header_value(p, len, 13, x->content_type, sizeof(x->content_type));
    }
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *userp)
{
    xfer *x = userp;
    size_t left = x->req.body.len - x->upload_off;
    size_t want = size * n;
    if (want > left)
        want = left;
    if (want)
        memcpy(buf, x->req.body.data + x->upload_off, want);
    x->upload_off += want;
    return want;
}

/* libcurl rewinds the body to send a request again by itself: after a
 * reused connection died without an answer (a POST the server may have
 * processed) or a refused HTTP/2 stream. Once a byte of the body was handed
 * over, the two cannot be told apart here, so the rewind is refused and the
 * transfer fails: the daemon decides (RFC 9110 9.2.2). Before that byte,
 * the server cannot have the request: a resend is safe. */
static int on_seek(void *userp, curl_off_t offset, int origin)
{
    xfer *x = userp;
    if (origin == SEEK_SET && offset == 0 && x->upload_off == 0)
        return CURL_SEEKFUNC_OK;
    return CURL_SEEKFUNC_FAIL;
}

static void xfer_free(xfer *x)
{
    curl_slist_free_all(x->rcpt); /* x->headers lives in x->hdr */
    oc_request_free(&x->req);
    oc_buf_free(&x->resp);
    free(x);
}

/* Idle handles keep their options: every option a transfer of that kind
 * uses is set again on each use, which is much cheaper than a reset. */
static void release_easy(transport *t, CURL *e, int kind)
{
    if (t->npool[kind] < POOL_MAX)
        t->pool[kind][t->npool[kind]++] = e;
    else
        curl_easy_cleanup(e);
}

static CURL *new_easy(const transport *t)
{
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    if (t->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* per handle libcurl allocates a download and an upload buffer (16 and
     * 64 KiB by default) and keeps them; with hundreds of transfers in
     * flight that was most of the daemon's memory on https. Provider
     * answers are small; bodies go out from memory. */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4096L);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,smtp,smtps");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, t->maxage_s);
    return e;
}

static void unlink_xfer(transport *t, xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        t->all = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

int transport_submit(transport *t, oc_request *req, const transport_req_opts *opts,
                     transport_done_fn done, void *arg)
{
    /* the native clients: https:// with HTTP/2 asked for through h2.c
     * (an origin that does not choose h2 by ALPN falls to h1.c), plain
     * http://, and https:// through h1.c; a proxy for the scheme, or
     * native = off, leaves them to libcurl */
    int https = req->url && strncasecmp(req->url, "https:", 6) == 0;
    if (opts && opts->native && req->kind == OC_REQ_HTTP && https && opts->http2 && !t->proxy_tls) {
        int rc = h2_submit(t->h2, req, opts, done, arg);
        if (rc != 1)
            return rc;
    }
    if (opts && opts->native && req->kind == OC_REQ_HTTP && (https ? !t->proxy_tls : !t->proxy)) {
        int rc = h1_submit(t->h1, req, opts, done, arg);
        if (rc == 0)
            ++*(https ? &t->n_native_tls : &t->n_native);
        if (rc != 1)
            return rc;
    }
    if (req->kind == OC_REQ_SMTP && t->smtpc) {
        int rc = smtpc_submit(t->smtpc, req, opts, done, arg);
        if (rc == 0)
            t->n_native_smtp++;
        if (rc != 1)
            return rc;
    }
    xfer *x = calloc(1, sizeof(*x));
    if (!x) {
        oc_request_free(req);
        return -1;
    }
    x->t = t;
    x->req = *req;
    memset(req, 0, sizeof(*req)); /* ours now */
    x->done = done;
    x->arg = arg;
    int kind = x->req.kind == OC_REQ_SMTP ? 1 : 0;
    CURL *e = t->npool[kind] ? t->pool[kind][--t->npool[kind]] : new_easy(t);
    if (!e || !x->req.url) {
        if (e)
            release_easy(t, e, kind);
        xfer_free(x);
        return -1;
    }
    x->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, x->req.url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_READDATA, x);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(opts ? opts->timeout_ms : 0));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(opts ? opts->connect_timeout_ms : 0));
    curl_easy_setopt(e, CURLOPT_USERPWD, x->req.userpwd); /* NULL clears it */
    /* the header list's nodes are in the transfer and point at the
     * request's own strings (libcurl only reads the list): no copy and no
     * allocation per header, as curl_slist_append makes two */
    static char no_expect[] = "Expect:";
    int nh = 0;
    for (int i = 0; i < x->req.n_headers && i < OC_MAX_HEADERS; i++)
        x->hdr[nh++].data = x->req.headers[i];
    if (x->req.kind != OC_REQ_SMTP)
        x->hdr[nh++].data = no_expect;
    for (int i = 0; i + 1 < nh; i++)
        x->hdr[i].next = &x->hdr[i + 1];
    x->headers = nh ? x->hdr : NULL;
    if (x->req.kind == OC_REQ_SMTP) {
        curl_easy_setopt(e, CURLOPT_MAIL_FROM, x->req.mail_from ? x->req.mail_from : "<>");
        x->rcpt = curl_slist_append(NULL, x->req.mail_rcpt ? x->req.mail_rcpt : "");
        curl_easy_setopt(e, CURLOPT_MAIL_RCPT, x->rcpt);
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->req.body.len);
        curl_easy_setopt(e, CURLOPT_USE_SSL,
                         x->req.smtp_tls == 1 ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_NONE);
    } else {
        if (x->req.method && strcmp(x->req.method, "GET") == 0) {
            curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        } else {
            /* the body through the read callback, not POSTFIELDS: libcurl
             * rewinds POSTFIELDS silently to send a request again, and a
             * rewind must go through on_seek */
            curl_easy_setopt(e, CURLOPT_POST, 1L);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->req.body.len);
        }
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
                         x->req.method && strcmp(x->req.method, "POST") &&
                                 strcmp(x->req.method, "GET")
                             ? x->req.method
                             : NULL);
        /* libcurl's HTTP/2 only when asked for (http2 = true): under
         * http2 = auto a request libcurl carries goes as HTTP/1.1 */
        int h2 = opts && opts->http2 == 1;
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                         h2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, h2 ? 1L : 0L);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers); /* NULL clears it */
    x->start_us = omni_mono_us();
    t->n_curl++;
    if (curl_multi_add_handle(t->multi, e) != CURLM_OK) {
        release_easy(t, e, kind);
        xfer_free(x);
        return -1;
    }
    x->next = t->all;
    if (t->all)
        t->all->prev = x;
    t->all = x;
    t->inflight++;
    return 0;
}

static int net_error(CURLcode rc, long status)
{
    switch (rc) {
    case CURLE_OK:
        return OC_NET_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return OC_NET_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return OC_NET_CONNECT;
    case CURLE_LOGIN_DENIED:
    case CURLE_WEIRD_SERVER_REPLY:
        return status ? OC_NET_PROTOCOL : OC_NET_RESET;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return status >= 400 ? OC_NET_PROTOCOL : OC_NET_RESET;
    default:
        return status >= 400 ? OC_NET_PROTOCOL : OC_NET_OTHER;
    }
}

/* Collect every finished transfer, then call back: the callbacks run with
 * curl's stack unwound and may add transfers. */
static void check_done(transport *t)
{
    if (t->in_action)
        return;
    xfer *finished = NULL, **tail = &finished;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(t->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        xfer *x;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = m->data.result;
        curl_multi_remove_handle(t->multi, m->easy_handle);
        unlink_xfer(t, x);
        x->rc = rc;
        *tail = x;
        tail = &x->done_next;
    }
    while (finished) {
        xfer *x = finished;
        finished = x->done_next;
        CURLcode rc = x->rc;
        long status = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        /* an HTTP/2 stream reset after the whole answer arrived (a server
         * that answers before reading the request body ends the stream with
         * RST_STREAM NO_ERROR; libcurl 7.88 reports that as an error) is an
         * answer: retrying it would send the message twice */
        curl_off_t clen = -1;
        if (rc == CURLE_HTTP2_STREAM && status >= 200 && status < 300 && !x->too_large &&
            curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen) == CURLE_OK &&
            clen >= 0 && (size_t)clen == x->resp.len)
            rc = CURLE_OK;
        oc_response r = {0};
        r.net_error = x->too_large ? OC_NET_OTHER : net_error(rc, status);
        r.net_detail = x->too_large ? "response too large" : curl_easy_strerror(rc);
        r.status = status;
        if (oc_buf_reserve(&x->resp, 0) == 0)
            x->resp.data[x->resp.len] = '\0';
        r.body = x->resp.data ? x->resp.data : "";
        r.body_len = x->resp.len;
        r.retry_after = x->retry_after[0] ? x->retry_after : NULL;
        r.content_type = x->content_type[0] ? x->content_type : NULL;
        r.now_ms = omni_now_ms();
        if (x->req.kind == OC_REQ_SMTP) {
            /* the body an SMTP connector reads is the server's last reply */
            r.body = x->reply;
            r.body_len = strlen(x->reply);
            /* a message is delivered only once all of it (and the final
             * dot libcurl adds) went; a refusal is an answer */
            r.request_sent = x->req.body.len > 0 && x->upload_off >= x->req.body.len;
            r.answered = rc == CURLE_OK || status >= 400;
        } else {
            long reqsize = 0;
            curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &reqsize);
            r.request_sent = x->upload_off > 0 || reqsize > 0;
            r.answered = rc == CURLE_OK || (x->head_done && status >= 200);
        }
        long long lat = omni_mono_us() - x->start_us;
        t->inflight--;
        release_easy(t, x->easy, x->req.kind == OC_REQ_SMTP);
        x->easy = NULL;
        if (x->done)
            x->done(x->arg, &r, lat);
        xfer_free(x);
    }
}

void transport_counts(const transport *t, unsigned long long *native,
                      unsigned long long *native_tls, unsigned long long *curl)
{
    *native = t->n_native;
    *native_tls = t->n_native_tls;
    *curl = t->n_curl;
}

unsigned long long transport_native_h2(const transport *t)
{
    return h2_requests(t->h2);
}

unsigned long long transport_native_smtp(const transport *t)
{
    return t->n_native_smtp;
}

size_t transport_inflight(const transport *t)
{
    return t->inflight + h1_inflight(t->h1) + h2_inflight(t->h2) +
           (t->smtpc ? smtpc_inflight(t->smtpc) : 0);
}

void transport_free(transport *t)
{
    if (!t)
        return;
    h2_free(t->h2);
    h1_free(t->h1);
    smtpc_free(t->smtpc);
    while (t->all) {
        xfer *x = t->all;
        t->all = x->next;
        curl_multi_remove_handle(t->multi, x->easy);
        curl_easy_cleanup(x->easy);
        xfer_free(x);
    }
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < t->npool[k]; i++)
            curl_easy_cleanup(t->pool[k][i]);
    if (t->multi)
        curl_multi_cleanup(t->multi);
    while (t->socks)
        sock_free(t, t->socks);
    if (t->timer)
        event_free(t->timer);
    free(t->ca_file);
    free(t);
}
