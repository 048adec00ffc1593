/* The native SMTP client (see smtpc.h). Per origin: a FIFO of messages
 * waiting for a connection and up to max_host_connections connections. A
 * connection: TCP connect (or TLS at once for smtps://), the 220 greeting,
 * EHLO (HELO when EHLO is refused), STARTTLS and EHLO again when the
 * connector requires TLS (refused when the server does not offer it), AUTH
 * when credentials are given and the server offers AUTH, then message
 * transactions, one after the other, without QUIT between them.
 *
 * A transaction with PIPELINING: MAIL FROM, RCPT TO and DATA in one write;
 * after the 354 the body (dot-stuffed, CRLF.CRLF) and, in the same write,
 * the next message's MAIL/RCPT/DATA (RFC 2920 3.1: the transfer of message
 * content may be the first "command" of a group). Without PIPELINING: one
 * command at a time. A refused MAIL/RCPT/DATA ends the transaction (an
 * answer) and RSET resets it; the connection goes on. A 421 or a close
 * ends the connection.
 *
 * The guarantees: a message counts as sent (request_sent) only once its
 * whole body and the final dot left (TLS: whole records); a connection
 * ending after that without the dot's reply leaves the message ambiguous
 * (answered 0, never written again here). Before that nothing can have
 * been delivered: the transaction is written again on another connection
 * (once more at most after its commands went) or fails as a safe retry.
 * The per-message timeout counts from submit. Completions run from a
 * zero-delay event, never inside smtpc_submit. Timeouts are checked every
 * 50 ms. */
#include "smtpc.h"
#include "clock.h"
#include "log.h"
#include "netio.h"
#include "smtpproto.h"
#include "tlsclient.h"

#include <errno.h>
#include <event2/dns.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define SWEEP_MS 50
#define QUIT_WAIT_US 2000000LL
#define KEEP_MAX (64 * 1024)
#define EXP_MAX 16
#define TLS_READ_MAX (1024 * 1024)

typedef struct sreq sreq;
typedef struct sconn sconn;
typedef struct origin origin;

struct sreq {
    sreq *next;
    oc_request req;
    transport_done_fn done;
    void *arg;
    long long start_us, deadline_us; /* deadline 0: none */
    int connect_timeout_ms;
    int tries;         /* connections its commands were written on */
    int dot_queued;    /* its body and dot are in the connection's output */
    long long dot_end; /* where its final dot ends in that output stream */
    int refused;       /* the code of its first refusal (0: none) */
    int utf8;          /* a non-ASCII address or header: SMTPUTF8 needed (RFC 6531) */
    /* the outcome, for the completion */
    int net_error;
    const char *detail;
    int sent, answered;
    long status;
    char reply[256]; /* the final reply's last line, or the first refusal's first */
};

enum { E_MAIL, E_RCPT, E_DATA, E_DOT, E_RSET, E_QUIT };
typedef struct expect {
    int what;
    sreq *r;
} expect;

enum { S_CONNECTING, S_TLS, S_GREETING, S_EHLO, S_HELO, S_STARTTLS, S_AUTH, S_READY, S_QUIT };
enum { M_NONE, M_CRAM, M_PLAIN, M_LOGIN };

struct sconn {
    sconn *prev, *next;
    origin *o;
    netio io;          /* dialing (netio_dial), then the socket, plain or TLS, and its buffers */
    long long wqueued; /* bytes put in io.wbuf since the start */
    sconn *flush_next;
    int flushing;
    int state;
    int failed_now; /* the connect failed at once: the sweep closes it */
    int tls_up;
    unsigned caps;
    unsigned long long size_max;
    int mech, auth_step;
    long long deadline_us; /* set-up (connect_timeout), or the QUIT's wait */
    long long idle_since_us;
    expect q[EXP_MAX];
    int qh, qn;
    sreq *tx[2]; /* its transactions, oldest first */
    int ntx;
};

struct origin {
    origin *next;
    smtpc *s;
    char *url, *userpwd;
    int starttls; /* smtp_tls == 1: STARTTLS required */
    smtp_url u;
    sconn *conns;
    int nconns, nsetup;
    sreq *pend, **pend_tail;
    int npend;
    SSL_SESSION *session;
    int said_no_utf8; /* logged that its server does not offer SMTPUTF8 */
};

struct smtpc {
    struct event_base *base;
    struct evdns_base *dns;
    origin *origins;
    int max_total, max_host, total;
    long long idle_us;
    size_t inflight;
    struct event *sweep, *later_ev, *flush_ev;
    sreq *later, **later_tail;
    sconn *flush;
    char *ca_file;
    SSL_CTX *tls;
    int tls_failed;
    char hostname[256]; /* the EHLO name when the URL gives none (libcurl's choice) */
};

/* ---- completions */

static void req_free(sreq *r)
{
    oc_request_free(&r->req);
    free(r);
}

static void set_reply(sreq *r, const char *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < sizeof(r->reply); i++)
        r->reply[k++] = (unsigned char)p[i] < 0x20 || p[i] == 0x7f ? ' ' : p[i];
    r->reply[k] = '\0';
}

