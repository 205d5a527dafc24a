// berthd's own memory housekeeping: fewer malloc arenas, free heap given back
// to the kernel after bursts (image pulls), and clean file-backed pages that
// start-up or a pull touched dropped from the process's page tables.
//
// All functions are thread-safe (they act on the whole process) and cheap
// enough to call after each image pull; none of them changes what the process
// computes: dropped file pages come back from the page cache on their next use.
#pragma once

#include <cstddef>

namespace berth {

// Caps glibc malloc's arenas (M_ARENA_MAX). Call before threads start: every
// thread that allocates otherwise may get an arena of its own (up to 8 per
// core), each keeping its free memory. Does nothing when the process runs on
// jemalloc (berthd, see src/cmd/berthd_main.cc), which is configured by its
// `malloc_conf`.
void LimitMallocArenas(int max_arenas);

// Gives free heap memory of every arena back to the kernel (malloc_trim, or
// a purge of every jemalloc arena).
void ReleaseFreeHeap();

// True when malloc is jemalloc's (linked into the program).
bool UsingJemalloc();

// Unmaps the resident pages of file-backed mappings that are not writable and
// hold no private (copied) page: code and read-only data of the executable and
// its shared libraries, which are identical to the page cache and are faulted
// in again when used. Mappings with a private copy (RELRO after relocation)
// are never touched. Returns the kB dropped from the resident set.
size_t DropCleanFilePages();

}  // namespace berth
