#include "common/memory.h"

#include <malloc.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// jemalloc's control interface, weak: defined only in programs linked with
// jemalloc (berthd), null in the others, which then use glibc's calls.
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace berth {

bool UsingJemalloc() { return mallctl != nullptr; }

void LimitMallocArenas(int max_arenas) {
  if (UsingJemalloc()) return;
  mallopt(M_ARENA_MAX, max_arenas);
}

void ReleaseFreeHeap() {
  if (UsingJemalloc()) {
    // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena's unused dirty pages.
    mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
    return;
  }
  malloc_trim(0);
}

size_t DropCleanFilePages() {
  // stdio, not the fs helpers: smaps of a process with ~100 mappings is
  // ~100 KiB and is read line by line.
  FILE* f = std::fopen("/proc/self/smaps", "re");
  if (f == nullptr) return 0;
  struct Mapping {
    uintptr_t start = 0, end = 0;
    bool candidate = false;  // private, not writable, file-backed
    long rss_kb = -1, anon_kb = -1;
  };
  size_t dropped = 0;
  Mapping m;
  auto finish = [&] {
    if (m.candidate && m.rss_kb > 0 && m.anon_kb == 0 && m.end > m.start) {
      // NOLINTNEXTLINE(performance-no-int-to-ptr): the address comes from smaps
      if (madvise(reinterpret_cast<void*>(m.start), m.end - m.start, MADV_DONTNEED) == 0) {
        dropped += static_cast<size_t>(m.rss_kb);
      }
    }
    m = Mapping();
  };
  char line[512];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    unsigned long start = 0, end = 0, inode = 0;
    char perms[8] = {};
    int consumed = 0;
    // A mapping header: "start-end perms offset dev inode [path]".
    if (std::sscanf(line, "%lx-%lx %7s %*x %*x:%*x %lu%n", &start, &end, perms, &inode,
                    &consumed) == 4 &&
        consumed > 0) {
      finish();
      m.start = start;
      m.end = end;
      m.candidate = inode != 0 && perms[1] == '-' && perms[3] == 'p';
      continue;
    }
    long kb = 0;
    if (std::sscanf(line, "Rss: %ld kB", &kb) == 1) {
      m.rss_kb = kb;
    } else if (std::sscanf(line, "Anonymous: %ld kB", &kb) == 1) {
      m.anon_kb = kb;
    }
  }
  finish();
  std::fclose(f);
  return dropped;
}

}  // namespace berth