static void finish(smtpc *s, sreq *r, int net_error, const char *detail, int sent, int answered,
                   long status)
{
    r->net_error = net_error;
    r->detail = detail;
    r->sent = sent;
    r->answered = answered;
    r->status = status;
    r->next = NULL;
    *s->later_tail = r;
    s->later_tail = &r->next;
    event_active(s->later_ev, EV_TIMEOUT, 0);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    smtpc *s = arg;
    sreq *list = s->later;
    s->later = NULL;
    s->later_tail = &s->later;
    while (list) {
        sreq *r = list;
        list = r->next;
        oc_response resp = {0};
        resp.net_error = r->net_error;
        resp.net_detail = r->detail ? r->detail : "";
        resp.request_sent = r->sent;
        resp.answered = r->answered;
        resp.status = r->status;
        resp.body = r->reply;
        resp.body_len = strlen(r->reply);
        resp.now_ms = omni_now_ms();
        s->inflight--;
        long long lat = omni_mono_us() - r->start_us;
        if (r->done)
            r->done(r->arg, &resp, lat);
        req_free(r);
    }
}

/* ---- connections */

static void origin_pump(smtpc *s, origin *o);
static int conn_send(sconn *c);
static void tls_handshake(smtpc *s, sconn *c);
static void conn_read_ev(evutil_socket_t fd, short what, void *arg);

static void conn_write(sconn *c, const char *p, size_t n)
{
    smtpc *s = c->o->s;
    if (oc_buf_append(&c->io.wbuf, p, n) < 0)
        return; /* out of memory: the connection stalls and times out */
    c->wqueued += (long long)n;
    if (!c->flushing) {
        c->flushing = 1;
        c->flush_next = s->flush;
        s->flush = c;
        event_active(s->flush_ev, EV_TIMEOUT, 0);
    }
}

static void conn_puts(sconn *c, const char *str)
{
    conn_write(c, str, strlen(str));
}

static void exp_push(sconn *c, int what, sreq *r)
{
    if (c->qn >= EXP_MAX)
        return; /* cannot happen: at most two transactions and a RSET */
    c->q[(c->qh + c->qn) % EXP_MAX] = (expect){what, r};
    c->qn++;
}

static void tx_remove(sconn *c, sreq *r)
{
    for (int i = 0; i < c->ntx; i++)
        if (c->tx[i] == r) {
            if (i == 0 && c->ntx == 2)
                c->tx[0] = c->tx[1];
            c->ntx--;
            break;
        }
    if (c->ntx == 0)
        c->idle_since_us = omni_mono_us();
}

static void conn_free(sconn *c)
{
    if (c->io.wbuf.data && c->state <= S_AUTH)
        OPENSSL_cleanse(c->io.wbuf.data, c->io.wbuf.len); /* AUTH may be in it */
    netio_close(&c->io, c->tls_up);
    free(c);
}

static void push_front(origin *o, sreq *r)
{
    r->next = o->pend;
    o->pend = r;
    if (o->pend_tail == &o->pend)
        o->pend_tail = &r->next;
    o->npend++;
}

/* End c. Its transactions: a message whose dot left is ambiguous; one
 * refused is answered; one past its deadline times out; the rest are
 * written again elsewhere (once more at most) or fail as safe retries.
 * setup: c failed before it could take messages: when no other connection
 * of the origin is set up, what waits fails with net_error (status /
 * reply: the refusal, as AUTH's). */
static void conn_close_ex(smtpc *s, sconn *c, int net_error, const char *detail, int setup,
                          long status, const char *reply)
{
    origin *o = c->o;
    if (c->prev)
        c->prev->next = c->next;
    else
        o->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    o->nconns--;
    s->total--;
    if (c->state < S_READY)
        o->nsetup--;
    if (c->flushing)
        for (sconn **pp = &s->flush; *pp; pp = &(*pp)->flush_next)
            if (*pp == c) {
                *pp = c->flush_next;
                break;
            }
    long long now = omni_mono_us();
    sreq *again[2];
    int nagain = 0;
    for (int i = 0; i < c->ntx; i++) {
        sreq *r = c->tx[i];
        int ne = net_error == OC_NET_OK ? OC_NET_RESET : net_error;
        if (r->dot_queued && c->io.wsent >= r->dot_end)
            finish(s, r, ne, detail && *detail ? detail : "connection closed", 1, 0, 0);
        else if (r->refused)
            finish(s, r, OC_NET_PROTOCOL, "refused", 0, 1, r->refused);
        else if (r->deadline_us && r->deadline_us <= now)
            finish(s, r, OC_NET_TIMEOUT, "operation timed out", 0, 0, 0);
        else if (r->tries >= 2)
            finish(s, r, ne, detail && *detail ? detail : "connection closed", 0, 0, 0);
        else
            again[nagain++] = r;
    }
    c->ntx = 0;
    conn_free(c);
    while (nagain > 0) {
        sreq *r = again[--nagain];
        r->dot_queued = 0;
        r->dot_end = 0;
        r->reply[0] = '\0';
        push_front(o, r);
    }
    int usable = 0;
    for (sconn *k = o->conns; k; k = k->next)
        usable |= k->state >= S_READY;
    if (setup && !usable) {
        /* the origin cannot be used (no connection of it got through its
         * set-up; those still trying would most likely fail the same way):
         * fail what waits rather than dial again for each */
        while (o->pend) {
            sreq *r = o->pend;
            o->pend = r->next;
            if (reply)
                set_reply(r, reply, strlen(reply));
            finish(s, r, net_error, detail, 0, status >= 400, status);
        }
        o->pend_tail = &o->pend;
        o->npend = 0;
    }
    origin_pump(s, o);
}

