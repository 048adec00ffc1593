/* libFuzzer: whatever jfast_loadb takes, json_loadb takes too, as the same
 * tree (keys in the same order); it never crashes or leaks. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jfast.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *a = jfast_loadb((const char *)data, size);
    if (!a)
        return 0;
    json_t *b = json_loadb((const char *)data, size, 0, NULL);
    assert(b && json_equal(a, b));
    char *da = json_dumps(a, JSON_PRESERVE_ORDER), *db = json_dumps(b, JSON_PRESERVE_ORDER);
    assert(da && db && strcmp(da, db) == 0);
    free(da);
    free(db);
    json_decref(a);
    json_decref(b);
    return 0;
}
