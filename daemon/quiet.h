/* Quiet hours in the recipient's local time: the UTC offset of an IANA
 * zone (var tz), cached an hour per zone, and when quiet hours that are in
 * force end. The offset comes from glibc's zone files through
 * localtime_r under TZ set for the call and restored: the TZ environment
 * variable is touched here only, at most once per zone and hour (the
 * cache), never by another module. Knows no stage. */
#ifndef OMNI_QUIET_H
#define OMNI_QUIET_H

typedef struct quiet_zones quiet_zones;

quiet_zones *quiet_zones_new(void);
void quiet_zones_free(quiet_zones *z);
/* UTC offset in seconds of zone tz at unix time now_s (an unknown name is
 * UTC; a name of 64 bytes or more, or empty, is UTC without a lookup). */
long quiet_tz_offset(quiet_zones *z, const char *tz, long long now_s);
/* Quiet hours from start to end (minutes of the day, local time; may wrap
 * midnight): when now_ms is inside them in zone tz (NULL: UTC), the unix ms
 * they end; else 0. */
long long quiet_until(quiet_zones *z, int start, int end, const char *tz, long long now_ms);

#endif