static void conn_close(smtpc *s, sconn *c, int net_error, const char *detail)
{
    conn_close_ex(s, c, net_error, detail, c->state < S_READY, 0, NULL);
}

/* ---- writing commands */

static void put_addr(sconn *c, const char *cmd, const char *addr)
{
    conn_puts(c, cmd);
    if (!addr || !*addr) {
        conn_puts(c, "<>");
    } else if (addr[0] == '<') {
        conn_puts(c, addr);
    } else {
        conn_puts(c, "<");
        conn_puts(c, addr);
        conn_puts(c, ">");
    }
}

static void write_mail(sconn *c, sreq *r)
{
    put_addr(c, "MAIL FROM:", r->req.mail_from);
    if (c->caps & SMTP_CAP_SIZE) {
        char n[40];
        snprintf(n, sizeof(n), " SIZE=%zu", r->req.body.len);
        conn_puts(c, n);
    }
    if (r->utf8) /* the server offers it (origin_pump) */
        conn_puts(c, " SMTPUTF8");
    conn_puts(c, "\r\n");
    exp_push(c, E_MAIL, r);
}

static void write_rcpt(sconn *c, sreq *r)
{
    put_addr(c, "RCPT TO:", r->req.mail_rcpt);
    conn_puts(c, "\r\n");
    exp_push(c, E_RCPT, r);
}

static void write_data(sconn *c, sreq *r)
{
    conn_puts(c, "DATA\r\n");
    exp_push(c, E_DATA, r);
}

static void txn_start(sconn *c, sreq *r)
{
    r->tries++;
    r->refused = 0;
    c->tx[c->ntx++] = r;
    write_mail(c, r);
    if (c->caps & SMTP_CAP_PIPELINING) {
        write_rcpt(c, r);
        write_data(c, r);
    }
}

static void write_rset(sconn *c)
{
    conn_puts(c, "RSET\r\n");
    exp_push(c, E_RSET, NULL);
}

/* ---- set-up: EHLO, STARTTLS, AUTH */

static void b64_put(sconn *c, const unsigned char *p, size_t n)
{
    size_t el = 4 * ((n + 2) / 3) + 1;
    unsigned char *enc = malloc(el);
    if (!enc)
        return;
    EVP_EncodeBlock(enc, p, (int)n);
    conn_puts(c, (const char *)enc);
    OPENSSL_cleanse(enc, el);
    free(enc);
    conn_puts(c, "\r\n");
}

static void write_ehlo(sconn *c, const char *cmd)
{
    conn_puts(c, cmd);
    conn_puts(c, c->o->u.ehlo[0] ? c->o->u.ehlo : c->o->s->hostname);
    conn_puts(c, "\r\n");
}

static void become_ready(smtpc *s, sconn *c)
{
    c->state = S_READY;
    c->o->nsetup--;
    c->idle_since_us = omni_mono_us();
    origin_pump(s, c->o);
}

/* 0, or -1 when c was closed */
static int auth_or_ready(smtpc *s, sconn *c)
{
    origin *o = c->o;
    if (!o->userpwd || !(c->caps & SMTP_CAP_AUTH)) {
        become_ready(s, c); /* as libcurl: no AUTH offered, none tried */
        return 0;
    }
    /* libcurl's order among these: CRAM-MD5, PLAIN, LOGIN; no SASL-IR */
    c->mech = c->caps & SMTP_AUTH_CRAM_MD5 ? M_CRAM
              : c->caps & SMTP_AUTH_PLAIN  ? M_PLAIN
              : c->caps & SMTP_AUTH_LOGIN  ? M_LOGIN
                                           : M_NONE;
    if (c->mech == M_NONE) {
        conn_close_ex(s, c, OC_NET_PROTOCOL, "no known authentication mechanism offered", 1, 0,
                      NULL);
        return -1;
    }
    conn_puts(c, c->mech == M_CRAM    ? "AUTH CRAM-MD5\r\n"
                 : c->mech == M_PLAIN ? "AUTH PLAIN\r\n"
                                      : "AUTH LOGIN\r\n");
    c->auth_step = 0;
    c->state = S_AUTH;
    return 0;
}

