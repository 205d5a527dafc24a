// Child-process plumbing behind BerthdProcess: fork/exec with output to a log file, signals,
// and reaping. Kept apart from berthd_process.h on purpose: <signal.h> defines macros named
// SIGKILL, SIGTERM, ... which clash with the constants of the CRI proto's `Signal` enum, so
// the code that sends signals lives in a translation unit that never includes the proto.
//
// Thread safety: the functions are stateless, but a pid must be reaped by one caller only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::testing::internal {

// How a child ended.
struct ChildExit {
  bool exited = false;  // normal exit: see exit_code
  int exit_code = -1;
  int signal = 0;  // killed by this signal when !exited
  std::string ToString() const;
};

// Starts argv[0] (an absolute path) with argv, the environment `env` ("K=V" strings), stdin
// from /dev/null and stdout+stderr appended to `log_file`, with an empty signal mask. The
// child gets SIGKILL if the calling thread dies (PR_SET_PDEATHSIG), so a crashed test leaves
// no daemon behind: call this from the thread that lives as long as the child (the test's).
StatusOr<pid_t> SpawnLogged(const std::vector<std::string>& argv,
                            const std::vector<std::string>& env,
                            const std::filesystem::path& log_file);

// Reaps `pid` if it has ended, without blocking; nullopt while it runs.
std::optional<ChildExit> PollChild(pid_t pid);

// Sends SIGTERM and waits up to `timeout` for the child to end. If it does not, sends
// SIGKILL, reaps it and returns DEADLINE_EXCEEDED. Otherwise returns how it ended.
StatusOr<ChildExit> TerminateChild(pid_t pid, std::chrono::milliseconds timeout);

// Sends SIGKILL and reaps the child.
ChildExit KillChild(pid_t pid);

}  // namespace berth::testing::internal
