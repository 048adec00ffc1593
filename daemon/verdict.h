/* What a finished transfer means, decided once for every connector: an
 * answer is the connector's to classify; a transport error is the host's.
 * Nothing of the request left → retry; the request (or part of it) left
 * and no answer came → the provider may have it: uncertain, never resent
 * on its own (RFC 9110 9.2.2: a POST is not idempotent, and neither the
 * WhatsApp Cloud API nor Twilio takes an idempotency key) unless the
 * connector says retry_ambiguous; a 2xx whose body was lost → sent. */
#ifndef OMNI_VERDICT_H
#define OMNI_VERDICT_H

#include "omnicast/connector.h"

/* Outcome kinds beyond the connector's three (OC_SENT, OC_RETRY,
 * OC_FAILED): wait for quiet hours to end, unclaimed (dispatch only); the
 * request may have reached the provider and no answer came. */
#define OUT_DEFER 10
#define OUT_UNCERTAIN 11

void verdict(const oc_connector *impl, void *inst, int retry_ambiguous, const oc_response *resp,
             oc_outcome *out);

#endif
