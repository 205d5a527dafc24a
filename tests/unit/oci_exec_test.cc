// OciRuntime::Exec (runc exec) and NativeExecutor::Exec (the native exec
// path), each with RunToCompletion, against a busybox container started with
// the host's `runc run --detach`. Needs root, runc and /bin/busybox
// (busybox-static), like the integration tests.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/numbers.h"
#include "common/process.h"
#include "oci/exec_process.h"
#include "oci/native_exec.h"
#include "oci/oci_runtime.h"

namespace berth::oci {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Running: exists and is no zombie (an orphan waits for init to reap it).
bool Alive(pid_t pid) {
  auto stat = ReadFile(StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return false;
  size_t paren = stat->rfind(')');
  return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] != 'Z';
}

bool WaitGone(pid_t pid) {
  for (int i = 0; i < 300 && Alive(pid); ++i) std::this_thread::sleep_for(milliseconds(10));
  return !Alive(pid);
}

// Everything readable from `fd` until EOF (or EIO of a terminal), at most
// `timeout` in all.
std::string ReadToEnd(int fd, milliseconds timeout = milliseconds(5000)) {
  std::string out;
  auto deadline = Clock::now() + timeout;
  char buf[4096];
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0 || ::poll(&pfd, 1, static_cast<int>(left)) <= 0) return out;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

std::string ProcessJson(const std::vector<std::string>& args, bool terminal) {
  nlohmann::json p = {{"args", args},
                      {"cwd", "/"},
                      {"env", {"PATH=/bin"}},
                      {"terminal", terminal},
                      {"user", {{"uid", 0}, {"gid", 0}}}};
  return p.dump();
}

// The parameter: the native exec path (true) or runc exec.
class OciExecTest : public ::testing::TestWithParam<bool> {
 protected:
  static void SetUpTestSuite() {
    auto which = RunProcess({"/bin/sh", "-c", "command -v runc"});
    if (::geteuid() != 0 || !which.ok() || which->exit_code != 0 ||
        ::access("/bin/busybox", X_OK) != 0) {
      return;
    }
    runc_ = which->out.substr(0, which->out.find('\n'));
    base_ = fs::temp_directory_path() / ("berth-oci-exec-" + RandomHex(4));
    root_ = base_ / "runc-root";
    fs::create_directories(base_ / "bundle/rootfs/bin");
    fs::create_directories(root_);
    fs::copy_file("/bin/busybox", base_ / "bundle/rootfs/bin/busybox");
    for (const char* applet : {"sh", "echo", "sleep", "cat", "head", "stty", "true", "tty"}) {
      fs::create_symlink("busybox", base_ / "bundle/rootfs/bin" / applet);
    }
    ASSERT_EQ(RunProcess({runc_, "spec", "--bundle", (base_ / "bundle").string()})->exit_code, 0);
    auto cfg = nlohmann::json::parse(*ReadFile(base_ / "bundle/config.json"));
    cfg["process"]["args"] = {"sleep", "3600"};
    cfg["process"]["terminal"] = false;
    id_ = "berth-exec-test-" + RandomHex(4);
    cfg["linux"]["cgroupsPath"] = "/" + id_;
    ASSERT_TRUE(WriteFileAtomic(base_ / "bundle/config.json", cfg.dump()).ok());
    // The container inherits runc's stdio: /dev/null, not pipes to wait on.
    auto run = SpawnProcess({runc_, "--root", root_.string(), "run", "--detach", "--bundle",
                             (base_ / "bundle").string(), id_});
    ASSERT_TRUE(run.ok()) << run.status();
    ASSERT_EQ(run->Wait().value(), 0) << "runc run --detach failed";
  }

  static void TearDownTestSuite() {
    if (base_.empty()) return;
    (void)RunProcess({runc_, "--root", root_.string(), "delete", "--force", id_});
    EXPECT_TRUE(RemoveAll(base_).ok());
  }

  void SetUp() override {
    if (base_.empty()) GTEST_SKIP() << "needs root, runc and /bin/busybox";
    runtime_ = NewCliRuntime("runc", runc_, root_.string());
    if (GetParam()) {
      auto state = runtime_->State(id_);
      ASSERT_TRUE(state.ok()) << state.status();
      init_pid_ = state->pid;
      auto spec = ReadFile(base_ / "bundle/config.json");
      ASSERT_TRUE(spec.ok()) << spec.status();
      spec_text_ = *spec;
      native_ = std::make_unique<NativeExecutor>();
    }
  }

