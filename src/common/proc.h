// The processes of this host, as /proc shows them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth {

struct ProcessInfo {
  pid_t pid = 0;
  std::string cmdline;  // argv joined by NULs, each ending in one; empty for kernel threads
};

// One pass over /proc. Processes that exit meanwhile may or may not be listed.
std::vector<ProcessInfo> ListProcesses();

// The first fields of /proc/<pid>/stat after the command name.
struct ProcessStat {
  char state = 0;
  pid_t ppid = 0;
  pid_t pgrp = 0;
  // CPU time in clock ticks (sysconf(_SC_CLK_TCK)): the process's own, and
  // that of the children it has waited for.
  int64_t utime = 0, stime = 0, cutime = 0, cstime = 0;
};

// Parses the text of a /proc/<pid>/stat file. The command name in parentheses
// may itself hold spaces and parentheses, so the fields start after the last
// ')'. nullopt when the text does not have that shape.
std::optional<ProcessStat> ParseProcessStat(std::string_view stat);

// ParseProcessStat of /proc/<pid>/stat; nullopt when the process is gone.
std::optional<ProcessStat> ReadProcessStat(pid_t pid);

// `argv` as /proc/<pid>/cmdline holds it: each argument followed by a NUL.
std::string CmdlineOf(const std::vector<std::string>& argv);

}  // namespace berth
