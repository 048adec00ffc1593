/* Prometheus text exposition (format 0.0.4) of the daemon's counters. */
#ifndef OMNI_METRICS_H
#define OMNI_METRICS_H

#include "omni.h"

void metrics_render(omni *o, oc_buf *out);

#endif
