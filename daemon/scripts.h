/* Lua scripts that run inside Redis, embedded from daemon/lua/ by CMake. */
#ifndef OMNI_SCRIPTS_H
#define OMNI_SCRIPTS_H

typedef struct script_src {
    const char *name; /* file name without .lua */
    const char *src;
} script_src;

extern const script_src scripts_src[]; /* terminated by {0, 0} */

#endif
