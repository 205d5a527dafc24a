// Where the kernel counts OOM kills of a container's memory cgroup, and how
// to read the count: cgroup v1 `memory.oom_control` (its "oom_kill" line;
// its notifications come through an eventfd registered in the cgroup's
// `cgroup.event_control`), cgroup v2 `memory.events` (its "oom_kill" line;
// the file signals modification to inotify). On a hybrid host (v1
// controllers plus an empty v2 tree at /sys/fs/cgroup/unified) the memory
// controller is the v1 one.
//
// Plain C++ with no dependencies: part of the berth-monitor binary. Pure
// functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace berth::monitor {

struct OomCounterLocation {
  std::string counter_file;  // memory.oom_control (v1) or memory.events (v2); empty: none found
  std::string cgroup_dir;    // the memory cgroup's directory
  bool v1 = false;           // notifications via cgroup.event_control + eventfd
};

// From the text of /proc/<pid>/cgroup. `cgroup_root` is where hierarchies
// are mounted ("/sys/fs/cgroup"); `unified_root` says that root itself is a
// cgroup v2 mount (a pure v2 host), in which case the "0::" line applies.
OomCounterLocation LocateOomCounter(std::string_view proc_cgroup, std::string_view cgroup_root,
                                    bool unified_root);

// The "oom_kill <n>" value of a memory.oom_control or memory.events text;
// -1 when absent or malformed.
long ParseOomKillCount(std::string_view text);

}  // namespace berth::monitor