/* the answer to a 334: 0, or -1 when there is none to give */
static int auth_answer(sconn *c, const smtp_reply *rp)
{
    const char *up = c->o->userpwd;
    const char *colon = strchr(up, ':');
    size_t ul = colon ? (size_t)(colon - up) : strlen(up);
    const char *pw = colon ? colon + 1 : "";
    size_t pl = strlen(pw);
    int step = c->auth_step++;
    if (c->mech == M_PLAIN && step == 0) {
        size_t n = ul + pl + 2;
        unsigned char *m = malloc(n);
        if (!m)
            return -1;
        m[0] = '\0';
        memcpy(m + 1, up, ul);
        m[1 + ul] = '\0';
        memcpy(m + 2 + ul, pw, pl);
        b64_put(c, m, n);
        OPENSSL_cleanse(m, n);
        free(m);
        return 0;
    }
    if (c->mech == M_LOGIN && step <= 1) {
        if (step == 0)
            b64_put(c, (const unsigned char *)up, ul);
        else
            b64_put(c, (const unsigned char *)pw, pl);
        return 0;
    }
    if (c->mech == M_CRAM && step == 0) {
        /* the challenge after "334 ", base64 */
        const char *ch = rp->last + 4;
        size_t cl = rp->last_len > 4 ? rp->last_len - 4 : 0;
        if (cl == 0 || cl > 1024 || cl % 4)
            return -1;
        unsigned char dec[800];
        int dl = EVP_DecodeBlock(dec, (const unsigned char *)ch, (int)cl);
        if (dl < 0)
            return -1;
        while (dl > 0 && cl > 0 && ch[cl - 1] == '=') { /* padding decodes to zeros */
            dl--;
            cl--;
        }
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int ml = 0;
        if (!HMAC(EVP_md5(), pw, (int)pl, dec, (size_t)dl, mac, &ml))
            return -1;
        size_t n = ul + 1 + 2 * ml;
        char *m = malloc(n + 1); /* + the NUL the last snprintf writes */
        if (!m)
            return -1;
        memcpy(m, up, ul);
        m[ul] = ' ';
        for (unsigned i = 0; i < ml; i++)
            snprintf(m + ul + 1 + 2 * i, 3, "%02x", mac[i]);
        b64_put(c, (const unsigned char *)m, n);
        OPENSSL_cleanse(m, n + 1);
        free(m);
        return 0;
    }
    return -1;
}

static SSL_CTX *tls_ctx(smtpc *s)
{
    if (s->tls || s->tls_failed)
        return s->tls;
    s->tls = tlsc_ctx_new(s->ca_file, NULL, 0, 1);
    s->tls_failed = s->tls == NULL;
    return s->tls;
}

static void tls_start(smtpc *s, sconn *c)
{
    const char *why = netio_tls_start(&c->io, tls_ctx(s), c->o->u.host, &c->o->session);
    if (why) {
        conn_close(s, c, OC_NET_CONNECT, why);
        return;
    }
    c->state = S_TLS;
    tls_handshake(s, c);
}

/* A certificate refused (or any handshake failure) ends the connection
 * before a command of a message, and before AUTH, went over it: what
 * waits is retried by the daemon, and fails at once when the origin has no
 * other connection (conn_close_ex). */
static void tls_handshake(smtpc *s, sconn *c)
{
    int rc = netio_handshake(&c->io);
    if (rc == 0)
        return;
    if (rc < 0) {
        conn_close(s, c, OC_NET_CONNECT,
                   tlsc_failed(c->io.ssl, c->o->u.tls ? "smtps" : "smtp STARTTLS", c->o->u.host,
                               c->o->u.port));
        return;
    }
    c->tls_up = 1;
    if (c->o->u.tls) {
        c->state = S_GREETING; /* smtps: the greeting comes over TLS (OpenSSL may hold it) */
        conn_read_ev(c->io.fd, EV_READ, c);
    } else {
        c->state = S_EHLO; /* after STARTTLS: EHLO again (RFC 3207 4.2) */
        c->caps = 0;
        write_ehlo(c, "EHLO ");
    }
}

/* ---- replies */

static void reply_line(char *out, size_t outl, const char *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < outl; i++)
        out[k++] = (unsigned char)p[i] < 0x20 || p[i] == 0x7f ? ' ' : p[i];
    out[k] = '\0';
}

static void refuse(sreq *r, const smtp_reply *rp)
{
    if (!r->refused) {
        r->refused = rp->code;
        set_reply(r, rp->first, rp->first_len);
    }
}