  void TearDown() override {
    // Exec leaves no temporary file (process JSON, pid file, console socket).
    std::vector<std::string> left;
    for (const auto& e : fs::directory_iterator(root_)) {
      if (!e.is_directory()) left.push_back(e.path().filename().string());
    }
    EXPECT_TRUE(left.empty()) << "left in the runtime root: " << left.front();
  }

  StatusOr<std::unique_ptr<ExecProcess>> ExecJson(const std::string& process_json,
                                                  const ExecIo& io) {
    if (!GetParam()) return runtime_->Exec(id_, process_json, io);
    // As ContainerManager::Exec: the container's process settings (its
    // capabilities, rlimits, no_new_privileges of `runc spec`) with the exec's.
    auto spec = nlohmann::json::parse(spec_text_);
    nlohmann::json process = spec["process"];
    const auto exec = nlohmann::json::parse(process_json);
    for (const auto& [k, v] : exec.items()) process[k] = v;
    return native_->Exec({id_, init_pid_, 0}, spec_text_, process, io);
  }

  StatusOr<std::unique_ptr<ExecProcess>> Exec(const std::vector<std::string>& args,
                                              const ExecIo& io = {}) {
    return ExecJson(ProcessJson(args, io.terminal), io);
  }

  static inline std::string runc_, id_;
  static inline fs::path base_, root_;
  std::unique_ptr<OciRuntime> runtime_;
  std::unique_ptr<NativeExecutor> native_;
  pid_t init_pid_ = 0;
  std::string spec_text_;
};

TEST_P(OciExecTest, PipesKeepStreamsApartAndReportTheExitCode) {
  ExecIo io;
  io.stdin = true;
  auto p = Exec({"sh", "-c", "read x; echo out-$x; echo err-$x >&2; exit 3"}, io);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_GE((*p)->stdin_fd(), 0);
  ASSERT_EQ(::write((*p)->stdin_fd(), "in\n", 3), 3);
  (*p)->CloseStdin();
  EXPECT_EQ((*p)->stdin_fd(), -1);
  EXPECT_EQ(ReadToEnd((*p)->stdout_fd()), "out-in\n");
  EXPECT_EQ(ReadToEnd((*p)->stderr_fd()), "err-in\n");
  auto code = (*p)->Wait();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 3);
  EXPECT_EQ((*p)->ExitCode(), std::optional<int>(3));
}

TEST_P(OciExecTest, StdinEofReachesTheProcess) {
  ExecIo io;
  io.stdin = true;
  auto p = Exec({"head", "-c", "1000000"}, io);
  ASSERT_TRUE(p.ok()) << p.status();
  std::thread writer([&] {
    std::string chunk(65536, 'x');
    size_t total = 0;
    while (total < 700000) {
      ssize_t n = ::write((*p)->stdin_fd(), chunk.data(), chunk.size());
      if (n <= 0) break;
      total += static_cast<size_t>(n);
    }
    (*p)->CloseStdin();  // head exits at EOF, before its 1000000 bytes
  });
  std::string out = ReadToEnd((*p)->stdout_fd());
  writer.join();
  EXPECT_GE(out.size(), 700000u);
  EXPECT_EQ((*p)->Wait().value(), 0);
}

TEST_P(OciExecTest, TerminalHasTheRequestedSizeAndResizes) {
  ExecIo io;
  io.terminal = true;
  io.stdin = true;
  io.rows = 21;
  io.cols = 73;
  auto json =
      nlohmann::json::parse(ProcessJson({"sh", "-c", "stty size; read x; stty size"}, true));
  json["consoleSize"] = {{"height", 21}, {"width", 73}};
  auto p = ExecJson(json.dump(), io);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE((*p)->terminal());
  EXPECT_EQ((*p)->stderr_fd(), -1);
  ASSERT_GE((*p)->stdout_fd(), 0);
  std::string out;
  auto deadline = Clock::now() + milliseconds(5000);
  while (out.find("21 73") == std::string::npos && Clock::now() < deadline) {
    out += ReadToEnd((*p)->stdout_fd(), milliseconds(200));
  }
  EXPECT_NE(out.find("21 73\r\n"), std::string::npos) << out;
  ASSERT_TRUE((*p)->Resize(40, 100).ok());
  ASSERT_EQ(::write((*p)->stdin_fd(), "\n", 1), 1);
  out += ReadToEnd((*p)->stdout_fd());  // to EIO: the process exited
  EXPECT_NE(out.find("40 100\r\n"), std::string::npos) << out;
  EXPECT_EQ((*p)->Wait().value(), 0);
}

