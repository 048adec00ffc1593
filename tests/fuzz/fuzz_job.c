/* libFuzzer: the job validator never crashes, leaks or accepts a job whose
 * normalized spec lacks what the daemon relies on. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "address.h"
#include "job.h"

static int kinds(void *ctx, const char *c)
{
    (void)ctx;
    if (!strcmp(c, "sms") || !strcmp(c, "whatsapp"))
        return ADDR_PHONE;
    if (!strcmp(c, "email"))
        return ADDR_EMAIL;
    return !strcmp(c, "hook") ? ADDR_ANY : -1;
}

/* customer service windows: whatsapp's 24 h, and one not in whole hours */
static long long windows(void *ctx, const char *c)
{
    (void)ctx;
    return !strcmp(c, "whatsapp") ? 86400 : !strcmp(c, "hook") ? 90 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    job_rules rules = {.max_bytes = 1 << 16,
                       .max_inline_recipients = 50,
                       .channel_kind = kinds,
                       .channel_window_s = windows};
    job j;
    char reason[JOB_REASON_MAX];
    if (job_parse((const char *)data, size, &rules, &j, reason, sizeof(reason)) == 0) {
        assert(j.id && *j.id);
        if (j.type == JOB_BROADCAST || j.type == JOB_MESSAGE) {
            assert(j.n_channels >= 1);
            assert(json_is_array(json_object_get(j.spec, "channels")));
            assert(json_object_get(j.spec, "recipients") || j.recipients_list);
        }
        /* a broadcast on a channel with a window always has a template */
        if (j.type == JOB_BROADCAST)
            for (size_t c = 0; c < j.n_channels; c++)
                if (windows(NULL, j.channels[c]) > 0)
                    assert(json_object_get(json_object_get(j.spec, "message"), "template"));
        job_free(&j);
    } else {
        assert(reason[0]);
    }
    return 0;
}
