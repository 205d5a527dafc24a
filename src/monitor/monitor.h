// berth-monitor: the small process that parents one container (the role of
// CRI-O's conmon). docs/monitor.md is the written contract; this header is the
// in-process API used by the binary's main() and nothing else links it.
//
// Plain C++ and libc only: the binary is linked statically and must stay well
// under a megabyte of resident memory, so no Status, fmt, logging library or
// iostreams here.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "monitor/protocol.h"

namespace berth::monitor {

struct MonitorConfig {
  std::string id;            // container id, passed to the runtime
  std::string bundle;        // absolute path of the OCI bundle
  std::string runtime;       // OCI runtime binary (absolute path, or a name looked up in PATH)
  std::string runtime_root;  // the runtime's state directory (runc --root)
  std::vector<std::string> runtime_args;  // extra global runtime flags, before "create"
  std::string log_path;                   // CRI log file
  std::string exit_file;                  // default <bundle>/exit
  std::string oom_file;                   // default <bundle>/oom
  std::string attach_socket;              // default <bundle>/attach
  std::string pid_file;                   // default <bundle>/pid
  std::string monitor_pid_file;           // optional
  std::string monitor_log;                // optional; diagnostics of the monitor itself
  int sync_fd = -1;                       // optional; see protocol.h
  bool terminal = false;
  bool stdin_open = false;
  bool stdin_once = false;
  // Run `<runtime> delete --force <id>` once the init has been reaped, before
  // the exit file is written, and record the outcome in it (runtime_deleted).
  bool delete_on_exit = false;
  size_t log_line_max = kDefaultLogLineMax;
};

// Parses argv (flags as in docs/monitor.md) into *cfg, filling defaults.
// Returns "" on success, otherwise a usage error that names the flag. Sets
// *info_only when --help or --version was printed to stdout.
std::string ParseMonitorArgs(int argc, char** argv, MonitorConfig* cfg, bool* info_only);

// Runs the monitor in the calling process, which must already be detached
// from its spawner (main() forks and calls setsid first): becomes a child
// subreaper, runs `<runtime> create`, reports on the sync fd, pumps output to
// the log and attach clients until the container exits, then writes the exit
// file. Returns the process exit status: 0 once the exit file is written, 1 if
// the container could not be created or monitored.
int RunMonitor(const MonitorConfig& cfg);

}  // namespace berth::monitor
