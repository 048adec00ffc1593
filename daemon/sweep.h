/* The consistency sweep: running campaigns without progress for
 * sweep_idle_ms (the omni:active index) go through sweep.lua every
 * sweep_interval_ms, which puts back on the path the recipients that lost
 * Redis writes or a process that died mid-fallback left with nothing to
 * finish them, and finishes the campaign when its counters add up. */
#ifndef OMNI_SWEEP_H
#define OMNI_SWEEP_H

#include "omni.h"

/* From the daemon's periodic tick: starts a round when one is due and none
 * is running. Never blocks: every Redis call is asynchronous. */
void sweep_tick(omni *o);

/* Also from the tick, once a second: the messages of campaigns with
 * fallback_after_s whose delivery did not show in time (omni:watch) go
 * through watch.lua, WATCH_BATCH at most per call (another call at once
 * when it took a full batch), which moves their recipients to the next
 * channel. One call at a time; never blocks. */
void watch_tick(omni *o);

#endif
