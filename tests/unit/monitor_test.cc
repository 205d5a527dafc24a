// berth-monitor: pure parts (CRI log splitting, report and exit-file parsing)
// and the real thing driving runc with busybox containers. The runc tests need
// root and runc; each leaves no container, process, cgroup or file behind.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/numbers.h"
#include "monitor/client.h"
#include "monitor/cri_log.h"
#include "monitor/oom.h"
#include "monitor/protocol.h"

namespace berth::monitor {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// Pure functions.

struct Record {
  std::string time;
  std::string stream;
  char tag = 0;
  std::string content;
};

// Parses a CRI log, checking the shape of every line.
std::vector<Record> ParseCriLog(const std::string& text) {
  static const std::regex kTime(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z)");
  std::vector<Record> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    EXPECT_NE(nl, std::string::npos) << "log does not end with a newline";
    if (nl == std::string::npos) break;
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    Record r;
    size_t s1 = line.find(' ');
    size_t s2 = s1 == std::string::npos ? s1 : line.find(' ', s1 + 1);
    if (s2 == std::string::npos || s2 + 2 >= line.size() + 1 || line.size() < s2 + 3 ||
        line[s2 + 2] != ' ') {
      ADD_FAILURE() << "malformed log line: " << line;
      continue;
    }
    r.time = line.substr(0, s1);
    r.stream = line.substr(s1 + 1, s2 - s1 - 1);
    r.tag = line[s2 + 1];
    r.content = line.substr(s2 + 3);
    EXPECT_TRUE(std::regex_match(r.time, kTime)) << r.time;
    EXPECT_TRUE(r.stream == "stdout" || r.stream == "stderr") << line;
    EXPECT_TRUE(r.tag == 'F' || r.tag == 'P') << line;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Record> Only(const std::vector<Record>& recs, const std::string& stream) {
  std::vector<Record> out;
  for (const auto& r : recs) {
    if (r.stream == stream) out.push_back(r);
  }
  return out;
}

TEST(CriLogSplitterTest, FullLinesPartialsAndEof) {
  CriLogSplitter s("stdout", 4);
  std::string out;
  s.Feed("ab\ncd", "T1", &out);
  EXPECT_EQ(out, "T1 stdout F ab\n");
  s.Feed("ef\n\n", "T2", &out);  // "cdef" is exactly the maximum: one F record
  EXPECT_EQ(out, "T1 stdout F ab\nT2 stdout F cdef\nT2 stdout F \n");
  out.clear();
  s.Feed("0123456789", "T3", &out);  // 10 bytes: P(4) P(4), "89" waits
  EXPECT_EQ(out, "T3 stdout P 0123\nT3 stdout P 4567\n");
  EXPECT_EQ(s.buffered(), 2u);
  out.clear();
  s.Feed("\r\nxy", "T4", &out);  // CRLF from a terminal loses the CR
  EXPECT_EQ(out, "T4 stdout F 89\n");
  out.clear();
  s.Flush("T5", &out);
  EXPECT_EQ(out, "T5 stdout P xy\n");
  out.clear();
  s.Flush("T6", &out);
  EXPECT_EQ(out, "");
}

TEST(CriLogSplitterTest, ByteAtATimeEqualsOneChunk) {
  std::string input(40000, 'a');
  input += "\nshort\n";
  input.append(16384, 'b');
  input += "\n";
  std::string whole, bytes;
  CriLogSplitter a("stderr", 16384), b("stderr", 16384);
  a.Feed(input, "T", &whole);
  for (char c : input) b.Feed(std::string_view(&c, 1), "T", &bytes);
  EXPECT_EQ(whole, bytes);
  // 40000 = P 16384, P 16384, F 7232; then "short"; a line of exactly 16384 is one F.
  std::vector<char> tags;
  for (size_t pos = 0; (pos = whole.find(" stderr ", pos)) != std::string::npos; pos += 8) {
    tags.push_back(whole[pos + 8]);
  }
  EXPECT_EQ(tags, (std::vector<char>{'P', 'P', 'F', 'F', 'F'}));
}

TEST(Rfc3339Test, FormatAndParse) {
  struct timespec ts = {1700000000, 5};
  EXPECT_EQ(FormatRfc3339Nano(ts), "2023-11-14T22:13:20.000000005Z");
  ts = {951782400, 123456789};  // a leap day
  EXPECT_EQ(FormatRfc3339Nano(ts), "2000-02-29T00:00:00.123456789Z");
  ts = {0, 0};
  EXPECT_EQ(FormatRfc3339Nano(ts), "1970-01-01T00:00:00.000000000Z");
  auto t = ParseRfc3339Nano("2023-11-14T22:13:20.000000005Z");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, 1700000000LL * 1000000000 + 5);
  t = ParseRfc3339Nano("2023-11-14T23:13:20.5+01:00");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, 1700000000LL * 1000000000 + 500000000);
  EXPECT_FALSE(ParseRfc3339Nano("2023-11-14 22:13:20Z").ok());
  EXPECT_FALSE(ParseRfc3339Nano("yesterday").ok());
}

TEST(SyncReportTest, CreatedErrorAndSilence) {
  auto h = ParseSyncReport("monitor 42\ncreated 43\n", "c1");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->monitor_pid, 42);
  EXPECT_EQ(h->container_pid, 43);
  auto e = ParseSyncReport("monitor 42\nerror runc said no\nsecond line\n", "c1");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("c1"), std::string::npos);
  EXPECT_NE(e.status().message().find("runc said no\nsecond line"), std::string::npos);
  EXPECT_FALSE(ParseSyncReport("monitor 42\n", "c1").ok());
  EXPECT_FALSE(ParseSyncReport("", "c1").ok());
  EXPECT_FALSE(ParseSyncReport("monitor x\ncreated 43\n", "c1").ok());
}

