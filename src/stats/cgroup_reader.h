// Reads the usage figures of one cgroup, on cgroup v1 (one hierarchy per
// controller, including the "hybrid" layout where a nearly empty v2 tree sits
// at /sys/fs/cgroup/unified) or on the unified cgroup v2 hierarchy. Both
// backends fill the same CgroupSample; docs/stats.md says which file each
// figure comes from on each version.
//
// A reader holds only paths fixed at construction: Read is const and
// thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "stats/cgroup_parse.h"

namespace berth::stats {

enum class CgroupVersion { kV1, kV2 };

// How much to read. kStats is what the CRI stats RPCs need; kMetrics adds
// the figures only the cAdvisor-style metrics report (CPU user/system and
// throttling, memory peak and failures, block I/O, the pids limit).
enum class Detail { kStats, kMetrics };

struct CpuSample {
  uint64_t usage_ns = 0;  // cumulative CPU time of all tasks
  // kMetrics:
  std::optional<uint64_t> user_ns, system_ns;
  std::optional<uint64_t> periods, throttled_periods, throttled_ns;
  std::optional<Psi> psi;  // v2 only
};

struct MemorySample {
  uint64_t usage = 0;             // v1 memory.usage_in_bytes, v2 memory.current
  std::optional<uint64_t> limit;  // unset: no limit
  uint64_t working_set = 0;       // usage - inactive file, floored at 0
  uint64_t rss = 0;               // v1 total_rss, v2 anon
  uint64_t cache = 0;             // v1 total_cache, v2 file
  uint64_t mapped_file = 0;       // v1 total_mapped_file, v2 file_mapped
  uint64_t active_file = 0, inactive_file = 0;
  std::optional<uint64_t> kernel;  // v2 memory.stat "kernel" (Linux 5.18+)
  uint64_t pgfault = 0, pgmajfault = 0;
  std::optional<uint64_t> swap_usage, swap_limit;  // unset without swap accounting
  std::optional<uint64_t> oom_kill;                // v1 memory.oom_control, v2 memory.events
  // kMetrics:
  std::optional<uint64_t> max_usage;  // v1 max_usage_in_bytes, v2 memory.peak
  std::optional<uint64_t> failcnt;    // v1 only
  std::optional<Psi> psi;             // v2 only
};

struct PidsSample {
  uint64_t processes = 0;           // cgroup.procs lines
  std::optional<uint64_t> threads;  // pids.current (tasks)
  std::optional<uint64_t> limit;    // pids.max; unset: no limit (kMetrics)
};

struct IoSample {
  std::vector<IoDeviceStats> devices;  // kMetrics
  std::optional<Psi> psi;              // v2 only
};

struct CgroupSample {
  int64_t wall_ns = 0;       // CLOCK_REALTIME when read (CRI timestamps)
  int64_t monotonic_ns = 0;  // CLOCK_MONOTONIC when read (rates)
  Detail detail = Detail::kStats;
  std::optional<CpuSample> cpu;
  std::optional<MemorySample> memory;
  std::optional<PidsSample> pids;
  std::optional<IoSample> io;
};

// Open descriptors of one cgroup's interface files, kept between samples:
// reading a kernel-generated file again from offset 0 regenerates it, and
// costs a tenth of opening it again (a path walk through the cgroup tree).
// Each kept descriptor counts against `budget`, shared by all caches; beyond
// it files are opened and closed per read. A file whose cgroup was removed
// fails to read (ENODEV) and is opened afresh, which then fails with ENOENT.
// Not thread-safe: one per cgroup, used by one reader at a time.
class FileCache {
 public:
  // `budget` must outlive the cache.
  explicit FileCache(std::atomic<int>* budget) : budget_(budget) {}
  ~FileCache();
  FileCache(const FileCache&) = delete;
  FileCache& operator=(const FileCache&) = delete;

  // The whole content of `path` in `buf`; false with errno set when it
  // cannot be opened or read.
  bool Read(const std::string& path, std::string& buf);
  size_t open_files() const { return fds_.size(); }

 private:
  std::vector<std::pair<std::string, int>> fds_;  // a dozen at most: searched linearly
  std::atomic<int>* budget_;
};

class CgroupReader {
 public:
  virtual ~CgroupReader() = default;
  virtual CgroupVersion version() const = 0;
  // `path` names the cgroup below the root of the hierarchies, as runc's
  // cgroupsPath does ("/kubepods/podX/<id>"). NOT_FOUND when it does not
  // exist (the cgroup of an exited container may be gone). A controller
  // that is not mounted or not enabled leaves its part unset. `files`, when
  // given, keeps the cgroup's files open for the next Read of this cgroup.
  virtual StatusOr<CgroupSample> Read(std::string_view path, Detail detail,
                                      FileCache* files = nullptr) const = 0;
};

// cgroup v2 below `root` (normally /sys/fs/cgroup; tests pass a fixture tree).
std::unique_ptr<CgroupReader> NewCgroupV2Reader(std::filesystem::path root);

// cgroup v1 with each controller's hierarchy mounted where `mounts` says
// ("memory" -> /sys/fs/cgroup/memory; co-mounted controllers share a path).
std::unique_ptr<CgroupReader> NewCgroupV1Reader(
    std::map<std::string, std::filesystem::path> mounts);

// The reader for this host, from /proc/self/mountinfo: v2 when
// /sys/fs/cgroup is the unified hierarchy, v1 (hybrid included) otherwise.
// FAILED_PRECONDITION when neither is mounted.
StatusOr<std::unique_ptr<CgroupReader>> NewHostCgroupReader();

// Same decision on a given mountinfo text (unit-testable).
struct CgroupLayout {
  CgroupVersion version = CgroupVersion::kV1;
  std::filesystem::path v2_root;                           // kV2
  std::map<std::string, std::filesystem::path> v1_mounts;  // kV1: controller -> mount point
};
StatusOr<CgroupLayout> DetectCgroupLayout(std::string_view mountinfo);

}  // namespace berth::stats
