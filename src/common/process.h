// Running a helper program (runc, crun, CNI plugins) and collecting its
// output, with a deadline. Every error names the program.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

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

// Formats "argv[0] ... failed (exit N): <stderr>" for error messages.
std::string DescribeFailure(const std::vector<std::string>& argv, const ProcessResult& r);

}  // namespace berth