/* One reply in a transaction. 0, or -1 when c was closed. */
static int on_txn_reply(smtpc *s, sconn *c, const smtp_reply *rp)
{
    origin *o = c->o;
    if (c->qn == 0) {
        if (rp->code == 421) {
            conn_close(s, c, OC_NET_RESET, "421 service not available");
        } else {
            conn_close(s, c, OC_NET_PROTOCOL, "a reply no command asked for");
        }
        return -1;
    }
    expect e = c->q[c->qh];
    c->qh = (c->qh + 1) % EXP_MAX;
    c->qn--;
    sreq *r = e.r;
    int ok = rp->code >= 200 && rp->code < 300;
    int pipelined = (c->caps & SMTP_CAP_PIPELINING) != 0;
    switch (e.what) {
    case E_MAIL:
    case E_RCPT:
        if (!ok) {
            refuse(r, rp);
            if (!pipelined) {
                tx_remove(c, r);
                finish(s, r, OC_NET_PROTOCOL, "refused", 0, 1, r->refused);
                write_rset(c);
            }
        } else if (!pipelined) {
            if (e.what == E_MAIL)
                write_rcpt(c, r);
            else
                write_data(c, r);
        }
        break;
    case E_DATA:
        if (rp->code == 354 && !r->refused) {
            size_t before = c->io.wbuf.len;
            if (smtp_dot_stuff(&c->io.wbuf, r->req.body.data ? r->req.body.data : "",
                               r->req.body.len) < 0) {
                conn_close(s, c, OC_NET_OTHER, "out of memory");
                return -1;
            }
            c->wqueued += (long long)(c->io.wbuf.len - before);
            r->dot_queued = 1;
            r->dot_end = c->wqueued;
            exp_push(c, E_DOT, r);
            conn_write(c, "", 0); /* schedules the flush */
        } else {
            if (rp->code == 354) {
                /* a server that takes DATA after every recipient was
                 * refused (RFC 2920 3.1): an empty message ends it */
                conn_puts(c, ".\r\n");
                exp_push(c, E_DOT, NULL);
            } else {
                refuse(r, rp);
                write_rset(c);
            }
            tx_remove(c, r);
            finish(s, r, OC_NET_PROTOCOL, "refused", 0, 1, r->refused);
        }
        break;
    case E_DOT:
        if (r) {
            tx_remove(c, r);
            if (ok) {
                set_reply(r, rp->last, rp->last_len);
                finish(s, r, OC_NET_OK, "", 1, 1, rp->code);
            } else {
                refuse(r, rp);
                finish(s, r, OC_NET_PROTOCOL, "refused", 1, 1, rp->code);
            }
        }
        break;
    default: /* E_RSET */
        break;
    }
    if (rp->code == 421) {
        conn_close(s, c, OC_NET_RESET, "421 service not available");
        return -1;
    }
    if (o->pend)
        origin_pump(s, o);
    return 0;
}

/* One reply; raw/rawlen: its bytes. 0, or -1 when c was closed. */
static int on_reply(smtpc *s, sconn *c, const smtp_reply *rp, const char *raw, size_t rawlen,
                    size_t after)
{
    char line[256];
    switch (c->state) {
    case S_GREETING:
        if (rp->code != 220) {
            reply_line(line, sizeof(line), rp->first, rp->first_len);
            conn_close_ex(s, c, OC_NET_PROTOCOL, "the server refused the connection", 1, 0, line);
            return -1;
        }
        write_ehlo(c, "EHLO ");
        c->state = S_EHLO;
        return 0;
    case S_EHLO:
    case S_HELO:
        if (rp->code < 200 || rp->code >= 300) {
            if (c->state == S_EHLO && rp->code != 421) {
                write_ehlo(c, "HELO "); /* as libcurl: an old server */
                c->state = S_HELO;
                return 0;
            }
            conn_close(s, c, OC_NET_PROTOCOL, "EHLO refused");
            return -1;
        }
        c->caps = c->state == S_EHLO ? smtp_ehlo_caps(raw, rawlen, &c->size_max) : 0;
        if (c->o->starttls && !c->tls_up) {
            if (!(c->caps & SMTP_CAP_STARTTLS)) {
                conn_close(s, c, OC_NET_OTHER, "STARTTLS required but not offered by the server");
                return -1;
            }
            conn_puts(c, "STARTTLS\r\n");
            c->state = S_STARTTLS;
            return 0;
        }
        return auth_or_ready(s, c);
    case S_STARTTLS:
        if (rp->code != 220) {
            conn_close(s, c, OC_NET_OTHER, "STARTTLS refused");
            return -1;
        }
        if (after) {
            /* bytes after the 220 came before TLS: not to be trusted (a
             * command injection, CVE-2011-0411's kind) */
            conn_close(s, c, OC_NET_PROTOCOL, "bytes after the STARTTLS reply");
            return -1;
        }
        c->io.rlen = 0; /* the 220, taken */
        tls_start(s, c);
        return -1; /* stop parsing: the socket now speaks TLS (c may be gone) */
    case S_AUTH:
        if (rp->code == 334) {
            if (auth_answer(c, rp) < 0) {
                conn_puts(c, "*\r\n"); /* cancels the exchange (RFC 4954) */
            }
            return 0;
        }
        if (rp->code == 235) {
            become_ready(s, c);
            return 0;
        }
        reply_line(line, sizeof(line), rp->first, rp->first_len);
        conn_close_ex(s, c, OC_NET_PROTOCOL, "authentication refused", 1, rp->code, line);
        return -1;
    case S_READY:
        return on_txn_reply(s, c, rp);
    case S_QUIT:
        conn_close(s, c, OC_NET_OK, "");
        return -1;
    default:
        conn_close(s, c, OC_NET_PROTOCOL, "a reply before the greeting");
        return -1;
    }
}

