// The processes of this host, as /proc shows them.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace berth {

struct ProcessInfo {
  pid_t pid = 0;
  std::string cmdline;  // argv joined by NULs, each ending in one; empty for kernel threads
};

// One pass over /proc. Processes that exit meanwhile may or may not be listed.
std::vector<ProcessInfo> ListProcesses();

// `argv` as /proc/<pid>/cmdline holds it: each argument followed by a NUL.
std::string CmdlineOf(const std::vector<std::string>& argv);

}  // namespace berth
