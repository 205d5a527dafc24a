#include "common/memory.h"

#include <malloc.h>
#include <sys/mman.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

#include "common/numbers.h"

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

namespace {

// The fields of an smaps mapping header, "start-end perms offset dev inode [path]",
// that DropCleanFilePages needs.
struct MappingHeader {
  uintptr_t start = 0, end = 0;
  std::string_view perms;
  unsigned long inode = 0;
};

bool ParseHex(std::string_view text, uintptr_t* value) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value, 16);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

// The header that `line` is; nullopt for any other line of smaps.
std::optional<MappingHeader> ParseMappingHeader(std::string_view line) {
  std::string_view fields[5];
  for (auto& field : fields) {
    const size_t start = line.find_first_not_of(' ');
    if (start == std::string_view::npos) return std::nullopt;
    line.remove_prefix(start);
    field = line.substr(0, line.find_first_of(" \n"));
    line.remove_prefix(field.size());
  }
  MappingHeader h;
  const size_t dash = fields[0].find('-');
  uintptr_t ignored = 0;
  if (dash == std::string_view::npos || !ParseHex(fields[0].substr(0, dash), &h.start) ||
      !ParseHex(fields[0].substr(dash + 1), &h.end) || fields[1].size() < 4 ||
      !ParseHex(fields[2], &ignored)) {
    return std::nullopt;
  }
  const size_t colon = fields[3].find(':');
  if (colon == std::string_view::npos || !ParseHex(fields[3].substr(0, colon), &ignored) ||
      !ParseHex(fields[3].substr(colon + 1), &ignored)) {
    return std::nullopt;
  }
  auto inode = ParseDecimal<unsigned long>(fields[4]);
  if (!inode) return std::nullopt;
  h.perms = fields[1];
  h.inode = *inode;
  return h;
}

// The value of an smaps field line "<name>   <n> kB" (name with its colon).
std::optional<long> FieldKb(std::string_view line, std::string_view name) {
  if (!line.starts_with(name)) return std::nullopt;
  line.remove_prefix(name.size());
  const size_t unit = line.rfind(" kB");
  if (unit == std::string_view::npos) return std::nullopt;
  return ParseDecimal<long>(line.substr(0, unit));
}

}  // namespace

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
    const std::string_view text(line);
    if (auto header = ParseMappingHeader(text)) {
      finish();
      m.start = header->start;
      m.end = header->end;
      m.candidate = header->inode != 0 && header->perms[1] == '-' && header->perms[3] == 'p';
      continue;
    }
    if (auto kb = FieldKb(text, "Rss:")) {
      m.rss_kb = *kb;
    } else if (auto anon = FieldKb(text, "Anonymous:")) {
      m.anon_kb = *anon;
    }
  }
  finish();
  std::fclose(f);
  return dropped;
}

}  // namespace berth
