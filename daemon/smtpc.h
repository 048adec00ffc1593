/* The native SMTP client: email (OC_REQ_SMTP requests) over connections
 * kept open across messages, per origin (URL, STARTTLS mode, credentials)
 * at most max_host_connections, commands pipelined (RFC 2920) where the
 * server announces PIPELINING; STARTTLS and smtps through OpenSSL on the
 * same non-blocking sockets; AUTH CRAM-MD5, PLAIN or LOGIN. libcurl keeps
 * SMTP behind smtp_client = curl and proxies. Nothing here blocks. */
#ifndef OMNI_SMTPC_H
#define OMNI_SMTPC_H

#include <event2/event.h>
#include "omnicast/connector.h"
#include "transport.h"

typedef struct smtpc smtpc;

/* idle_ms: idle connections are ended (QUIT) after (0: 30000); ca_file:
 * the CA bundle verifying TLS peers (NULL: the system's store) */
smtpc *smtpc_new(struct event_base *base, int max_total_connections, int max_host_connections,
                 int idle_ms, const char *ca_file);
/* 0: taken (the callback runs later, from the event loop, never inside this
 * call); 1: not for this client (an URL it does not take: req untouched);
 * -1: refused (an envelope address with a line break; req freed, no
 * callback). */
int smtpc_submit(smtpc *s, oc_request *req, const transport_req_opts *opts, transport_done_fn done,
                 void *arg);
size_t smtpc_inflight(const smtpc *s);
/* Cancel everything without callbacks, close every connection. */
void smtpc_free(smtpc *s);

#endif
