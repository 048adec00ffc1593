/* The operator's dashboard: static files from daemon/ui, embedded in the
 * binary at build time (CMakeLists.txt writes gen/ui_gen.c), served by
 * http.c under /ui/ (ui_route in ui.c). */
#ifndef OMNI_UI_H
#define OMNI_UI_H

#include <stddef.h>

typedef struct ui_asset {
    const char *name; /* file name under /ui/ */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted, as sent */
} ui_asset;

/* every file, ended by an entry with name NULL (generated) */
extern const ui_asset ui_assets[];

/* The file of that name, NULL if there is none. */
const ui_asset *ui_find(const char *name);

#endif