static void conn_parse(smtpc *s, sconn *c, int eof)
{
    size_t off = 0;
    while (off < c->io.rlen) {
        smtp_reply rp;
        size_t used = 0;
        int rc = smtp_reply_parse(c->io.rbuf + off, c->io.rlen - off, &used, &rp);
        if (rc == SMTP_R_MORE)
            break;
        if (rc == SMTP_R_BAD) {
            conn_close(s, c, OC_NET_PROTOCOL, "malformed SMTP reply");
            return;
        }
        const char *raw = c->io.rbuf + off;
        off += used;
        if (on_reply(s, c, &rp, raw, used, c->io.rlen - off) < 0)
            return; /* c closed, or handed to TLS with nothing left */
    }
    if (off) {
        memmove(c->io.rbuf, c->io.rbuf + off, c->io.rlen - off);
        c->io.rlen -= off;
    }
    if (c->io.rlen == 0 && c->io.rcap > KEEP_MAX) {
        free(c->io.rbuf);
        c->io.rbuf = NULL;
        c->io.rcap = 0;
    }
    if (eof) {
        int quiet = c->state == S_QUIT || (c->state == S_READY && c->ntx == 0 && c->qn == 0);
        conn_close(s, c, quiet ? OC_NET_OK : OC_NET_RESET, "connection closed");
    }
}

/* Read and parse once. Replies are lines: a TLS close without
 * close_notify cuts no reply short unseen, so it ends the stream as any
 * close does. */
static void conn_read_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sconn *c = arg;
    smtpc *s = c->o->s;
    if (c->io.ssl && c->io.handshaking) {
        tls_handshake(s, c);
        return;
    }
    switch (netio_read(&c->io, c->io.ssl ? TLS_READ_MAX : SMTP_REPLY_MAX * 2)) {
    case NETIO_AGAIN:
        return;
    case NETIO_FULL:
        conn_close(s, c, OC_NET_PROTOCOL, "reply too long");
        return;
    case NETIO_NOMEM:
        conn_close(s, c, OC_NET_OTHER, "out of memory");
        return;
    case NETIO_RESET:
    case NETIO_BROKEN:
        conn_close(s, c, OC_NET_RESET, "connection reset");
        return;
    case NETIO_EOF:
    case NETIO_CUT:
        conn_parse(s, c, 1);
        return;
    default:
        conn_parse(s, c, 0);
    }
}

/* Send what is buffered: 0, or -1 when the connection is broken. AUTH's
 * credentials do not stay in the buffer once sent. */
static int conn_send(sconn *c)
{
    return netio_send(&c->io, c->state == S_AUTH);
}

static void conn_write_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sconn *c = arg;
    if (c->io.ssl && c->io.handshaking)
        tls_handshake(c->o->s, c);
    else if (conn_send(c) < 0)
        conn_close(c->o->s, c, OC_NET_RESET, "connection reset");
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    smtpc *s = arg;
    sconn *c;
    while ((c = s->flush)) {
        s->flush = c->flush_next;
        c->flushing = 0;
        if (c->io.fd >= 0 && conn_send(c) < 0)
            conn_close(s, c, OC_NET_RESET, "connection reset");
    }
}

/* netio_dial's end: connected (why NULL), or not */
static void conn_dialed(void *arg, int net_error, const char *why)
{
    sconn *c = arg;
    smtpc *s = c->o->s;
    if (net_error != OC_NET_OK) {
        conn_close(s, c, net_error, why);
        return;
    }
    if (c->o->u.tls) {
        tls_start(s, c);
        return;
    }
    c->state = S_GREETING;
}

static sconn *conn_open(smtpc *s, origin *o, int connect_timeout_ms)
{
    sconn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->io.fd = -1;
    c->o = o;
    c->state = S_CONNECTING;
    c->deadline_us =
        omni_mono_us() + (long long)(connect_timeout_ms > 0 ? connect_timeout_ms : 300000) * 1000;
    c->next = o->conns;
    if (o->conns)
        o->conns->prev = c;
    o->conns = c;
    o->nconns++;
    o->nsetup++;
    s->total++;
    /* failed at once: the sweep closes it (never inside the connect call) */
    if (netio_dial(&c->io, s->base, s->dns, o->u.host, o->u.port, conn_read_ev, conn_write_ev,
                   conn_dialed, c) < 0)
        c->failed_now = 1;
    return c;
}

/* A message only SMTPUTF8 could carry, to a server that does not offer
 * it: RFC 6531 3.2 forbids sending it, so it fails for good, with nothing
 * of it written; the answer names what is not ASCII, as a server's refusal
 * would (554: the sender or a header, 553: the recipient). The origin's log
 * says it once. */
static int utf8_class(const char *p)
{
    return p ? smtp_utf8_class(p, strlen(p)) : SMTP_ASCII;
}

static void no_smtputf8(smtpc *s, origin *o, sreq *r)
{
    if (!o->said_no_utf8) {
        o->said_no_utf8 = 1;
        log_warn("smtp %s:%d: the server does not offer SMTPUTF8: messages with a non-ASCII "
                 "address or header fail without being sent (RFC 6531)",
                 o->u.host, o->u.port);
    }
    const char *why;
    long code;
    if (utf8_class(r->req.mail_from) != SMTP_ASCII) {
        code = 554; /* every message of this sender: not the recipient's fault */
        why = "554 5.6.7 omnicast: the sender address is not ASCII and the server does not offer "
              "SMTPUTF8 (RFC 6531); not sent";
    } else if (utf8_class(r->req.mail_rcpt) != SMTP_ASCII) {
        code = 553;
        why = "553 5.6.7 omnicast: the recipient address is not ASCII and the server does not "
              "offer SMTPUTF8 (RFC 6531); not sent";
    } else {
        code = 554;
        why = "554 5.6.9 omnicast: a header is not ASCII and the server does not offer SMTPUTF8 "
              "(RFC 6531); not sent";
    }
    set_reply(r, why, strlen(why));
    finish(s, r, OC_NET_PROTOCOL, "refused", 0, 1, code);
}

