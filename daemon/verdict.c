#include "verdict.h"

#include <stdio.h>

void verdict(const oc_connector *impl, void *inst, int retry_ambiguous, const oc_response *resp,
             oc_outcome *out)
{
    oc_outcome_set(out, OC_FAILED, "internal", NULL);
    if (resp->net_error == OC_NET_OK || resp->answered) {
        if (resp->net_error != OC_NET_OK && resp->status >= 200 && resp->status < 300) {
            /* accepted; the body was cut short or too large to read */
            oc_outcome_set(out, OC_SENT, "unreadable_answer", resp->net_detail);
            return;
        }
        oc_response a = *resp;
        a.net_error = OC_NET_OK; /* an answer (cut short, or a refusal) says what it says */
        impl->classify(inst, &a, out);
        /* OC_HALT is ABI 1.3: from an older plugin (or any kind unknown
         * here) it is a failure, never a kind the host does not know */
        int k = (int)out->kind;
        if (k < OC_SENT || k > OC_HALT || (k == OC_HALT && impl->abi_minor < 3)) {
            out->kind = OC_FAILED;
            snprintf(out->reason, sizeof(out->reason), "bad_outcome");
        }
        return;
    }
    const char *why = resp->net_error == OC_NET_TIMEOUT ? "ambiguous_timeout" : "ambiguous_reset";
    if (!resp->request_sent)
        oc_outcome_set(out, OC_RETRY, "network", resp->net_detail);
    else if (retry_ambiguous)
        oc_outcome_set(out, OC_RETRY, why, resp->net_detail);
    else
        oc_outcome_set(out, (oc_outcome_kind)OUT_UNCERTAIN, why, resp->net_detail);
}
