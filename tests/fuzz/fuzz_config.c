/* libFuzzer: the configuration parser and resolver on arbitrary files. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "registry.h"

static const oc_connector *find(void *ctx, const conf_connector *c, char *err, size_t len)
{
    (void)ctx;
    const oc_connector *impl = c->type ? registry_builtin(c->type) : NULL;
    if (!impl)
        snprintf(err, len, "unknown type");
    return impl;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    omni_config c;
    conf_errors e = {0};
    config_load_string(s, &c, &e);
    config_resolve(&c, find, NULL, &e);
    config_free(&c);
    conf_errors_free(&e);
    free(s);
    return 0;
}