TEST_P(OciExecTest, MissingExecutableIsAnErrorWithTheRuntimesMessage) {
  auto p = Exec({"no-such-program"});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kUnknown);
  EXPECT_NE(p.status().message().find("executable file not found"), std::string::npos)
      << p.status();
  EXPECT_NE(p.status().message().find(id_), std::string::npos) << p.status();
  ExecIo tty;
  tty.terminal = true;
  EXPECT_EQ(Exec({"no-such-program"}, tty).status().code(), StatusCode::kUnknown);
}

TEST_P(OciExecTest, DroppingTheProcessKillsIt) {
  pid_t pid;
  {
    auto p = Exec({"sleep", "60"});
    ASSERT_TRUE(p.ok()) << p.status();
    pid = (*p)->pid();
    EXPECT_TRUE(Alive(pid));
  }
  EXPECT_TRUE(WaitGone(pid));
}

TEST_P(OciExecTest, KillEndsTheProcessGroupOfAShell) {
  auto p = Exec({"sh", "-c", "sleep 60 & echo $!; wait"});
  ASSERT_TRUE(p.ok()) << p.status();
  char buf[32] = {};
  ASSERT_GT(::read((*p)->stdout_fd(), buf, sizeof buf - 1), 0);
  // $! is the pid in the container's PID namespace; find the host pid.
  auto children = ReadFile(StrCat("/proc/", (*p)->pid(), "/task/", (*p)->pid(), "/children"));
  ASSERT_TRUE(children.ok()) << children.status();
  // "<pid> <pid> ...": the shell's only child is the sleep.
  pid_t sleeper = ParseDecimal<pid_t>(children->substr(0, children->find(' '))).value_or(0);
  ASSERT_GT(sleeper, 0);
  (*p)->Kill(SIGKILL);
  EXPECT_EQ((*p)->Wait().value(), 128 + SIGKILL);
  EXPECT_TRUE(WaitGone(sleeper)) << "the shell's background job survived";
}

TEST_P(OciExecTest, RunToCompletionCollectsCapsAndTimesOut) {
  {
    auto p = Exec({"sh", "-c", "echo out; echo err >&2; exit 4"});
    ASSERT_TRUE(p.ok()) << p.status();
    auto r = RunToCompletion(**p, milliseconds(10000));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->out, "out\n");
    EXPECT_EQ(r->err, "err\n");
    EXPECT_EQ(r->exit_code, 4);
    EXPECT_FALSE(r->timed_out);
  }
  {
    auto p = Exec({"head", "-c", "100000", "/dev/zero"});
    ASSERT_TRUE(p.ok()) << p.status();
    auto r = RunToCompletion(**p, std::nullopt, 1000);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->out.size(), 1000u);
    EXPECT_EQ(r->exit_code, 0);
  }
  {
    auto p = Exec({"sleep", "30"});
    ASSERT_TRUE(p.ok()) << p.status();
    pid_t pid = (*p)->pid();
    auto start = Clock::now();
    auto r = RunToCompletion(**p, milliseconds(300));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->timed_out);
    EXPECT_EQ(r->exit_code, 128 + SIGKILL);
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
    EXPECT_FALSE(Alive(pid));
  }
  {
    // A background job holding stdout does not keep the call waiting.
    auto p = Exec({"sh", "-c", "sleep 30 & echo started"});
    ASSERT_TRUE(p.ok()) << p.status();
    auto start = Clock::now();
    auto r = RunToCompletion(**p, milliseconds(10000));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->out, "started\n");
    EXPECT_EQ(r->exit_code, 0);
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, OciExecTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "native" : "runc"; });

}  // namespace
}  // namespace berth::oci
