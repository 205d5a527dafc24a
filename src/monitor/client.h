// berthd's side of berth-monitor: spawning it, reading what it reports (sync
// pipe, exit file) and talking to its attach socket. The wire contract is
// docs/monitor.md and monitor/protocol.h; this library is what the container
// module and the streaming server use, and it may link berth_common.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/fs.h"
#include "common/status.h"
#include "monitor/protocol.h"

namespace berth::monitor {

// Everything berth-monitor needs for one container. Paths must be absolute.
struct MonitorSpec {
  std::filesystem::path monitor_binary;  // the berth-monitor executable
  std::string container_id;
  std::filesystem::path bundle;            // OCI bundle (config.json, rootfs)
  std::filesystem::path runtime;           // e.g. /usr/sbin/runc
  std::filesystem::path runtime_root;      // runtime state dir (runc --root)
  std::vector<std::string> runtime_args;   // extra global runtime flags, e.g. "--systemd-cgroup"
  std::filesystem::path log_path;          // CRI log file; its directory must exist
  std::filesystem::path exit_file;         // empty: <bundle>/exit
  std::filesystem::path attach_socket;     // empty: <bundle>/attach
  std::filesystem::path pid_file;          // empty: <bundle>/pid (the runtime's --pid-file)
  std::filesystem::path monitor_pid_file;  // empty: not written
  std::filesystem::path monitor_log;       // empty: the monitor's own diagnostics are discarded
  bool terminal = false;                   // pty instead of pipes (process.terminal in config.json)
  bool stdin_open = false;                 // CRI ContainerConfig.stdin
  bool stdin_once = false;                 // CRI ContainerConfig.stdin_once (needs stdin_open)
  bool delete_on_exit = false;             // the monitor deletes the runtime's state at the exit
  size_t log_line_max = 0;                 // 0: kDefaultLogLineMax
  // How long SpawnMonitor waits for the runtime's create to finish.
  std::chrono::milliseconds timeout = std::chrono::seconds(60);

  std::filesystem::path ExitFile() const;      // exit_file or its default
  std::filesystem::path AttachSocket() const;  // attach_socket or its default
  std::filesystem::path PidFile() const;       // pid_file or its default
};

// The command line SpawnMonitor runs (argv[0] is spec.monitor_binary); a
// sync_fd < 0 leaves --sync-fd out. Pure function.
std::vector<std::string> MonitorArgv(const MonitorSpec& spec, int sync_fd);

struct MonitorHandle {
  pid_t monitor_pid = 0;    // the long-lived monitor (not a child of the caller)
  pid_t container_pid = 0;  // init of the created (not yet started) container
};

// Starts berth-monitor for spec.container_id and waits until it reports that
// `<runtime> create` succeeded (the container is then in the runtime's
// "created" state; StartContainer runs `<runtime> start`). The monitor
// detaches (new session, reparented away from the caller), so it survives
// berthd exiting or being killed; the caller never reaps it and learns of
// the container's exit from the exit file.
//
// On error nothing of the monitor remains running (on timeout it is killed),
// but the runtime may have left state behind: the caller's rollback runs
// `<runtime> delete --force <id>`. Thread-safe (posix_spawn, no shared state);
// needs the calling process not to reap children it did not spawn.
StatusOr<MonitorHandle> SpawnMonitor(const MonitorSpec& spec);

// Parses what the monitor wrote on its sync pipe (protocol.h). `id` is only
// used in error messages. "created" yields the handle; "error" yields an
// error carrying the monitor's message.
StatusOr<MonitorHandle> ParseSyncReport(std::string_view text, std::string_view id);

// Contents of the exit file.
struct ExitRecord {
  int exit_code = 0;         // 128 + signal when killed by a signal
  int signal = 0;            // 0 unless killed by a signal
  std::string exit_time;     // RFC 3339 as written, UTC
  int64_t exit_time_ns = 0;  // the same as nanoseconds since the Unix epoch
  bool oom_killed = false;   // the container's memory cgroup saw an OOM kill (best effort)
  pid_t pid = 0;             // host pid of the container's init
  // The monitor had the runtime delete its state of the container (cgroups,
  // state dir) before writing the file: nothing is left to run the runtime for.
  bool runtime_deleted = false;
};

StatusOr<ExitRecord> ParseExitFile(std::string_view text);
// NotFound while the container has not exited (the file appears atomically).
StatusOr<ExitRecord> ReadExitFile(const std::filesystem::path& path);

// The OOM file (<bundle>/oom): OOM kills in the container's memory cgroup
// since it was created, as the monitor last counted them.
StatusOr<int64_t> ParseOomFile(std::string_view text);
// NotFound while the container has had no OOM kill.
StatusOr<int64_t> ReadOomFile(const std::filesystem::path& path);

// "2006-01-02T15:04:05.123456789Z" (any number of fractional digits, 'Z' or a
// +hh:mm/-hh:mm offset) to nanoseconds since the Unix epoch. A time outside
// what int64 nanoseconds hold (before 1678 or after 2262) is INVALID_ARGUMENT.
StatusOr<int64_t> ParseRfc3339Nano(std::string_view text);

// A connection to a monitor's attach socket. Either an attach session (output
// frames, stdin) made by Attach(), or a control connection made by Connect()
// (resize, log reopen). One thread may send while another receives; each
// direction is used by one thread at a time.
class AttachConnection {
 public:
  struct Frame {
    FrameType type;
    std::string payload;
  };

  // Connects and attaches with `flags` (AttachFlags bits); returns once the
  // monitor acknowledged, so no output produced after that is missed.
  static StatusOr<AttachConnection> Attach(const std::filesystem::path& socket, uint8_t flags,
                                           std::chrono::milliseconds timeout);
  static StatusOr<AttachConnection> Connect(const std::filesystem::path& socket);

  // Sends container stdin (split into frames as needed). Blocks while the
  // monitor's stdin queue is full.
  Status SendStdin(std::string_view data);
  // This session's stdin ended; with stdin_once the container's stdin closes.
  Status CloseStdin();
  // Terminal window size; ignored by the monitor without a terminal.
  Status Resize(uint16_t rows, uint16_t cols);
  // Reopens the container log file and waits for the monitor's answer. Output
  // frames arriving meanwhile are dropped (use a control connection).
  Status ReopenLog(std::chrono::milliseconds timeout);

  // Next frame from the monitor: kStdout/kStderr output, then kExit with the
  // exit code as payload. DeadlineExceeded on timeout; Unavailable once the
  // monitor closed the connection.
  StatusOr<Frame> Receive(std::chrono::milliseconds timeout);

  int fd() const { return fd_.get(); }  // pollable for input

 private:
  AttachConnection(UniqueFd fd, std::string socket)
      : fd_(std::move(fd)), socket_(std::move(socket)) {}
  Status SendFrame(FrameType type, std::string_view payload);

  UniqueFd fd_;
  std::string socket_;
};

// One-shot ReopenContainerLog: the log file is reopened at its path (create
// if renamed away) before this returns OK.
Status ReopenContainerLog(const std::filesystem::path& attach_socket,
                          std::chrono::milliseconds timeout);

}  // namespace berth::monitor
