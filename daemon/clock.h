/* The daemon's two clocks (omni.c), for modules that need nothing else of
 * the context. */
#ifndef OMNI_CLOCK_H
#define OMNI_CLOCK_H

long long omni_now_ms(void);  /* wall clock */
long long omni_mono_us(void); /* monotonic */

#endif
