/* Where connector implementations come from: the built-in table (generated
 * by CMake from connectors/) and .so plugins loaded with dlopen. Both go
 * through one ABI check before any connector code runs. */
#ifndef OMNI_REGISTRY_H
#define OMNI_REGISTRY_H

#include <stddef.h>
#include "omnicast/connector.h"

/* The built-in connector of that type, once it passed registry_check_abi;
 * NULL (logged) if none or if it fails. */
const oc_connector *registry_builtin(const char *type);
/* NULL-terminated list of the built-in connectors */
const oc_connector *const *registry_builtins(void);
/* dlopen path, find OC_ENTRY_SYMBOL, check the ABI. The handle stays open
 * for the process's life. NULL with err on failure. */
const oc_connector *registry_load_plugin(const char *path, char *err, size_t err_len);
int registry_check_abi(const oc_connector *c, char *err, size_t err_len);

/* The host services handed to connectors (logging, rendering, escaping). */
extern const oc_host registry_host;

#endif
