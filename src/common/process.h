// The one way Berth runs other programs (runc, crun, CNI plugins, criu,
// berth-monitor): posix_spawn (no fork of a big multi-threaded daemon), a
// pidfd to wait for the exit, stdin from a memfd, a deadline, bounded output.
// Every error names the program. The only other spawn sites are the ones
// that must run code of ours in the child: the adopt_orphans subreaper here,
// berth-pause's double fork (sandbox/) and the user-namespace helpers
// (common/userns.cc).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/fs.h"
#include "common/status.h"

namespace berth {

struct ProcessResult {
  int exit_code = -1;          // 128 + signal when killed by a signal
  int signal = 0;              // the signal that killed it; 0 when it exited
  std::string out;             // stdout: its first RunOptions::max_output bytes
  std::string err;             // stderr: bounded likewise (see RunOptions::max_stderr)
  bool out_truncated = false;  // the program wrote more than was kept
  bool err_truncated = false;
  bool timed_out = false;
};

struct RunOptions {
  std::vector<std::string> env;  // "K=V"; empty means inherit
  // The program's stdin, as a memfd holding all of it (empty: /dev/null):
  // no writer loop, and no SIGPIPE when the program exits without reading.
  std::string stdin_data;
  std::optional<std::chrono::milliseconds> timeout;  // SIGKILL when exceeded
  // Called once at the timeout before anything is killed; the program then
  // gets `timeout_grace` to exit on its own (e.g. `runc exec` after its
  // process was killed) before its process group is SIGKILLed.
  std::function<void()> on_timeout;
  std::chrono::milliseconds timeout_grace{2000};
  size_t max_output = 16 << 20;
  // stderr: at most this many bytes (0: max_output), its last ones when
  // keep_stderr_tail (where the error message of a long log usually is).
  size_t max_stderr = 0;
  bool keep_stderr_tail = false;
  // After the program exits, how long to keep reading output that a process
  // it left behind (and that inherited its stdout) may still write; then the
  // result is returned without waiting for EOF.
  std::chrono::milliseconds drain_after_exit{1000};
  std::string cwd;
};

// Runs argv[0] (a path, or a name looked up in PATH) in its own process
// group, with default signal dispositions, an empty signal mask and no
// descriptor but stdio, and waits for it. A non-zero exit is not an error
// here: the caller reads exit_code. At the timeout the process group is
// SIGKILLed (after on_timeout and its grace) and timed_out is set.
// NOT_FOUND when the program cannot be executed. Thread-safe: it reaps only
// its own child.
StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                   const RunOptions& options = {});

struct SpawnOptions {
  std::vector<std::string> env;  // "K=V"; empty means inherit
  std::string cwd;
  // Descriptors that become the program's stdin, stdout and stderr (dup'ed;
  // the caller keeps its own); -1 means /dev/null.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  // More descriptors for the program, as {number in the program, the
  // caller's descriptor} (dup'ed; numbers >= 3). Every other descriptor of
  // the caller is closed in the program (not so with adopt_orphans, which
  // keeps its historical fork-based child).
  std::vector<std::pair<int, int>> extra_fds;
  // Run the program below a subreaper: a small fork of this process (it
  // never execs) that is the program's parent, adopts whatever the program
  // leaves running when it exits (as `runc exec --detach` leaves the exec'd
  // process), reaps all of them and reports each exit, and exits once the
  // last one is gone. That way the exit code of a process the program
  // detached is known without this process becoming a subreaper itself.
  bool adopt_orphans = false;
};

// A program started by SpawnProcess, not waited for yet. Not thread-safe
// except Signal(): one thread at a time waits. Destroying it SIGKILLs the
// program's process group if it has not exited and reaps it. Adopted
// processes are the owner's to kill or wait for (WaitAdopted) before; any
// still running then are left to init, and the subreaper is reaped.
class Subprocess {
 public:
  Subprocess() = default;
  Subprocess(Subprocess&& o) noexcept;
  Subprocess& operator=(Subprocess&& o) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();

  pid_t pid() const { return pid_; }  // the program (its own process group)
  const std::string& name() const { return name_; }

  // Waits for the program to exit and returns its exit code (128 + signal
  // when killed). DEADLINE_EXCEEDED at `deadline`. Idempotent.
  StatusOr<int> Wait(std::optional<std::chrono::steady_clock::time_point> deadline = {});
  // Signals the program's process group, unless the program was reaped.
  void Signal(int sig);

  // adopt_orphans only. Readable whenever the subreaper reported an exit;
  // call PollExits() then. It reaches EOF when the subreaper is done.
  int exits_fd() const { return report_.get(); }
  // Whether the subreaper is done (every report was read).
  bool reports_ended() const { return report_eof_; }
  // Reads the exit reports available now, without blocking.
  Status PollExits();
  // The exit code of `pid` (the program or a process it left behind) if its
  // exit has been reported, else std::nullopt. Only pids the subreaper reaped
  // are reported, so an adopted pid cannot be confused with a recycled one.
  std::optional<int> ExitOf(pid_t pid) const;
  // Blocks until `pid` (adopted) exits; DEADLINE_EXCEEDED at `deadline`.
  // FAILED_PRECONDITION if the subreaper finished without reporting it (it
  // was never adopted).
  StatusOr<int> WaitAdopted(pid_t pid,
                            std::optional<std::chrono::steady_clock::time_point> deadline = {});

 private:
  friend StatusOr<Subprocess> SpawnProcess(const std::vector<std::string>&, const SpawnOptions&);
  // Reads reports until `done` holds, EOF or the deadline (-1 ms: none).
  Status ReadReports(const std::function<bool()>& done,
                     std::optional<std::chrono::steady_clock::time_point> deadline);
  void Release();

  std::string name_;   // argv[0], for messages
  pid_t pid_ = -1;     // the program
  pid_t reaper_ = -1;  // our direct child: the subreaper, or the program itself
  bool reaper_reaped_ = false;
  UniqueFd report_;         // adopt_orphans: "<pid> <exit code>\n" lines from the subreaper
  std::string report_buf_;  // an unfinished line
  bool report_eof_ = false;
  std::map<pid_t, int> exits_;  // reported exits
};

// Starts argv[0] (a path, or a name looked up in PATH) in its own process
// group with the given stdio and returns at once. NOT_FOUND when it cannot be
// executed.
StatusOr<Subprocess> SpawnProcess(const std::vector<std::string>& argv,
                                  const SpawnOptions& options = {});

// Formats "argv[0] ... failed (exit N): <stderr>" for error messages.
std::string DescribeFailure(const std::vector<std::string>& argv, const ProcessResult& r);

}  // namespace berth
