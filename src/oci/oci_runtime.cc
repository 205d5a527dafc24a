#include "oci/oci_runtime.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/fs.h"

namespace berth::oci {

namespace {

constexpr auto kCommandTimeout = std::chrono::seconds(60);

bool SaysNotExist(const ProcessResult& r) {
  const std::string& e = r.err.empty() ? r.out : r.err;
  return e.find("does not exist") != std::string::npos ||
         e.find("not found") != std::string::npos || e.find("No such file") != std::string::npos;
}

class CliRuntime final : public OciRuntime {
 public:
  CliRuntime(std::string name, std::string binary, std::string root,
             std::vector<std::string> global_args)
      : name_(std::move(name)),
        binary_(std::move(binary)),
        root_(std::move(root)),
        global_args_(std::move(global_args)) {}

  const std::string& handler_name() const override { return name_; }
  const std::string& binary() const override { return binary_; }
  const std::string& state_root() const override { return root_; }
  const std::vector<std::string>& global_args() const override { return global_args_; }

  Status Start(const std::string& id) override {
    return Annotate(RunChecked({"start", id}), StrCat("start container ", id));
  }

  Status Kill(const std::string& id, int signal, bool all) override {
    std::vector<std::string> args = {"kill"};
    if (all) args.push_back("--all");
    args.push_back(id);
    args.push_back(std::to_string(signal));
    return Annotate(RunChecked(args), StrCat("signal ", signal, " to container ", id));
  }

  Status Delete(const std::string& id, bool force) override {
    std::vector<std::string> args = {"delete"};
    if (force) args.push_back("--force");
    args.push_back(id);
    ASSIGN_OR_RETURN(ProcessResult r, Run(args));
    if (r.exit_code == 0 || SaysNotExist(r)) return OkStatus();
    return InternalError(StrCat("delete container ", id, ": ", DescribeFailure(Argv(args), r)));
  }

  StatusOr<RuntimeState> State(const std::string& id) override {
    ASSIGN_OR_RETURN(ProcessResult r, Run({"state", id}));
    if (r.exit_code != 0) {
      if (SaysNotExist(r)) return NotFoundError(StrCat(name_, " does not know container ", id));
      return InternalError(DescribeFailure(Argv({"state", id}), r));
    }
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded()) {
      return InternalError(StrCat(name_, " state ", id, " printed no JSON"));
    }
    RuntimeState s;
    s.status = j.value("status", "");
    s.pid = j.value("pid", 0);
    return s;
  }

  StatusOr<ProcessResult> ExecSync(const std::string& id, const std::string& process_json,
                                   std::chrono::milliseconds timeout) override {
    // The process spec goes through a file: runc reads --process from a path.
    std::string path = StrCat(root_, "/exec-", id.substr(0, 12), "-", RandomHex(6), ".json");
    RETURN_IF_ERROR(WriteFileAtomic(path, process_json, 0600));
    ScopeGuard remove([&] { ::unlink(path.c_str()); });
    std::string pid_file = path + ".pid";
    ScopeGuard remove_pid([&] { ::unlink(pid_file.c_str()); });
    RunOptions opts;
    if (timeout.count() > 0) opts.timeout = timeout;
    // At the timeout the exec'd process is killed first, so that the runtime
    // reaps it and exits; killing the runtime instead would orphan the
    // process to the host's init.
    opts.on_timeout = [&] {
      auto pid = ReadFile(pid_file);
      if (pid.ok() && std::atoi(pid->c_str()) > 0) ::kill(std::atoi(pid->c_str()), SIGKILL);
    };
    return RunProcess(Argv({"exec", "--pid-file", pid_file, "--process", path, id}), opts);
  }

  Status Update(const std::string& id, const std::string& resources_json) override {
    std::string path = StrCat(root_, "/update-", id.substr(0, 12), "-", RandomHex(6), ".json");
    RETURN_IF_ERROR(WriteFileAtomic(path, resources_json, 0600));
    ScopeGuard remove([&] { ::unlink(path.c_str()); });
    return Annotate(RunChecked({"update", "--resources", path, id}),
                    StrCat("update resources of container ", id));
  }

 private:
  std::vector<std::string> Argv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {binary_, "--root", root_};
    argv.insert(argv.end(), global_args_.begin(), global_args_.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  StatusOr<ProcessResult> Run(const std::vector<std::string>& args) {
    RunOptions opts;
    opts.timeout = kCommandTimeout;
    return RunProcess(Argv(args), opts);
  }

  Status RunChecked(const std::vector<std::string>& args) {
    ASSIGN_OR_RETURN(ProcessResult r, Run(args));
    if (r.exit_code != 0) {
      if (SaysNotExist(r)) return NotFoundError(DescribeFailure(Argv(args), r));
      return InternalError(DescribeFailure(Argv(args), r));
    }
    return OkStatus();
  }

  std::string name_, binary_, root_;
  std::vector<std::string> global_args_;
};

}  // namespace

std::unique_ptr<OciRuntime> NewCliRuntime(std::string handler_name, std::string binary,
                                          std::string state_root,
                                          std::vector<std::string> global_args) {
  // Process and resource files of calls a crashed berthd never finished.
  // The runtime's own entries are directories named by container id.
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(state_root, ec)) {
    std::string name = e.path().filename().string();
    if ((name.starts_with("exec-") || name.starts_with("update-")) && !e.is_directory()) {
      std::filesystem::remove(e.path(), ec);
    }
  }
  return std::make_unique<CliRuntime>(std::move(handler_name), std::move(binary),
                                      std::move(state_root), std::move(global_args));
}

}  // namespace berth::oci
