/* Connector implementations: the built-in table CMake generates from
 * connectors/ (one file per connector), and .so plugins. Both pass the same ABI check before any
 * of their code runs; both get the same host services. */
#include "registry.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "template.h"

extern const oc_connector *const registry_builtin_table[];

const oc_connector *const *registry_builtins(void)
{
    return registry_builtin_table;
}

const oc_connector *registry_builtin(const char *type)
{
    for (const oc_connector *const *c = registry_builtin_table; *c; c++) {
        if (!(*c)->type || strcmp((*c)->type, type))
            continue;
        /* built in or not, a descriptor runs no code before this check */
        char why[200];
        if (registry_check_abi(*c, why, sizeof(why)) < 0) {
            log_error("built-in connector %s: %s", type, why);
            return NULL;
        }
        return *c;
    }
    return NULL;
}

int registry_check_abi(const oc_connector *c, char *err, size_t err_len)
{
    if (!c) {
        snprintf(err, err_len, "no connector descriptor");
        return -1;
    }
    if (c->abi_major != OC_ABI_MAJOR) {
        snprintf(err, err_len, "connector ABI %u.%u, this daemon supports %d.x", c->abi_major,
                 c->abi_minor, OC_ABI_MAJOR);
        return -1;
    }
    /* the descriptor must reach the end of its last ABI 1.0 member */
    if (c->struct_size <
        offsetof(oc_connector, inbound) + sizeof(((const oc_connector *)0)->inbound)) {
        snprintf(err, err_len, "connector descriptor too small (%u bytes)", c->struct_size);
        return -1;
    }
    if (!c->type || !c->type[0] || !c->init || !c->build || !c->classify) {
        snprintf(err, err_len, "connector descriptor lacks type, init, build or classify");
        return -1;
    }
    return 0;
}

const oc_connector *registry_load_plugin(const char *path, char *err, size_t err_len)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, err_len, "cannot load plugin: %s", dlerror());
        return NULL;
    }
    const oc_connector *c = dlsym(h, OC_ENTRY_SYMBOL);
    if (!c) {
        snprintf(err, err_len, "%s is not an omnicast plugin (no %s symbol)", path,
                 OC_ENTRY_SYMBOL);
        dlclose(h);
        return NULL;
    }
    char why[200];
    if (registry_check_abi(c, why, sizeof(why)) < 0) {
        snprintf(err, err_len, "%s: %s", path, why);
        dlclose(h);
        return NULL;
    }
    return c; /* the handle stays open for the life of the process */
}

/* ---- host services */

static void host_log(int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    log_msg(level, "%s", buf);
}

static const char *host_lookup(void *ctx, const char *name, size_t len)
{
    const oc_message *m = ctx;
    return m->var ? m->var(m, name, len) : NULL;
}

static int host_render(const char *tmpl, const oc_message *msg, int escape, oc_buf *out,
                       char *missing, size_t missing_len)
{
    return tmpl_render_once(tmpl, host_lookup, (void *)msg, escape, out, missing, missing_len);
}

const oc_host registry_host = {
    .struct_size = sizeof(oc_host),
    .log = host_log,
    .json_escape = json_escape_append,
    .render = host_render,
    .retry_after_ms = retry_after_parse_ms,
    .message_size = sizeof(oc_message),
};