/* What SMTPUTF8 says of a message: 1 when its envelope addresses or its
 * header section (RFC 6532: UTF-8 there needs it too) are not ASCII, 0
 * when all is ASCII; -1 with *bad (the answer) and *code when an address
 * is not UTF-8 at all. */
static int message_utf8(const oc_request *q, const char **bad, long *code)
{
    int rcpt = utf8_class(q->mail_rcpt), from = utf8_class(q->mail_from);
    if (rcpt == SMTP_NOT_UTF8 || from == SMTP_NOT_UTF8) {
        *code = rcpt == SMTP_NOT_UTF8 ? 553 : 554;
        *bad = rcpt == SMTP_NOT_UTF8
                   ? "553 omnicast: the recipient address is not valid UTF-8; not sent"
                   : "554 omnicast: the sender address is not valid UTF-8; not sent";
        return -1;
    }
    size_t hl = q->body.len;
    const char *end = q->body.data ? memmem(q->body.data, q->body.len, "\r\n\r\n", 4) : NULL;
    if (end)
        hl = (size_t)(end - q->body.data);
    int head = q->body.data ? smtp_utf8_class(q->body.data, hl) : SMTP_ASCII;
    return rcpt == SMTP_UTF8 || from == SMTP_UTF8 || head != SMTP_ASCII;
}

/* Hand waiting messages to connections: an idle one, else a new one while
 * the limits allow and fewer are being set up than wait, else behind the
 * dot of a pipelining connection's transaction. */
static void origin_pump(smtpc *s, origin *o)
{
    while (o->pend) {
        sreq *r = o->pend;
        sconn *best = NULL;
        for (sconn *c = o->conns; c; c = c->next)
            if (c->state == S_READY && c->ntx == 0 && c->qn < EXP_MAX - 8 &&
                (c->qn == 0 || (c->caps & SMTP_CAP_PIPELINING))) {
                best = c;
                break;
            }
        if (!best && o->npend > o->nsetup && o->nconns < s->max_host && s->total < s->max_total) {
            if (!conn_open(s, o, r->connect_timeout_ms))
                return;
            continue;
        }
        if (!best)
            for (sconn *c = o->conns; c; c = c->next)
                if (c->state == S_READY && c->ntx == 1 && c->tx[0]->dot_queued &&
                    (c->caps & SMTP_CAP_PIPELINING) && c->qn < EXP_MAX - 8) {
                    best = c;
                    break;
                }
        if (!best)
            return;
        o->pend = r->next;
        if (!o->pend)
            o->pend_tail = &o->pend;
        o->npend--;
        if (r->utf8 && !(best->caps & SMTP_CAP_SMTPUTF8)) {
            no_smtputf8(s, o, r);
            continue;
        }
        txn_start(best, r);
    }
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    smtpc *s = arg;
    long long now = omni_mono_us();
    for (origin *o = s->origins; o; o = o->next) {
        sreq **pp = &o->pend;
        while (*pp) {
            sreq *r = *pp;
            if (r->deadline_us && r->deadline_us <= now) {
                *pp = r->next;
                o->npend--;
                finish(s, r, OC_NET_TIMEOUT, "timed out waiting for a connection", 0, 0, 0);
            } else {
                pp = &r->next;
            }
        }
        o->pend_tail = pp;
        sconn *c = o->conns;
        while (c) {
            sconn *next = c->next;
            int expired = 0;
            for (int i = 0; i < c->ntx; i++)
                if (c->tx[i]->deadline_us && c->tx[i]->deadline_us <= now)
                    expired = 1;
            if (c->failed_now)
                conn_close(s, c, OC_NET_CONNECT, "could not connect to server");
            else if (c->state == S_QUIT && c->deadline_us <= now)
                conn_close(s, c, OC_NET_OK, "");
            else if (c->state < S_READY && c->deadline_us <= now)
                conn_close(s, c, OC_NET_TIMEOUT, "connection timed out");
            else if (expired)
                conn_close(s, c, OC_NET_TIMEOUT, "operation timed out");
            else if (c->state == S_READY && c->ntx == 0 && c->qn == 0 &&
                     now - c->idle_since_us > s->idle_us) {
                conn_puts(c, "QUIT\r\n");
                c->state = S_QUIT;
                c->deadline_us = now + QUIT_WAIT_US;
            }
            c = next;
        }
    }
    if (s->inflight || s->total) {
        struct timeval tv = {0, SWEEP_MS * 1000};
        if (!s->inflight)
            tv = (struct timeval){1, 0};
        evtimer_add(s->sweep, &tv);
    }
}

