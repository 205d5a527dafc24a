#include "runtime/v1/api.grpc.pb.h"
// (the CRI header first: its Signal enum clashes with <signal.h>)

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "bench/startup_bench.h"
#include "common/fs.h"

namespace berth::bench {

namespace {

namespace cri = runtime::v1;
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

StatusOr<pid_t> Spawn(const StartupBenchOptions& o) {
  UniqueFd log(::open(o.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log.valid()) return ErrnoStatus(errno, StrCat("open ", o.log_file));
  std::vector<char*> argv;
  for (const auto& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    ::dup2(log.get(), 1);
    ::dup2(log.get(), 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// One attempt on a fresh channel, so that no reconnect backoff delays the
// next one (crictl, too, connects anew each time it is run).
bool VersionAnswers(const std::string& endpoint) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 1);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1);
  auto stub = cri::RuntimeService::NewStub(
      grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  cri::VersionRequest req;
  cri::VersionResponse resp;
  return stub->Version(&ctx, req, &resp).ok();
}

bool RuntimeReady(cri::RuntimeService::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  cri::StatusRequest req;
  cri::StatusResponse resp;
  if (!stub.Status(&ctx, req, &resp).ok()) return false;
  for (const auto& c : resp.status().conditions()) {
    if (c.type() == "RuntimeReady") return c.status();
  }
  return false;
}

// Starts the daemon and times it; the daemon keeps running.
StatusOr<StartupRun> StartAndTime(const StartupBenchOptions& o, pid_t* pid) {
  std::string socket = o.endpoint.substr(std::string_view("unix://").size());
  Clock::time_point t0 = Clock::now();
  ASSIGN_OR_RETURN(*pid, Spawn(o));
  StartupRun run;
  const auto deadline = t0 + std::chrono::seconds(60);
  for (;;) {
    if (Clock::now() > deadline) return DeadlineExceededError("no Version answer within 60 s");
    int status = 0;
    if (::waitpid(*pid, &status, WNOHANG) == *pid) {
      *pid = 0;
      return InternalError(StrCat("the daemon exited (status ", status, "); see ", o.log_file));
    }
    struct stat st;
    if (::stat(socket.c_str(), &st) == 0 && VersionAnswers(o.endpoint)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  run.first_answer_ms = MsSince(t0);
  auto stub = cri::RuntimeService::NewStub(
      grpc::CreateChannel(o.endpoint, grpc::InsecureChannelCredentials()));
  while (!RuntimeReady(*stub)) {
    if (Clock::now() > deadline) return DeadlineExceededError("RuntimeReady not true within 60 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  run.runtime_ready_ms = MsSince(t0);
  return run;
}

void End(pid_t pid, int signal) {
  if (pid <= 0) return;
  ::kill(pid, signal);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

StatusOr<std::vector<StartupRun>> RunStartupBench(const StartupBenchOptions& options) {
  if (options.command.empty() || options.command[0].empty() || options.command[0][0] != '/') {
    return InvalidArgumentError("the daemon command must start with an absolute path");
  }
  if (!options.endpoint.starts_with("unix://")) {
    return InvalidArgumentError("the endpoint must be unix:///path");
  }
  pid_t pid = 0;
  ScopeGuard stop([&] { End(pid, SIGTERM); });
  ASSIGN_OR_RETURN(StartupRun warm_up, StartAndTime(options, &pid));
  (void)warm_up;
  std::vector<std::string> pods;
  if (options.keep_pods > 0) {
    LifecycleBenchOptions p = options.pods;
    p.endpoint = options.endpoint;
    ASSIGN_OR_RETURN(pods, StartRunningPods(p, options.keep_pods));
  }
  std::vector<StartupRun> runs;
  for (int i = 0; i < options.runs; ++i) {
    End(pid, options.kill ? SIGKILL : SIGTERM);
    pid = 0;
    // Let what the daemon left behind settle, as it would between a crash
    // and its restart by systemd.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ASSIGN_OR_RETURN(StartupRun run, StartAndTime(options, &pid));
    runs.push_back(run);
  }
  if (!pods.empty()) RETURN_IF_ERROR(RemovePodsById(options.endpoint, pods));
  return runs;
}

}  // namespace berth::bench
