#include "support/berthd_process.h"

#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/fs.h"
#include "support/berthd_process_exec.h"

namespace berth::testing {

namespace fs = std::filesystem;

namespace {

constexpr std::chrono::seconds kStopTimeout{20};

constexpr const char* kSanitizerOptionVars[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
                                                "TSAN_OPTIONS"};

// The value of `key` in a sanitizer option string ("a=1:log_path=/x:b=2"); "" if absent.
std::string SanitizerOption(std::string_view options, std::string_view key) {
  std::string found;
  for (std::string_view rest = options; !rest.empty();) {
    size_t colon = rest.find(':');
    std::string_view item = rest.substr(0, colon);
    if (item.starts_with(key) && item.size() > key.size() && item[key.size()] == '=') {
      found = std::string(item.substr(key.size() + 1));
    }
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
  }
  return found;
}

// A clean environment: no proxy variables for libcurl, nothing from the test's shell but the
// sanitizers' options, with reports going to `sanitizer_dir`.
std::vector<std::string> DaemonEnv(const fs::path& home, const fs::path& sanitizer_dir) {
  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      StrCat("HOME=", home.string()), "LANG=C"};
  for (const char* var : kSanitizerOptionVars) {
    const char* value = ::getenv(var);
    if (value == nullptr) continue;
    // A later log_path wins over an earlier one.
    env.push_back(StrCat(var, "=", value, ":log_path=", (sanitizer_dir / "report").string()));
  }
  return env;
}

}  // namespace

BerthdProcess::BerthdProcess(std::string binary) : binary_(std::move(binary)) {}

BerthdProcess::~BerthdProcess() {
  if (running()) {
    Status s = Stop();
    if (!s.ok()) Kill();
  }
  ResetStubs();
  if (!dir_.empty()) (void)RemoveAll(dir_);
}

Status BerthdProcess::Prepare() {
  if (!dir_.empty()) return OkStatus();
  std::string tmpl = "/tmp/bt-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus(errno, StrCat("mkdtemp ", tmpl));
  dir_ = tmpl;
  for (const fs::path& d : {root(), state(), certs_dir(), cni_dir(), dir_ / "berth.d"}) {
    RETURN_IF_ERROR(MakeDirs(d, 0755));
  }
  // An explicit config file: without it berthd would read /etc/berth/config.toml, and the
  // default auth files (/root/.docker/config.json, ...) would apply to the test registry.
  return WriteFileAtomic(dir_ / "config.toml", "[registry]\nauth_files = []\n");
}

Status BerthdProcess::AddRegistryHost(std::string_view registry_host,
                                      std::string_view endpoint_url) {
  RETURN_IF_ERROR(Prepare());
  fs::path host_dir = certs_dir() / std::string(registry_host);
  RETURN_IF_ERROR(MakeDirs(host_dir, 0755));
  std::string toml = StrCat("server = \"", endpoint_url, "\"\n\n[host.\"", endpoint_url,
                            "\"]\n  capabilities = [\"pull\", \"resolve\"]\n");
  return WriteFileAtomic(host_dir / "hosts.toml", toml);
}

Status BerthdProcess::Start(std::vector<std::string> extra_args,
                            std::chrono::seconds ready_timeout) {
  if (running()) return FailedPreconditionError(StrCat("berthd already running as pid ", pid_));
  if (binary_.empty()) {
    return FailedPreconditionError("no berthd binary given to BerthdProcess");
  }
  RETURN_IF_ERROR(Prepare());
  extra_args_ = std::move(extra_args);
  std::vector<std::string> argv = {binary_,
                                   "--socket",
                                   socket_path().string(),
                                   "--root",
                                   root().string(),
                                   "--state",
                                   state().string(),
                                   "--registry-config-dir",
                                   certs_dir().string(),
                                   "--cni-conf-dir",
                                   cni_dir().string(),
                                   "--log-level",
                                   "debug",
                                   "--config",
                                   (dir_ / "config.toml").string(),
                                   "--config-dropin-dir",
                                   (dir_ / "berth.d").string()};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  {
    // Marks each start in the log, which is shared by restarts.
    std::string cmdline;
    for (const auto& a : argv) cmdline += (cmdline.empty() ? "" : " ") + a;
    std::ofstream log(log_path(), std::ios::app);
    log << "### test: starting " << cmdline << "\n";
    if (!log.flush()) return InternalError(StrCat("cannot write ", log_path().string()));
  }
  if (sanitizer_dir_.empty()) {
    std::string test_log_path;
    for (const char* var : kSanitizerOptionVars) {
      if (const char* value = ::getenv(var); value != nullptr && test_log_path.empty()) {
        test_log_path = SanitizerOption(value, "log_path");
      }
    }
    sanitizer_dir_ = test_log_path.empty()
                         ? dir_ / "sanitizer"
                         : fs::path(test_log_path).parent_path() / dir_.filename();
  }
  RETURN_IF_ERROR(MakeDirs(sanitizer_dir_, 0755));
  ASSIGN_OR_RETURN(pid_, internal::SpawnLogged(argv, DaemonEnv(dir_, sanitizer_dir_), log_path()));
  Status s = WaitReady(ready_timeout);
  if (!s.ok()) {
    if (running()) Kill();
    return Status(s.code(), StrCat(s.message(), "\n--- berthd log (tail) ---\n", LogTail()));
  }
  return OkStatus();
}

