// berthctl's entry point: global flags, config resolution, dispatch to the
// command groups, and crictl-style error reporting (a fatal log line on
// stderr, exit status 1).
#pragma once

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace berth::ctl {

// The process surroundings, injectable for tests.
struct AppIO {
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  std::istream* in = nullptr;
  bool err_is_terminal = false;  // colored log lines
  bool real_stdio = false;       // out/in/err are fds 1/0/2 (exec, attach use them directly)
  std::function<std::optional<std::string>(const std::string&)> getenv;
  std::string exe_dir;  // where a crictl.yaml next to the binary is looked for
  // Reads a password after printing the prompt; nullptr: read a line from `in`.
  std::function<StatusOr<std::string>(std::string_view prompt)> read_password;
};

// Runs berthctl with `args` (without the program name); returns the exit code.
int Run(const std::vector<std::string>& args, const AppIO& io);

// Runs berthctl in this process: real stdio, environment and terminal.
int Main(int argc, char** argv);

}  // namespace berth::ctl