smtpc *smtpc_new(struct event_base *base, int max_total, int max_host, int idle_ms,
                 const char *ca_file)
{
    smtpc *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (ca_file && !(s->ca_file = strdup(ca_file))) {
        free(s);
        return NULL;
    }
    s->base = base;
    s->max_total = max_total > 0 ? max_total : 256;
    s->max_host = max_host > 0 ? max_host : 64;
    s->idle_us = (long long)(idle_ms > 0 ? idle_ms : 30000) * 1000;
    s->later_tail = &s->later;
    /* libcurl's EHLO name when the URL gives none: this host's name */
    if (gethostname(s->hostname, sizeof(s->hostname) - 1) != 0 || !s->hostname[0] ||
        strpbrk(s->hostname, " \r\n\t"))
        snprintf(s->hostname, sizeof(s->hostname), "localhost");
    s->dns =
        evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!s->dns)
        s->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    s->sweep = evtimer_new(base, sweep_cb, s);
    s->later_ev = event_new(base, -1, 0, later_cb, s);
    s->flush_ev = event_new(base, -1, 0, flush_cb, s);
    if (!s->dns || !s->sweep || !s->later_ev || !s->flush_ev) {
        smtpc_free(s);
        return NULL;
    }
    evdns_base_load_hosts(s->dns, NULL);
    return s;
}

static int same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static origin *origin_get(smtpc *s, const oc_request *req, const smtp_url *u)
{
    int starttls = req->smtp_tls == 1 && !u->tls;
    for (origin *o = s->origins; o; o = o->next)
        if (o->starttls == starttls && strcmp(o->url, req->url) == 0 &&
            same(o->userpwd, req->userpwd))
            return o;
    origin *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->url = strdup(req->url);
    o->userpwd = req->userpwd ? strdup(req->userpwd) : NULL;
    if (!o->url || (req->userpwd && !o->userpwd)) {
        free(o->url);
        free(o->userpwd);
        free(o);
        return NULL;
    }
    o->s = s;
    o->u = *u;
    o->starttls = starttls;
    o->pend_tail = &o->pend;
    o->next = s->origins;
    s->origins = o;
    return o;
}

static int one_line(const char *p)
{
    return !p || !strpbrk(p, "\r\n");
}

int smtpc_submit(smtpc *s, oc_request *req, const transport_req_opts *opts, transport_done_fn done,
                 void *arg)
{
    smtp_url u;
    if (req->kind != OC_REQ_SMTP || !req->url || smtp_parse_url(req->url, &u) < 0)
        return 1;
    if ((u.tls || req->smtp_tls == 1) && !tls_ctx(s))
        return 1; /* no TLS context (the CA bundle would not load): libcurl says why */
    origin *o = one_line(req->mail_from) && one_line(req->mail_rcpt) && one_line(req->userpwd)
                    ? origin_get(s, req, &u)
                    : NULL;
    sreq *r = o ? calloc(1, sizeof(*r)) : NULL;
    if (!r) {
        oc_request_free(req);
        return -1;
    }
    r->req = *req;
    memset(req, 0, sizeof(*req)); /* ours now */
    r->done = done;
    r->arg = arg;
    r->start_us = omni_mono_us();
    int timeout_ms = opts ? opts->timeout_ms : 0;
    r->deadline_us = timeout_ms > 0 ? r->start_us + (long long)timeout_ms * 1000 : 0;
    r->connect_timeout_ms = opts ? opts->connect_timeout_ms : 0;
    const char *bad = NULL;
    long code = 0;
    r->utf8 = message_utf8(&r->req, &bad, &code);
    s->inflight++;
    if (r->utf8 < 0) {
        /* ill-formed UTF-8 is never sent: a failure for good, at once */
        set_reply(r, bad, strlen(bad));
        finish(s, r, OC_NET_PROTOCOL, "refused", 0, 1, code);
        return 0;
    }
    *o->pend_tail = r;
    o->pend_tail = &r->next;
    o->npend++;
    if (s->inflight == 1 || !evtimer_pending(s->sweep, NULL)) {
        struct timeval tv = {0, SWEEP_MS * 1000};
        evtimer_add(s->sweep, &tv);
    }
    origin_pump(s, o);
    return 0;
}

size_t smtpc_inflight(const smtpc *s)
{
    return s->inflight;
}

void smtpc_free(smtpc *s)
{
    if (!s)
        return;
    while (s->origins) {
        origin *o = s->origins;
        s->origins = o->next;
        while (o->conns) {
            sconn *c = o->conns;
            o->conns = c->next;
            for (int i = 0; i < c->ntx; i++)
                req_free(c->tx[i]);
            conn_free(c);
        }
        while (o->pend) {
            sreq *r = o->pend;
            o->pend = r->next;
            req_free(r);
        }
        if (o->session)
            SSL_SESSION_free(o->session);
        if (o->userpwd)
            OPENSSL_cleanse(o->userpwd, strlen(o->userpwd));
        free(o->userpwd);
        free(o->url);
        free(o);
    }
    while (s->later) {
        sreq *r = s->later;
        s->later = r->next;
        req_free(r);
    }
    if (s->sweep)
        event_free(s->sweep);
    if (s->later_ev)
        event_free(s->later_ev);
    if (s->flush_ev)
        event_free(s->flush_ev);
    if (s->dns)
        evdns_base_free(s->dns, 0);
    SSL_CTX_free(s->tls);
    free(s->ca_file);
    free(s);
}