TEST(ExitFileTest, Parse) {
  auto r = ParseExitFile(
      "exit_code=137\nsignal=9\nexit_time=2023-11-14T22:13:20.000000005Z\noom_killed=true\n"
      "pid=77\nfuture_key=whatever\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 137);
  EXPECT_EQ(r->signal, 9);
  EXPECT_EQ(r->exit_time_ns, 1700000000LL * 1000000000 + 5);
  EXPECT_TRUE(r->oom_killed);
  EXPECT_EQ(r->pid, 77);
  EXPECT_FALSE(r->runtime_deleted);  // absent: the reader deletes the runtime's state
  auto deleted = ParseExitFile("exit_code=0\nruntime_deleted=true\n");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(deleted->runtime_deleted);
  EXPECT_FALSE(ParseExitFile("exit_code=0\nruntime_deleted=yes\n").ok());
  EXPECT_FALSE(ParseExitFile("signal=0\n").ok());
  EXPECT_FALSE(ParseExitFile("exit_code=abc\n").ok());
  // Times beyond int64 nanoseconds are refused (tests/fuzz/monitor_protocol found the overflow).
  auto last = ParseRfc3339Nano("2262-04-11T23:47:16.854775807Z");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(*last, INT64_MAX);
  EXPECT_EQ(ParseRfc3339Nano("9999-12-31T23:59:59.999999999Z").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseExitFile("exit_code=0\nexit_time=2400-01-01T00:00:00Z\n").ok());
  EXPECT_EQ(ReadExitFile("/nonexistent/berth/exit").status().code(), StatusCode::kNotFound);
}

TEST(OomCounterTest, HybridHostUsesTheV1MemoryHierarchy) {
  // /proc/<pid>/cgroup of a runc container on these hybrid hosts.
  const std::string text =
      "13:misc:/\n12:memory:/kubepods/pod1/ctr:with:colons\n11:cpu,cpuacct:/kubepods/pod1/ctr\n"
      "1:name=systemd:/kubepods/pod1/ctr\n0::/kubepods/pod1/ctr\n";
  OomCounterLocation loc = LocateOomCounter(text, "/sys/fs/cgroup", /*unified_root=*/false);
  EXPECT_TRUE(loc.v1);
  EXPECT_EQ(loc.cgroup_dir, "/sys/fs/cgroup/memory/kubepods/pod1/ctr:with:colons");
  EXPECT_EQ(loc.counter_file,
            "/sys/fs/cgroup/memory/kubepods/pod1/ctr:with:colons/memory.oom_control");
}

TEST(OomCounterTest, MemoryMayShareAHierarchyWithOtherControllers) {
  OomCounterLocation loc =
      LocateOomCounter("4:cpuset,memory:/x\n0::/x\n", "/cg", /*unified_root=*/false);
  EXPECT_TRUE(loc.v1);
  EXPECT_EQ(loc.counter_file, "/cg/memory/x/memory.oom_control");
}

TEST(OomCounterTest, PureV2HostUsesMemoryEvents) {
  OomCounterLocation loc =
      LocateOomCounter("0::/kubepods.slice/cri-abc.scope\n", "/sys/fs/cgroup", true);
  EXPECT_FALSE(loc.v1);
  EXPECT_EQ(loc.cgroup_dir, "/sys/fs/cgroup/kubepods.slice/cri-abc.scope");
  EXPECT_EQ(loc.counter_file, "/sys/fs/cgroup/kubepods.slice/cri-abc.scope/memory.events");
}

TEST(OomCounterTest, NoMemoryControllerAnywhere) {
  // Hybrid host without a v1 memory hierarchy: the unified tree has no memory controller.
  EXPECT_TRUE(LocateOomCounter("3:pids:/x\n0::/x\n", "/sys/fs/cgroup", false).counter_file.empty());
  EXPECT_TRUE(LocateOomCounter("", "/sys/fs/cgroup", true).counter_file.empty());
}

TEST(OomCounterTest, ParsesTheKernelFiles) {
  // memory.oom_control (v1): "oom_kill_disable" must not be taken for "oom_kill".
  EXPECT_EQ(ParseOomKillCount("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), 3);
  // memory.events (v2).
  EXPECT_EQ(ParseOomKillCount("low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n"), 2);
  EXPECT_EQ(ParseOomKillCount("oom_kill_disable 0\nunder_oom 0\n"), -1);  // old kernels
  EXPECT_EQ(ParseOomKillCount("oom_kill x\n"), -1);
  EXPECT_EQ(ParseOomKillCount(""), -1);
}

TEST(OomFileTest, Parse) {
  auto k = ParseOomFile("oom_kills=2\nlast_oom_time=2023-11-14T22:13:20.000000005Z\n");
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(*k, 2);
  EXPECT_FALSE(ParseOomFile("oom_kills=-1\n").ok());
  EXPECT_FALSE(ParseOomFile("oom_killsx=1\n").ok());
  EXPECT_FALSE(ParseOomFile("").ok());
}

TEST(MonitorArgvTest, FlagsAsDocumented) {
  MonitorSpec spec;
  spec.monitor_binary = "/usr/bin/berth-monitor";
  spec.container_id = "c1";
  spec.bundle = "/run/b/c1";
  spec.runtime = "/usr/sbin/runc";
  spec.runtime_root = "/run/runc";
  spec.log_path = "/var/log/pods/p/c/0.log";
  spec.runtime_args = {"--systemd-cgroup"};
  spec.stdin_open = true;
  spec.stdin_once = true;
  auto argv = MonitorArgv(spec, 3);
  std::vector<std::string> want = {"/usr/bin/berth-monitor",
                                   "--id",
                                   "c1",
                                   "--bundle",
                                   "/run/b/c1",
                                   "--runtime",
                                   "/usr/sbin/runc",
                                   "--runtime-root",
                                   "/run/runc",
                                   "--log-path",
                                   "/var/log/pods/p/c/0.log",
                                   "--runtime-arg",
                                   "--systemd-cgroup",
                                   "--sync-fd",
                                   "3",
                                   "--stdin",
                                   "--stdin-once"};
  EXPECT_EQ(argv, want);
  EXPECT_EQ(spec.ExitFile(), "/run/b/c1/exit");
  EXPECT_EQ(spec.AttachSocket(), "/run/b/c1/attach");
}

// ---------------------------------------------------------------------------
// The monitor binary on its own.

int RunArgv(const std::vector<std::string>& args, std::string* output = nullptr) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, p[1], 2);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  if (rc != 0) {
    close(p[0]);
    return -1;
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(MonitorBinaryTest, UsageErrorsNameTheFlag) {
  std::string out;
  EXPECT_EQ(RunArgv({BERTH_MONITOR_BINARY, "--version"}, &out), 0);
  EXPECT_NE(out.find("berth-monitor"), std::string::npos);
  EXPECT_EQ(RunArgv({BERTH_MONITOR_BINARY, "--id", "c", "--bundle", "relative/dir", "--runtime",
                     "runc", "--runtime-root", "/run/r", "--log-path", "/tmp/l"},
                    &out),
            2);
  EXPECT_NE(out.find("--bundle needs an absolute path"), std::string::npos) << out;
  EXPECT_EQ(RunArgv({BERTH_MONITOR_BINARY, "--bogus"}, &out), 2);
  EXPECT_NE(out.find("--bogus"), std::string::npos) << out;
  // A flag without its value, a value for a flag that takes none, a stray
  // operand, and a bad number: each names what is wrong.
  EXPECT_EQ(RunArgv({BERTH_MONITOR_BINARY, "--id"}, &out), 2);
  EXPECT_NE(out.find("flag --id needs a value"), std::string::npos) << out;
  EXPECT_EQ(RunArgv({BERTH_MONITOR_BINARY, "--terminal=yes"}, &out), 2);
  EXPECT_NE(out.find("flag --terminal takes no value"), std::string::npos) << out;
  EXPECT_EQ(RunArgv({BERTH_MONITOR_BINARY, "--id", "c", "stray"}, &out), 2);
  EXPECT_NE(out.find("\"stray\""), std::string::npos) << out;
  EXPECT_EQ(RunArgv({BERTH_MONITOR_BINARY, "--log-line-max=0"}, &out), 2);
  EXPECT_NE(out.find("--log-line-max needs a byte count"), std::string::npos) << out;
  // --flag=value and --flag value mean the same: with every path absolute
  // but --stdin-once without --stdin, parsing gets to the last check.
  EXPECT_EQ(RunArgv({BERTH_MONITOR_BINARY, "--id=c", "--bundle=/b/", "--runtime", "runc",
                     "--runtime-root=/run/r", "--log-path", "/tmp/l", "--stdin-once"},
                    &out),
            2);
  EXPECT_NE(out.find("--stdin-once needs --stdin"), std::string::npos) << out;
}

// ---------------------------------------------------------------------------
// Real containers through runc.

std::string FindRunc() {
  for (const char* p :
       {"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

bool WaitFor(const std::function<bool()>& cond, milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  while (steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return cond();
}

// Gone, or a zombie waiting for its (non-test) parent to reap it.
bool ProcessGone(pid_t pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return true;
  size_t paren = stat->rfind(')');
  return paren == std::string::npos || paren + 2 >= stat->size() || (*stat)[paren + 2] == 'Z';
}

std::string StatusField(pid_t pid, const std::string& key) {
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/status");
  if (!text.ok()) return "";
  size_t at = text->find("\n" + key + ":");
  if (at == std::string::npos) return "";
  size_t start = text->find_first_not_of(" \t", at + key.size() + 2);
  return text->substr(start, text->find('\n', start) - start);
}

std::string ReadOr(const fs::path& p) {
  auto t = ReadFile(p);
  return t.ok() ? *t : "";
}

struct BundleOptions {
  bool terminal = false;
  bool stdin_open = false;
  bool stdin_once = false;
  // Bundle path longer than a socket address can hold (108 bytes).
  bool long_bundle_path = false;
  std::function<void(nlohmann::json&)> edit_config;
};

class MonitorRuncTest : public ::testing::Test {
 protected:
  struct Container {
    std::string id;
    MonitorSpec spec;
    MonitorHandle handle;
  };

  static void SetUpTestSuite() {
    runc_ = FindRunc();
    if (geteuid() != 0 || runc_.empty() || access("/bin/busybox", X_OK) != 0) return;
    base_ = fs::temp_directory_path() / ("berth-mon-" + RandomHex(4));
    runtime_root_ = "/run/berth-test-runc-" + RandomHex(4);
    fs::create_directories(base_ / "rootfs/bin");
    fs::copy_file("/bin/busybox", base_ / "rootfs/bin/busybox");
    for (const char* applet : {"sh", "echo", "sleep", "cat", "head", "tr", "printf", "stty"}) {
      fs::create_symlink("busybox", base_ / "rootfs/bin" / applet);
    }
    // A default spec from runc itself, edited per container.
    ASSERT_EQ(RunArgv({runc_, "spec", "--bundle", base_.string()}), 0);
    spec_template_ = nlohmann::json::parse(*ReadFile(base_ / "config.json"));
  }

  static void TearDownTestSuite() {
    if (!base_.empty()) {
      EXPECT_TRUE(RemoveAll(base_).ok());
    }
    if (!runtime_root_.empty()) {
      EXPECT_TRUE(RemoveAll(runtime_root_).ok());
    }
  }

  void SetUp() override {
    if (base_.empty()) GTEST_SKIP() << "needs root, runc and /bin/busybox";
  }

  void TearDown() override {
    for (const auto& c : containers_) {
      RunArgv({runc_, "--root", runtime_root_.string(), "delete", "--force", c.id});
      if (c.handle.monitor_pid > 0) {
        if (!WaitFor([&] { return ProcessGone(c.handle.monitor_pid); }, milliseconds(3000))) {
          ADD_FAILURE() << "monitor " << c.handle.monitor_pid << " of " << c.id << " still running";
          kill(c.handle.monitor_pid, SIGKILL);
        }
      }
      // runc removes the container's cgroups on delete; nothing may linger.
      EXPECT_TRUE(WaitFor(
          [&] {
            return !fs::exists("/sys/fs/cgroup/memory/berth-test-" + c.id) &&
                   !fs::exists("/sys/fs/cgroup/pids/berth-test-" + c.id);
          },
          milliseconds(2000)))
          << "cgroup of " << c.id << " left behind";
      EXPECT_FALSE(fs::exists(c.spec.AttachSocket())) << c.spec.AttachSocket();
      EXPECT_TRUE(RemoveAll(c.spec.bundle).ok());
    }
    containers_.clear();
  }

  // A bundle running `args` in the shared busybox rootfs.
  Container& Make(const std::vector<std::string>& args,
                  const BundleOptions& opt = BundleOptions()) {
    Container c;
    c.id = "bm-" + RandomHex(5);
    fs::path bundle = base_ / (opt.long_bundle_path ? c.id + "-" + std::string(120, 'd') : c.id);
    fs::create_directories(bundle);
    nlohmann::json cfg = spec_template_;
    cfg["process"]["args"] = args;
    cfg["process"]["terminal"] = opt.terminal;
    cfg["root"]["path"] = (base_ / "rootfs").string();
    cfg["linux"]["cgroupsPath"] = "/berth-test-" + c.id;
    if (opt.edit_config) opt.edit_config(cfg);
    EXPECT_TRUE(WriteFileAtomic(bundle / "config.json", cfg.dump()).ok());
    c.spec.monitor_binary = BERTH_MONITOR_BINARY;
    c.spec.container_id = c.id;
    c.spec.bundle = bundle;
    c.spec.runtime = runc_;
    c.spec.runtime_root = runtime_root_;
    c.spec.log_path = bundle / "container.log";
    c.spec.monitor_log = bundle / "monitor.log";
    c.spec.terminal = opt.terminal;
    c.spec.stdin_open = opt.stdin_open;
    c.spec.stdin_once = opt.stdin_once;
    c.spec.timeout = std::chrono::seconds(10);
    containers_.push_back(std::move(c));
    return containers_.back();
  }

  // Spawns the monitor (runc create) and starts the container.
  void CreateAndStart(Container& c) {
    auto h = SpawnMonitor(c.spec);
    ASSERT_TRUE(h.ok()) << h.status();
    c.handle = *h;
    EXPECT_FALSE(ProcessGone(c.handle.monitor_pid));
    EXPECT_EQ(ReadOr(c.spec.PidFile()), std::to_string(c.handle.container_pid));
    Start(c);
  }

  // Under the runtime lock, as berthd starts containers: a monitor with
  // --delete-on-exit waits for it before it deletes the runtime's state.
  void Start(const Container& c) {
    UniqueFd lock(
        ::open((c.spec.bundle / kRuntimeLockFile).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    ASSERT_GE(lock.get(), 0);
    ASSERT_EQ(::flock(lock.get(), LOCK_EX), 0);
    ASSERT_EQ(RunArgv({runc_, "--root", runtime_root_.string(), "start", c.id}), 0);
  }

  void Kill(const Container& c, const char* sig) {
    ASSERT_EQ(RunArgv({runc_, "--root", runtime_root_.string(), "kill", c.id, sig}), 0);
  }

  ExitRecord WaitExit(const Container& c, milliseconds timeout = milliseconds(5000)) {
    std::optional<ExitRecord> rec;
    WaitFor(
        [&] {
          auto r = ReadExitFile(c.spec.ExitFile());
          if (r.ok()) rec = *r;
          return r.ok();
        },
        timeout);
    if (!rec) {
      ADD_FAILURE() << "no exit file for " << c.id
                    << "; monitor log: " << ReadOr(c.spec.monitor_log);
      return {};
    }
    // The exit file is the monitor's last act.
    EXPECT_TRUE(WaitFor([&] { return ProcessGone(c.handle.monitor_pid); }, milliseconds(3000)));
    return *rec;
  }

  static int64_t NowNs() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }

  static inline std::string runc_;
  static inline fs::path base_;
  static inline fs::path runtime_root_;
  static inline nlohmann::json spec_template_;
  std::vector<Container> containers_;
};

TEST_F(MonitorRuncTest, LogsBothStreamsAndRecordsExitCode) {
  int64_t t0 = NowNs();
  auto& c = Make({"sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 3"});
  c.spec.monitor_pid_file = c.spec.bundle / "monitor.pid";
  CreateAndStart(c);
  EXPECT_EQ(ReadOr(c.spec.monitor_pid_file), std::to_string(c.handle.monitor_pid) + "\n");
  ExitRecord rec = WaitExit(c);
  int64_t t1 = NowNs();
  EXPECT_EQ(rec.exit_code, 3);
  EXPECT_EQ(rec.signal, 0);
  EXPECT_FALSE(rec.oom_killed);
  EXPECT_EQ(rec.pid, c.handle.container_pid);
  EXPECT_GE(rec.exit_time_ns, t0);
  EXPECT_LE(rec.exit_time_ns, t1);

  auto recs = ParseCriLog(ReadOr(c.spec.log_path));
  ASSERT_EQ(recs.size(), 4u) << ReadOr(c.spec.log_path);
  for (const auto& r : recs) {
    auto t = ParseRfc3339Nano(r.time);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_GE(*t, t0);
    EXPECT_LE(*t, rec.exit_time_ns + 1000000000LL);
    EXPECT_EQ(r.tag, 'F');
  }
  auto out = Only(recs, "stdout"), err = Only(recs, "stderr");
  ASSERT_EQ(out.size(), 2u);
  ASSERT_EQ(err.size(), 2u);
  EXPECT_EQ(out[0].content, "out1");
  EXPECT_EQ(out[1].content, "out2");
  EXPECT_EQ(err[0].content, "err1");
  EXPECT_EQ(err[1].content, "err2");
  EXPECT_FALSE(fs::exists(c.spec.AttachSocket()));
}

TEST_F(MonitorRuncTest, DeleteOnExitRemovesTheRuntimeStateBeforeTheExitFile) {
  // Exits only when told to: a container that exited at once could be deleted
  // before the state check below (seen under ASan).
  auto& c = Make({"sh", "-c", "trap 'exit 4' TERM; while :; do sleep 0.1; done"});
  c.spec.delete_on_exit = true;
  CreateAndStart(c);
  ASSERT_TRUE(fs::exists(runtime_root_ / c.id)) << "runc keeps no state of " << c.id;
  // TERM until it exits: the shell is the container's PID 1, which drops a
  // signal it has no handler for, so a TERM sent before `trap` ran is lost
  // (seen on a loaded machine).
  int polls = 0;
  EXPECT_TRUE(WaitFor(
      [&] {
        if (ReadExitFile(c.spec.ExitFile()).ok()) return true;
        if (polls++ % 15 == 0) {  // every 300 ms
          (void)RunArgv({runc_, "--root", runtime_root_.string(), "kill", c.id, "TERM"});
        }
        return false;
      },
      milliseconds(10000)));
  ExitRecord rec = WaitExit(c);
  EXPECT_EQ(rec.exit_code, 4);
  EXPECT_TRUE(rec.runtime_deleted) << ReadOr(c.spec.monitor_log);
  // Already gone when the exit file appears: runc's state dir and the cgroups.
  EXPECT_FALSE(fs::exists(runtime_root_ / c.id));
  EXPECT_FALSE(fs::exists("/sys/fs/cgroup/pids/berth-test-" + c.id));
  EXPECT_NE(RunArgv({runc_, "--root", runtime_root_.string(), "state", c.id}), 0);
}

TEST_F(MonitorRuncTest, FailedDeleteOnExitIsRecordedInTheExitFile) {
  auto& c = Make({"sleep", "100"});
  c.spec.delete_on_exit = true;
  // runc for everything but delete, which fails.
  c.spec.runtime = c.spec.bundle / "runc-no-delete";
  ASSERT_TRUE(WriteFileAtomic(c.spec.runtime,
                              "#!/bin/sh\nfor a; do [ \"$a\" = delete ] && "
                              "{ echo 'injected failure' >&2; exit 1; }; done\nexec " +
                                  runc_ + " \"$@\"\n",
                              0755)
                  .ok());
  CreateAndStart(c);
  Kill(c, "KILL");
  ExitRecord rec = WaitExit(c);
  EXPECT_EQ(rec.exit_code, 137);
  EXPECT_FALSE(rec.runtime_deleted);
  // The state is still there for berthd to delete (TearDown does).
  EXPECT_TRUE(fs::exists(runtime_root_ / c.id));
  const std::string log = ReadOr(c.spec.monitor_log);
  EXPECT_NE(log.find("delete " + c.id + " failed with exit status 1: injected failure"),
            std::string::npos)
      << log;
}

TEST_F(MonitorRuncTest, LongLineIsSplitIntoPartialRecords) {
  auto& c = Make({"sh", "-c", "head -c 40960 /dev/zero | tr '\\0' x; echo; printf tail"});
  CreateAndStart(c);
  EXPECT_EQ(WaitExit(c).exit_code, 0);
  auto recs = ParseCriLog(ReadOr(c.spec.log_path));
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[0].tag, 'P');
  EXPECT_EQ(recs[0].content.size(), 16384u);
  EXPECT_EQ(recs[1].tag, 'P');
  EXPECT_EQ(recs[1].content.size(), 16384u);
  EXPECT_EQ(recs[2].tag, 'F');
  EXPECT_EQ(recs[2].content.size(), 8192u);
  EXPECT_EQ(recs[0].content + recs[1].content + recs[2].content, std::string(40960, 'x'));
  // Output without a final newline is a partial record (reproduced without "\n").
  EXPECT_EQ(recs[3].tag, 'P');
  EXPECT_EQ(recs[3].content, "tail");
  for (const auto& r : recs) {
    EXPECT_EQ(r.stream, "stdout");
  }
}

TEST_F(MonitorRuncTest, KilledBySigkillExits137) {
  auto& c = Make({"sleep", "100"});
  CreateAndStart(c);
  Kill(c, "KILL");
  ExitRecord rec = WaitExit(c);
  EXPECT_EQ(rec.exit_code, 137);
  EXPECT_EQ(rec.signal, 9);
}

TEST_F(MonitorRuncTest, OomKillIsRecorded) {
  // The shell holds 200 MB of command output in a 16 MiB memory cgroup.
  BundleOptions opt;
  opt.edit_config = [](nlohmann::json& cfg) {
    cfg["linux"]["resources"]["memory"]["limit"] = 16 << 20;
  };
  auto& c = Make({"sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"}, opt);
  CreateAndStart(c);
  ExitRecord rec = WaitExit(c);
  EXPECT_TRUE(rec.oom_killed);
  EXPECT_EQ(rec.exit_code, 137);
  EXPECT_EQ(ReadOr(c.spec.log_path).find("survived"), std::string::npos);
}

TEST_F(MonitorRuncTest, OomKillOfAChildIsReportedWhileTheContainerRuns) {
  // The inner shell holds 200 MB in a 16 MiB cgroup and is OOM-killed; the
  // container's init lives on. The monitor writes the OOM file at once.
  BundleOptions opt;
  opt.edit_config = [](nlohmann::json& cfg) {
    cfg["linux"]["resources"]["memory"]["limit"] = 16 << 20;
  };
  auto& c = Make({"sh", "-c",
                  "sh -c 'x=$(head -c 200000000 /dev/zero | tr \"\\0\" a)'; echo inner=$?; "
                  "sleep 100"},
                 opt);
  CreateAndStart(c);
  const fs::path oom_file = c.spec.bundle / "oom";
  std::optional<int64_t> kills;
  WaitFor(
      [&] {
        auto k = ReadOomFile(oom_file);
        if (k.ok()) kills = *k;
        return k.ok();
      },
      milliseconds(20000));
  ASSERT_TRUE(kills.has_value()) << "no OOM file; monitor log: " << ReadOr(c.spec.monitor_log);
  EXPECT_EQ(*kills, 1);
  EXPECT_FALSE(fs::exists(c.spec.ExitFile())) << "the container itself still runs";
  EXPECT_TRUE(WaitFor(
      [&] { return ReadOr(c.spec.log_path).find(" stdout F inner=137\n") != std::string::npos; },
      milliseconds(5000)))
      << ReadOr(c.spec.log_path);
  Kill(c, "KILL");
  ExitRecord rec = WaitExit(c);
  EXPECT_TRUE(rec.oom_killed);
  EXPECT_EQ(rec.exit_code, 137);
  EXPECT_EQ(*ReadOomFile(oom_file), 1);
}

TEST_F(MonitorRuncTest, CreateFailureIsReportedAndNothingStays) {
  auto& c = Make({"/nonexistent/binary"});
  auto h = SpawnMonitor(c.spec);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find(c.id), std::string::npos) << h.status();
  EXPECT_NE(h.status().message().find("/nonexistent/binary"), std::string::npos) << h.status();
  EXPECT_FALSE(fs::exists(c.spec.AttachSocket()));
  EXPECT_FALSE(fs::exists(c.spec.ExitFile()));
  // The monitor logged the failure and exited.
  auto mlog = ReadOr(c.spec.monitor_log);
  EXPECT_NE(mlog.find("create " + c.id), std::string::npos) << mlog;
  std::string pid_text = mlog.substr(mlog.find('[') + 1);
  pid_t mpid = std::stoi(pid_text);
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(mpid); }, milliseconds(2000)));
}

constexpr char kTicker[] =
    "i=0; while true; do echo tick$i; echo tock$i >&2; i=$((i+1)); sleep 0.05; done";

// The sequence numbers "tick<N>" on stdout, in log order, across files.
std::vector<int> TickNumbers(const std::vector<std::string>& texts) {
  std::vector<int> out;
  for (const auto& t : texts) {
    for (const auto& r : ParseCriLog(t)) {
      if (r.stream == "stdout" && r.content.rfind("tick", 0) == 0) {
        out.push_back(std::stoi(r.content.substr(4)));
      }
    }
  }
  return out;
}

TEST_F(MonitorRuncTest, ReopenLogOnRequestAndOnSigusr1) {
  auto& c = Make({"sh", "-c", kTicker});
  CreateAndStart(c);
  const fs::path log = c.spec.log_path;
  auto lines = [](const fs::path& p) { return TickNumbers({ReadOr(p)}).size(); };
  ASSERT_TRUE(WaitFor([&] { return lines(log) >= 3; }, milliseconds(3000)));

  // ReopenContainerLog: rename away, reopen, later output lands at the path.
  fs::rename(log, log.string() + ".1");
  Status s = ReopenContainerLog(c.spec.AttachSocket(), milliseconds(2000));
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_TRUE(fs::exists(log));  // created synchronously
  ASSERT_TRUE(WaitFor([&] { return lines(log) >= 3; }, milliseconds(3000)));

  // The same through SIGUSR1.
  fs::rename(log, log.string() + ".2");
  ASSERT_EQ(kill(c.handle.monitor_pid, SIGUSR1), 0);
  ASSERT_TRUE(WaitFor([&] { return lines(log) >= 3; }, milliseconds(3000)));
  size_t in_old = lines(log.string() + ".2");

  Kill(c, "KILL");
  EXPECT_EQ(WaitExit(c).exit_code, 137);
  // Nothing lost, nothing duplicated, old files no longer written.
  EXPECT_EQ(lines(log.string() + ".2"), in_old);
  auto seq = TickNumbers({ReadOr(log.string() + ".1"), ReadOr(log.string() + ".2"), ReadOr(log)});
  ASSERT_GE(seq.size(), 9u);
  for (size_t i = 0; i < seq.size(); ++i) {
    EXPECT_EQ(seq[i], static_cast<int>(i));
  }
}

TEST_F(MonitorRuncTest, SurvivesItsSpawnerBeingKilled) {
  auto& c = Make({"sh", "-c", kTicker});
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t spawner = fork();
  ASSERT_GE(spawner, 0);
  if (spawner == 0) {
    // Plays berthd: spawns the monitor, reports, then hangs until killed.
    close(p[0]);
    auto h = SpawnMonitor(c.spec);
    std::string msg =
        h.ok() ? std::to_string(h->monitor_pid) + " " + std::to_string(h->container_pid) : "error";
    if (write(p[1], msg.data(), msg.size()) < 0) _exit(1);
    close(p[1]);
    for (;;) pause();
  }
  close(p[1]);
  char buf[64] = {};
  ASSERT_GT(read(p[0], buf, sizeof(buf) - 1), 0);
  close(p[0]);
  const std::string_view pids(buf);
  const size_t space = pids.find(' ');
  ASSERT_NE(space, std::string_view::npos) << buf;
  c.handle.monitor_pid = ParseDecimal<pid_t>(pids.substr(0, space)).value_or(0);
  c.handle.container_pid = ParseDecimal<pid_t>(pids.substr(space + 1)).value_or(0);
  ASSERT_GT(c.handle.monitor_pid, 0) << buf;
  ASSERT_GT(c.handle.container_pid, 0) << buf;
  ASSERT_EQ(kill(spawner, SIGKILL), 0);
  ASSERT_EQ(waitpid(spawner, nullptr, 0), spawner);

  // Not the spawner's child any more, and its own session.
  EXPECT_FALSE(ProcessGone(c.handle.monitor_pid));
  EXPECT_NE(StatusField(c.handle.monitor_pid, "PPid"), std::to_string(spawner));
  EXPECT_EQ(getsid(c.handle.monitor_pid), c.handle.monitor_pid);

  Start(c);
  auto count = [&] { return TickNumbers({ReadOr(c.spec.log_path)}).size(); };
  ASSERT_TRUE(WaitFor([&] { return count() >= 5; }, milliseconds(3000)));
  EXPECT_FALSE(ProcessGone(c.handle.monitor_pid));
  Kill(c, "KILL");
  EXPECT_EQ(WaitExit(c).exit_code, 137);
}

TEST_F(MonitorRuncTest, AttachStreamsOutputAndReportsExit) {
  auto& c = Make({"sh", "-c", kTicker});
  CreateAndStart(c);
  auto conn = AttachConnection::Attach(c.spec.AttachSocket(), kAttachStdout | kAttachStderr,
                                       milliseconds(2000));
  ASSERT_TRUE(conn.ok()) << conn.status();
  std::string out, err;
  auto deadline = steady_clock::now() + milliseconds(3000);
  while ((out.find("tick") == std::string::npos || err.find("tock") == std::string::npos) &&
         steady_clock::now() < deadline) {
    auto f = conn->Receive(milliseconds(1000));
    ASSERT_TRUE(f.ok()) << f.status();
    if (f->type == FrameType::kStdout) out += f->payload;
    if (f->type == FrameType::kStderr) err += f->payload;
  }
  EXPECT_NE(out.find("tick"), std::string::npos);
  EXPECT_EQ(out.find("tock"), std::string::npos);
  EXPECT_NE(err.find("tock"), std::string::npos);

  // This container was not created with stdin open.
  auto with_stdin =
      AttachConnection::Attach(c.spec.AttachSocket(), kAttachStdin, milliseconds(2000));
  EXPECT_EQ(with_stdin.status().code(), StatusCode::kFailedPrecondition) << with_stdin.status();

  Kill(c, "KILL");
  std::optional<std::string> exit_payload;
  deadline = steady_clock::now() + milliseconds(3000);
  while (!exit_payload && steady_clock::now() < deadline) {
    auto f = conn->Receive(milliseconds(1000));
    if (!f.ok()) break;
    if (f->type == FrameType::kExit) exit_payload = f->payload;
  }
  EXPECT_EQ(exit_payload, std::optional<std::string>("137"));
  EXPECT_EQ(conn->Receive(milliseconds(1000)).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(WaitExit(c).exit_code, 137);
}

// The footprint belongs to the release binary: a sanitizer build links
// berth-monitor dynamically with the sanitizer's runtime, whose shadow memory
// alone is several MiB, so this test exists only in normal builds (which CI
// runs first; docs/testing.md).
#ifndef BERTH_SANITIZER_BUILD
TEST_F(MonitorRuncTest, StaysUnderOneMebibyteWhileLoggingAndAttached) {
  auto& c = Make({"sh", "-c", kTicker});
  CreateAndStart(c);
  auto conn = AttachConnection::Attach(c.spec.AttachSocket(), kAttachStdout | kAttachStderr,
                                       milliseconds(2000));
  ASSERT_TRUE(conn.ok()) << conn.status();
  std::string out;
  auto deadline = steady_clock::now() + milliseconds(3000);
  while (out.find("tick") == std::string::npos && steady_clock::now() < deadline) {
    auto f = conn->Receive(milliseconds(1000));
    ASSERT_TRUE(f.ok()) << f.status();
    if (f->type == FrameType::kStdout) out += f->payload;
  }
  ASSERT_NE(out.find("tick"), std::string::npos);

  // Memory of a monitor that is busy logging and serving an attach client.
  std::string rss = StatusField(c.handle.monitor_pid, "VmRSS");
  std::string anon = StatusField(c.handle.monitor_pid, "RssAnon");
  std::string file = StatusField(c.handle.monitor_pid, "RssFile");
  std::cout << "[ report   ] berth-monitor VmRSS " << rss << " (RssAnon " << anon << ", RssFile "
            << file << ")\n";
  RecordProperty("monitor_vmrss", rss);
  EXPECT_LT(std::stol(rss), 1024) << "berth-monitor must stay under 1 MiB resident";
  // Static: no program interpreter, so no shared library is mapped either.
  std::string maps = ReadOr(StrCat("/proc/", c.handle.monitor_pid, "/maps"));
  EXPECT_EQ(maps.find(".so"), std::string::npos) << maps;

  Kill(c, "KILL");
  EXPECT_EQ(WaitExit(c).exit_code, 137);
}
#endif

TEST_F(MonitorRuncTest, AttachStdinReachesCatAndStdinOnceClosesIt) {
  BundleOptions opt;
  opt.stdin_open = true;
  opt.stdin_once = true;
  auto& c = Make({"cat"}, opt);
  CreateAndStart(c);
  {
    auto conn = AttachConnection::Attach(c.spec.AttachSocket(), kAttachStdin | kAttachStdout,
                                         milliseconds(2000));
    ASSERT_TRUE(conn.ok()) << conn.status();
    ASSERT_TRUE(conn->SendStdin("hello monitor\n").ok());
    std::string out;
    auto deadline = steady_clock::now() + milliseconds(3000);
    while (out.find("hello monitor\n") == std::string::npos && steady_clock::now() < deadline) {
      auto f = conn->Receive(milliseconds(1000));
      ASSERT_TRUE(f.ok()) << f.status();
      if (f->type == FrameType::kStdout) out += f->payload;
    }
    EXPECT_EQ(out, "hello monitor\n");
    ASSERT_TRUE(conn->SendStdin(std::string(100000, 'z') + "\n").ok());  // several frames
    // Leaving the session (here: disconnecting) ends stdin: cat sees EOF.
  }
  ExitRecord rec = WaitExit(c);
  EXPECT_EQ(rec.exit_code, 0);
  auto recs = ParseCriLog(ReadOr(c.spec.log_path));
  ASSERT_GE(recs.size(), 2u);
  EXPECT_EQ(recs[0].stream, "stdout");
  EXPECT_EQ(recs[0].content, "hello monitor");
  std::string z;
  for (size_t i = 1; i < recs.size(); ++i) z += recs[i].content;
  EXPECT_EQ(z, std::string(100000, 'z'));
  EXPECT_EQ(recs.back().tag, 'F');
}

TEST_F(MonitorRuncTest, OneStdinSessionAtATime) {
  BundleOptions opt;
  opt.stdin_open = true;  // without stdin_once: stdin stays open across sessions
  auto& c = Make({"cat"}, opt);
  CreateAndStart(c);
  auto receive_until = [](AttachConnection& conn, const std::string& want) {
    std::string out;
    auto deadline = steady_clock::now() + milliseconds(3000);
    while (out.find(want) == std::string::npos && steady_clock::now() < deadline) {
      auto f = conn.Receive(milliseconds(1000));
      if (!f.ok()) break;
      if (f->type == FrameType::kStdout) out += f->payload;
    }
    return out;
  };
  auto first = AttachConnection::Attach(c.spec.AttachSocket(), kAttachStdin | kAttachStdout,
                                        milliseconds(2000));
  ASSERT_TRUE(first.ok()) << first.status();
  // A second writer is refused with a clear message; a reader is welcome.
  auto second = AttachConnection::Attach(c.spec.AttachSocket(), kAttachStdin | kAttachStdout,
                                         milliseconds(2000));
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition) << second.status();
  EXPECT_NE(second.status().message().find("in use by another attach session"), std::string::npos)
      << second.status();
  auto reader = AttachConnection::Attach(c.spec.AttachSocket(), kAttachStdout, milliseconds(2000));
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_TRUE(first->SendStdin("from first\n").ok());
  EXPECT_EQ(receive_until(*first, "from first\n"), "from first\n");
  EXPECT_EQ(receive_until(*reader, "from first\n"), "from first\n");
  // Once the first session's stdin ends, the next one may write.
  ASSERT_TRUE(first->CloseStdin().ok());
  std::optional<AttachConnection> third;
  auto deadline = steady_clock::now() + milliseconds(3000);
  while (!third && steady_clock::now() < deadline) {
    auto a = AttachConnection::Attach(c.spec.AttachSocket(), kAttachStdin | kAttachStdout,
                                      milliseconds(2000));
    if (a.ok()) third.emplace(std::move(*a));
  }
  ASSERT_TRUE(third.has_value());
  ASSERT_TRUE(third->SendStdin("from third\n").ok());
  EXPECT_EQ(receive_until(*reader, "from third\n"), "from third\n");
  Kill(c, "KILL");
  EXPECT_EQ(WaitExit(c).exit_code, 137);
}

TEST_F(MonitorRuncTest, TerminalGetsResizeAndStdin) {
  // The long bundle path makes the console and attach sockets go through /proc/<pid>/fd.
  BundleOptions opt;
  opt.terminal = true;
  opt.stdin_open = true;
  opt.long_bundle_path = true;
  auto& c = Make({"sh", "-c", "read x; stty size; echo done-$x"}, opt);
  ASSERT_GT(c.spec.AttachSocket().string().size(), 108u);
  CreateAndStart(c);
  auto conn = AttachConnection::Attach(c.spec.AttachSocket(), kAttachStdin | kAttachStdout,
                                       milliseconds(2000));
  ASSERT_TRUE(conn.ok()) << conn.status();
  ASSERT_TRUE(conn->Resize(33, 77).ok());
  ASSERT_TRUE(conn->SendStdin("go\n").ok());
  EXPECT_EQ(WaitExit(c).exit_code, 0);
  std::vector<std::string> contents;
  for (const auto& r : ParseCriLog(ReadOr(c.spec.log_path))) {
    EXPECT_EQ(r.stream, "stdout");  // a terminal has a single stream
    contents.push_back(r.content);
  }
  // The terminal echoes the input, then the command's output; CRLF became F records.
  EXPECT_EQ(contents, (std::vector<std::string>{"go", "33 77", "done-go"}));
}

}  // namespace
}  // namespace berth::monitor
