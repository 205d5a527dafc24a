// The standard process_* metrics of the Prometheus client libraries for the
// calling process (CPU seconds, resident and virtual memory, open file
// descriptors, threads, start time), read from /proc/self.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "metrics/exposition.h"

namespace berth::metrics {

// What /proc/<pid>/stat says, in the kernel's units.
struct ProcStat {
  uint64_t utime_ticks = 0, stime_ticks = 0;
  uint64_t start_ticks = 0;  // since boot
  uint64_t vsize_bytes = 0;
  uint64_t rss_pages = 0;
  uint64_t threads = 0;
};

// Parses the text of /proc/<pid>/stat (the command name may hold spaces and
// parentheses). nullopt when it is not in that format.
std::optional<ProcStat> ParseProcStat(std::string_view text);

// Appends process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_threads and process_start_time_seconds for this process; a value
// that cannot be read is left out.
void CollectProcessMetrics(std::vector<Family>& out);

}  // namespace berth::metrics
