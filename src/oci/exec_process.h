// A process started inside a running container, by the OCI runtime (`runc
// exec --detach`) or by the native exec path (oci/native_exec.h, a direct
// child of berthd): its stdio, its exit, signals and terminal size. One
// implementation serves ExecSync (collect the output, with a timeout) and the
// streaming exec (kubectl exec): see OciRuntime::Exec and RunToCompletion.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "common/fs.h"
#include "common/process.h"
#include "common/status.h"

namespace berth::oci {

// How the exec'd process's stdio is set up.
struct ExecIo {
  // A pseudo-terminal (the process JSON must say "terminal": true): stdin and
  // all output go through it; there is no separate stderr.
  bool terminal = false;
  bool stdin = false;           // the caller writes the process's stdin; else /dev/null
  bool stdout = true;           // the caller reads stdout; else /dev/null
  bool stderr = true;           // the caller reads stderr; else it is read and dropped
  uint16_t rows = 0, cols = 0;  // initial terminal size; 0: the runtime's default
};

// Owns the exec'd process: destroying the object SIGKILLs it (and the
// process group it leads) if it still runs, reaps it and closes every
// descriptor. Thread-safety: Kill() may be called from any thread at any
// time; everything else by one thread at a time.
class ExecProcess {
 public:
  // `runtime` is the subreaper of the runtime's exec (it adopted the
  // process); `pid` the process, as the runtime's --pid-file says.
  ExecProcess(std::string description, Subprocess runtime, pid_t pid, ExecIo io, UniqueFd stdin_w,
              UniqueFd stdout_r, UniqueFd stderr_r, UniqueFd terminal);
  // `pid` is a child of this process, not reaped yet, and `pidfd` its pidfd:
  // its exit is read with waitid(P_PIDFD).
  ExecProcess(std::string description, UniqueFd pidfd, pid_t pid, ExecIo io, UniqueFd stdin_w,
              UniqueFd stdout_r, UniqueFd stderr_r, UniqueFd terminal);
  ExecProcess(const ExecProcess&) = delete;
  ExecProcess& operator=(const ExecProcess&) = delete;
  ~ExecProcess();

  pid_t pid() const { return pid_; }
  bool terminal() const { return io_.terminal; }
  const ExecIo& io() const { return io_; }
  const std::string& description() const { return description_; }  // "exec 3 in container <id>"

  // Write end of stdin: the pipe, or the terminal. -1 without stdin or after
  // CloseStdin().
  int stdin_fd() const;
  // Read end of stdout: the pipe, or the terminal. -1 without stdout.
  int stdout_fd() const { return io_.terminal ? terminal_.get() : stdout_.get(); }
  // Read end of stderr; -1 with a terminal. Read it even when io().stderr is
  // false (then drop the data): the runtime needs a pipe for its own errors.
  int stderr_fd() const { return stderr_.get(); }
  // Readable when the exit of the process may have been reported; then call
  // ExitCode(). -1 once every report was read (the process and everything
  // it left behind are reaped).
  int exit_fd() const {
    if (direct_) return exit_code_ ? -1 : pidfd_.get();
    return runtime_.reports_ended() ? -1 : runtime_.exits_fd();
  }

  // The end of stdin: a pipe is closed (the process reads EOF). A terminal
  // cannot be closed without hanging the process up, so input just stops.
  void CloseStdin();
  Status Resize(uint16_t rows, uint16_t cols);
  // Signals the process, and its process group if it leads one; nothing
  // once it has been reaped. Never a recycled pid: the signal goes through a
  // pidfd taken while the process was known to be unreaped.
  void Kill(int sig);
  // The exit code (128 + signal when killed) once the process exited; reads
  // the exit reports available now without blocking.
  std::optional<int> ExitCode();
  // Blocks until the process exits; DEADLINE_EXCEEDED at `deadline`.
  StatusOr<int> Wait(std::optional<std::chrono::steady_clock::time_point> deadline = {});

  // Hands ownership of the stdio descriptors out (the caller closes them).
  UniqueFd TakeStdout() { return std::move(io_.terminal ? terminal_ : stdout_); }
  UniqueFd TakeStderr() { return std::move(stderr_); }

 private:
  std::string description_;
  Subprocess runtime_;
  bool direct_ = false;  // a child of ours, reaped through pidfd_
  pid_t pid_;
  ExecIo io_;
  UniqueFd pidfd_;
  bool leads_group_ = false;
  UniqueFd stdin_, stdout_, stderr_, terminal_;
  bool stdin_closed_ = false;
  std::optional<int> exit_code_;
};

// Collects the output of `process` until it exits and both streams end, each
// stream capped at `max_output` bytes (more is read and dropped). At
// `timeout` (if set) the process is SIGKILLed and the result says timed_out.
// After the exit, output still arriving from processes it left behind is
// read for at most `linger`.
StatusOr<ProcessResult> RunToCompletion(
    ExecProcess& process, std::optional<std::chrono::milliseconds> timeout,
    size_t max_output = 16 << 20,
    std::chrono::milliseconds linger = std::chrono::milliseconds(200));

}  // namespace berth::oci
