#include "network/plugin_exec.h"

#include "common/process.h"

namespace berth::network {

StatusOr<ExecOutput> ExecWithTimeout(const std::filesystem::path& binary,
                                     const std::vector<std::string>& env,
                                     std::string_view stdin_data,
                                     std::chrono::milliseconds timeout) {
  const std::string name = binary.string();
  RunOptions opts;
  // Never empty for CNI (CNI_COMMAND is always set), so never the daemon's.
  opts.env = env;
  opts.stdin_data = std::string(stdin_data);
  opts.timeout = timeout;
  // stdout past 16 MiB cannot be a valid result anyway; of stderr keep the
  // tail, where a plugin's error is.
  opts.max_output = 16 << 20;
  opts.max_stderr = 64 << 10;
  opts.keep_stderr_tail = true;
  auto run = RunProcess({name}, opts);
  if (!run.ok()) return Annotate(run.status(), StrCat("execute CNI plugin ", name));
  if (run->timed_out) {
    return DeadlineExceededError(
        StrCat("CNI plugin ", name, " did not finish within ", timeout.count(), "ms; killed it"));
  }
  ExecOutput out;
  out.signaled = run->signal != 0;
  out.signal = run->signal;
  out.exit_code = out.signaled ? 0 : run->exit_code;
  out.out = std::move(run->out);
  out.err = std::move(run->err);
  return out;
}

}  // namespace berth::network
