// Running a helper program (runc, crun, CNI plugins) and collecting its
// output, with a deadline. Every error names the program.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/status.h"

namespace berth {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string out;     // stdout, truncated at RunOptions::max_output
  std::string err;     // stderr, likewise
  bool timed_out = false;
};

struct RunOptions {
  std::vector<std::string> env;  // "K=V"; empty means inherit
  std::string stdin_data;
  std::optional<std::chrono::milliseconds> timeout;  // SIGKILL when exceeded
  // Called once at the timeout before anything is killed; the program then
  // gets `timeout_grace` to exit on its own (e.g. `runc exec` after its
  // process was killed) before its process group is SIGKILLed.
  std::function<void()> on_timeout;
  std::chrono::milliseconds timeout_grace{2000};
  size_t max_output = 16 << 20;
  std::string cwd;
};

// Runs argv[0] (a path, or a name looked up in PATH) and waits for it.
// A non-zero exit is not an error here: the caller reads exit_code.
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