Status BerthdProcess::WaitReady(std::chrono::seconds timeout) {
  ResetStubs();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Status last = UnavailableError("socket not created yet");
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto exit = internal::PollChild(pid_)) {
      pid_ = -1;
      return UnavailableError(StrCat("berthd exited (", exit->ToString(), ") before serving on ",
                                     socket_path().string()));
    }
    std::error_code ec;
    if (!fs::exists(socket_path(), ec)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    if (!channel_) {
      grpc::ChannelArguments args;
      // Reconnect quickly: the socket may exist before the server accepts.
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
      args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
      args.SetMaxReceiveMessageSize(32 << 20);
      channel_ = grpc::CreateCustomChannel(StrCat("unix://", socket_path().string()),
                                           grpc::InsecureChannelCredentials(), args);
      runtime_ = runtime::v1::RuntimeService::NewStub(channel_);
      images_ = runtime::v1::ImageService::NewStub(channel_);
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    ctx.set_wait_for_ready(true);
    runtime::v1::VersionRequest req;
    runtime::v1::VersionResponse resp;
    grpc::Status g = runtime_->Version(&ctx, req, &resp);
    if (g.ok()) return wait_for_probes_ ? WaitForHandlerProbes(deadline) : OkStatus();
    last = Status(static_cast<StatusCode>(g.error_code()), g.error_message());
    if (g.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return DeadlineExceededError(StrCat("berthd did not answer Version on ", socket_path().string(),
                                      " within ", timeout.count(),
                                      "s; last error: ", last.ToString()));
}

Status BerthdProcess::WaitForHandlerProbes(std::chrono::steady_clock::time_point deadline) {
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    runtime::v1::StatusRequest req;
    req.set_verbose(true);
    runtime::v1::StatusResponse resp;
    grpc::Status g = runtime_->Status(&ctx, req, &resp);
    if (!g.ok()) return Status(static_cast<StatusCode>(g.error_code()), g.error_message());
    auto it = resp.info().find("runtimeHandlers");
    if (it == resp.info().end()) return InternalError("verbose Status lacks runtimeHandlers");
    nlohmann::json handlers = nlohmann::json::parse(it->second, nullptr, false);
    bool probing = false;
    for (const auto& [name, h] : handlers.items()) {
      if (h.value("probing", false)) probing = true;
    }
    if (!probing) return OkStatus();
    last = it->second;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return DeadlineExceededError(StrCat("berthd still probes its runtime handlers: ", last));
}

Status BerthdProcess::Stop() {
  if (!running()) return OkStatus();
  pid_t pid = pid_;
  pid_ = -1;
  ResetStubs();
  StatusOr<internal::ChildExit> exit = internal::TerminateChild(pid, kStopTimeout);
  if (!exit.ok()) {
    return Status(exit.status().code(), StrCat("berthd: ", exit.status().message(),
                                               "\n--- berthd log (tail) ---\n", LogTail()));
  }
  if (!exit->exited || exit->exit_code != 0) {
    return InternalError(StrCat("berthd (pid ", pid, ") did not exit cleanly on SIGTERM: ",
                                exit->ToString(), "\n--- berthd log (tail) ---\n", LogTail()));
  }
  return OkStatus();
}

void BerthdProcess::Kill() {
  if (!running()) return;
  internal::KillChild(pid_);
  pid_ = -1;
  ResetStubs();
}

Status BerthdProcess::Restart(bool kill) {
  if (kill) {
    Kill();
  } else {
    RETURN_IF_ERROR(Stop());
  }
  return Start(extra_args_);
}

void BerthdProcess::ResetStubs() {
  runtime_.reset();
  images_.reset();
  channel_.reset();
}

std::string BerthdProcess::Log() const {
  if (dir_.empty()) return "";
  StatusOr<std::string> log = ReadFile(log_path());
  return log.ok() ? *log : "";
}

std::string BerthdProcess::SanitizerReports() const {
  std::string out;
  std::error_code ec;
  if (sanitizer_dir_.empty()) return out;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(sanitizer_dir_, ec)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    StatusOr<std::string> text = ReadFile(f);
    out += StrCat("=== ", f.string(), " ===\n", text.ok() ? *text : text.status().ToString(), "\n");
  }
  return out;
}

std::string BerthdProcess::LogTail(size_t max_bytes) const {
  std::string log = Log();
  if (log.size() > max_bytes) log = "..." + log.substr(log.size() - max_bytes);
  return log;
}

}  // namespace berth::testing
