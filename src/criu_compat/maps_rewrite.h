// The /proc/<pid>/maps and smaps text that Debian 12's CRIU 3.17 can read on
// Linux 6.13 and later.
//
// Those kernels map a third special area, [vvar_vclock], between [vvar] and
// [vdso]. CRIU 3.17 expects [vvar] and [vdso] to touch ("Unexpected rt vDSO
// area bounds") and takes [vvar_vclock] for an ordinary mapping it cannot
// dump (a PFN mapping); CRIU 4.0 learnt the new area. Presenting
// [vvar_vclock] as the tail of [vvar], which is what it was split from, is
// all CRIU 3.17 needs to dump a process; CRIU never reads or writes the
// content of either area.
//
// Plain C with no allocation beyond malloc: it runs inside CRIU, loaded with
// LD_PRELOAD by the shim in criu_vdso_compat.c. Thread-safe (no state).
#ifndef BERTH_CRIU_COMPAT_MAPS_REWRITE_H_
#define BERTH_CRIU_COMPAT_MAPS_REWRITE_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Rewrites the maps or smaps text `in` (`len` bytes): a [vvar_vclock] area
// that starts where the [vvar] area before it ends is merged into it (the
// [vvar] line's end address becomes the [vvar_vclock] end, and the
// [vvar_vclock] line with its smaps detail lines is dropped). Anything else
// is copied unchanged. Returns a malloc'ed buffer the caller frees and its
// length in *out_len, or NULL when out of memory.
char* berth_merge_vvar_vclock(const char* in, size_t len, size_t* out_len);

#ifdef __cplusplus
}
#endif

#endif  // BERTH_CRIU_COMPAT_MAPS_REWRITE_H_
