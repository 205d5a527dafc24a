// Running one CNI plugin binary: environment, stdin, captured stdout/stderr,
// a deadline, on common/process.h's RunProcess. Internal to berth_network
// (CniManager uses it); no CNI semantics here.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace berth::network {

struct ExecOutput {
  int exit_code = 0;  // valid when !signaled
  bool signaled = false;
  int signal = 0;   // valid when signaled
  std::string out;  // stdout
  std::string err;  // stderr (kept to its last 64 KiB)
};

// Runs `binary` (argv = {binary}) with exactly the environment `env`
// ("KEY=value" entries) and `stdin_data` as its standard input, in its own
// process group, and waits for it. DEADLINE_EXCEEDED (naming the binary) if
// it has not finished within `timeout`: the whole process group is killed
// with SIGKILL. A non-zero exit is not an error here; the caller judges it.
// Thread-safe; it reaps only its own child.
StatusOr<ExecOutput> ExecWithTimeout(const std::filesystem::path& binary,
                                     const std::vector<std::string>& env,
                                     std::string_view stdin_data,
                                     std::chrono::milliseconds timeout);

}  // namespace berth::network
