#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "common/digest.h"
#include "common/fs.h"
#include "common/keyed_mutex.h"
#include "common/numbers.h"
#include "common/proc.h"
#include "common/status.h"

namespace berth {
namespace {

TEST(DigestTest, ParsesValidSha256) {
  auto d = Digest::Parse("sha256:" + std::string(64, 'a'));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->hex(), std::string(64, 'a'));
}

TEST(DigestTest, RejectsBadDigests) {
  EXPECT_EQ(Digest::Parse("md5:abc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Digest::Parse("sha256:abc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Digest::Parse("sha256:" + std::string(64, 'G')).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Sha256Test, KnownVector) {
  EXPECT_EQ(Sha256::Of("abc").str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(h.Finish(), Sha256::Of("abc"));
}

TEST(StatusTest, AnnotateKeepsCode) {
  Status s = Annotate(NotFoundError("gone"), "image busybox");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "image busybox: gone");
  EXPECT_TRUE(Annotate(OkStatus(), "x").ok());
}

// Rollback as CreateContainer uses it: guards run in reverse order of
// acquisition on an early return, and none runs once cancelled.
TEST(ScopeGuardTest, RunsInReverseOrderUnlessCancelled) {
  std::vector<int> undone;
  auto acquire = [&](bool succeed) -> Status {
    ScopeGuard first([&] { undone.push_back(1); });
    ScopeGuard second([&] { undone.push_back(2); });
    if (!succeed) return InternalError("failed after two steps");
    second.Cancel();
    first.Cancel();
    return OkStatus();
  };
  EXPECT_FALSE(acquire(false).ok());
  EXPECT_EQ(undone, (std::vector<int>{2, 1}));
  undone.clear();
  EXPECT_TRUE(acquire(true).ok());
  EXPECT_TRUE(undone.empty());
}

TEST(FsTest, AtomicWriteAndRead) {
  auto dir = std::filesystem::temp_directory_path() / ("berth-fs-" + RandomHex(4));
  ASSERT_TRUE(MakeDirs(dir).ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "f", "one").ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "f", "two").ok());
  auto content = ReadFile(dir / "f");
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, "two");
  EXPECT_EQ(ReadFile(dir / "missing").status().code(), StatusCode::kNotFound);
  auto usage = MeasureDiskUsage(dir);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->inodes, 2u);  // the directory and one file; no temp file left
  ASSERT_TRUE(RemoveAll(dir).ok());
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_TRUE(RemoveAll(dir).ok());
}

}  // namespace
}  // namespace berth

#include "common/process.h"

namespace berth {
namespace {

TEST(ProcessTest, CapturesOutputAndExitCode) {
  auto r = RunProcess({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST(ProcessTest, FeedsStdinAndAppliesEnv) {
  RunOptions opts;
  opts.stdin_data = std::string(200000, 'x');
  opts.env = {"GREETING=hi"};
  auto r = RunProcess({"/bin/sh", "-c", "wc -c; echo $GREETING"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "200000\nhi\n");
}

TEST(ProcessTest, TimeoutKills) {
  RunOptions opts;
  opts.timeout = std::chrono::milliseconds(200);
  auto r = RunProcess({"/bin/sleep", "10"}, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, 128 + 9);
}

TEST(ProcessTest, MissingProgramIsNotFound) {
  auto r = RunProcess({"/nonexistent/berth-program"});
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST(ProcessTest, OutputIsCapped) {
  RunOptions opts;
  opts.max_output = 1000;
  auto r = RunProcess({"/bin/sh", "-c", "head -c 100000 /dev/zero"}, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out.size(), 1000u);
  EXPECT_EQ(r->exit_code, 0);
}

// Reads `fd` to EOF.
std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

struct Pipe {
  UniqueFd r, w;
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    r.Reset(fds[0]);
    w.Reset(fds[1]);
  }
};

TEST(ProcessTest, ExitCodesAndSignals) {
  auto ok = RunProcess({"/bin/true"});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->exit_code, 0);
  EXPECT_EQ(ok->signal, 0);
  auto code = RunProcess({"/bin/sh", "-c", "exit 42"});
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(code->exit_code, 42);
  EXPECT_EQ(code->signal, 0);
  // Killed by a signal: 128 + signal, and the signal itself.
  auto killed = RunProcess({"/bin/sh", "-c", "kill -TERM $$"});
  ASSERT_TRUE(killed.ok());
  EXPECT_EQ(killed->signal, SIGTERM);
  EXPECT_EQ(killed->exit_code, 128 + SIGTERM);
  EXPECT_FALSE(killed->timed_out);
}

// The program starts with default dispositions and an empty mask, whatever
// the caller has: SIGTERM from the program's own shell still kills it.
TEST(ProcessTest, ProgramGetsDefaultSignalsAndEmptyMask) {
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &term, &old), 0);
  // Ignoring SIGPIPE, as berthd does, must not reach the program either.
  struct sigaction ignore {
  }, before{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGPIPE, &ignore, &before), 0);
  auto r = RunProcess({"/bin/sh", "-c", "grep -E '^Sig(Blk|Ign):' /proc/self/status"});
  ::sigaction(SIGPIPE, &before, nullptr);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(r->out.find("SigBlk:\t0000000000000000"), std::string::npos) << r->out;
  // Of the standard signals none is ignored (32 and 33 are glibc's own).
  size_t ign = r->out.find("SigIgn:\t");
  ASSERT_NE(ign, std::string::npos) << r->out;
  uint64_t ignored = std::stoull(r->out.substr(ign + 8, 16), nullptr, 16);
  EXPECT_EQ(ignored & 0x7fffffffULL, 0u) << r->out;
}

TEST(ProcessTest, DeadlineKillsTheWholeProcessGroup) {
  RunOptions opts;
  opts.timeout = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  // The grandchild holds stdout: it must die with the group, or the run
  // would wait for its EOF.
  auto r = RunProcess({"/bin/sh", "-c", "sleep 30 & echo $!; wait"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  pid_t sleeper = ParseDecimal<pid_t>(r->out).value_or(0);
  ASSERT_GT(sleeper, 0) << r->out;
  for (int i = 0; i < 100 && ::kill(sleeper, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Gone, or at most a zombie of init's.
  auto stat = ReadFile(StrCat("/proc/", sleeper, "/stat"));
  EXPECT_TRUE(!stat.ok() || stat->find(") Z ") != std::string::npos) << *stat;
}

TEST(ProcessTest, OnTimeoutGetsItsGraceFirst) {
  RunOptions opts;
  opts.timeout = std::chrono::milliseconds(100);
  opts.timeout_grace = std::chrono::milliseconds(5000);
  int calls = 0;
  opts.on_timeout = [&] { ++calls; };
  // Exits on its own within the grace period: not killed.
  auto r = RunProcess({"/bin/sh", "-c", "sleep 0.4; exit 5"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, 5);
}

TEST(ProcessTest, BoundedOutputTruncatesAndSaysSo) {
  RunOptions opts;
  opts.max_output = 1000;
  opts.max_stderr = 10;
  auto r = RunProcess(
      {"/bin/sh", "-c", "head -c 300000 /dev/zero; printf 'first-part-last-part' >&2"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, std::string(1000, '\0'));
  EXPECT_TRUE(r->out_truncated);
  EXPECT_EQ(r->err, "first-part");
  EXPECT_TRUE(r->err_truncated);
  opts.keep_stderr_tail = true;
  r = RunProcess({"/bin/sh", "-c", "printf 'first-part-last-part' >&2"}, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->err, "-last-part");
  EXPECT_FALSE(r->out_truncated);
  opts.max_output = 5;
  r = RunProcess({"/bin/sh", "-c", "printf 12345"}, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "12345");
  EXPECT_FALSE(r->out_truncated);
}

TEST(ProcessTest, StdinIsAMemfdHoldingAllOfIt) {
  RunOptions opts;
  opts.stdin_data = "hello";
  auto r = RunProcess({"/bin/sh", "-c", "readlink /proc/self/fd/0; cat"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "/memfd:berth-stdin (deleted)\nhello");
  // A program that never reads it exits normally (no SIGPIPE anywhere).
  opts.stdin_data = std::string(1 << 20, 'x');
  r = RunProcess({"/bin/true"}, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  // Without data stdin is /dev/null.
  r = RunProcess({"/bin/sh", "-c", "readlink /proc/self/fd/0"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "/dev/null\n");
}

TEST(ProcessTest, NoDescriptorOfTheCallerLeaks) {
  // Without close-on-exec, as a careless library might leave one.
  UniqueFd leaky(::fcntl(1, F_DUPFD, 77));
  ASSERT_GE(leaky.get(), 77);
  auto r = RunProcess({"/bin/sh", "-c", "ls /proc/$$/fd"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out.find(std::to_string(leaky.get())), std::string::npos) << r->out;
  Pipe sync;
  SpawnOptions opts;
  opts.extra_fds = {{3, sync.w.get()}};
  Pipe out;
  opts.stdout_fd = out.w.get();
  auto p = SpawnProcess({"/bin/sh", "-c", "echo via-3 >&3; ls /proc/$$/fd"}, opts);
  ASSERT_TRUE(p.ok()) << p.status();
  sync.w.Reset();
  out.w.Reset();
  EXPECT_EQ(ReadAll(sync.r.get()), "via-3\n");
  std::string fds = ReadAll(out.r.get());
  EXPECT_EQ(fds.find(std::to_string(leaky.get())), std::string::npos) << fds;
  EXPECT_NE(fds.find("3\n"), std::string::npos) << fds;
  EXPECT_EQ(*p->Wait(), 0);
  opts.extra_fds = {{1, sync.r.get()}};
  EXPECT_EQ(SpawnProcess({"/bin/true"}, opts).status().code(), StatusCode::kInvalidArgument);
}

TEST(ProcessTest, OutputOfALeftBehindProcessIsNotWaitedForForever) {
  RunOptions opts;
  opts.drain_after_exit = std::chrono::milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  auto r = RunProcess({"/bin/sh", "-c", "echo before; (sleep 5; echo late) & exit 0"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  EXPECT_EQ(r->out, "before\n");
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_FALSE(r->timed_out);
}

TEST(ProcessTest, WorkingDirectoryAndPathLookup) {
  RunOptions opts;
  opts.cwd = "/proc";
  auto r = RunProcess({"pwd"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "/proc\n");
  opts.cwd = "/nonexistent-berth-dir";
  auto bad = RunProcess({"pwd"}, opts);
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
  EXPECT_NE(bad.status().message().find("/nonexistent-berth-dir"), std::string::npos);
}

// Running: exists and is no zombie (an orphan waits for init to reap it).
bool Alive(pid_t pid) {
  auto stat = ReadFile(StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return false;
  size_t paren = stat->rfind(')');
  return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] != 'Z';
}

TEST(SpawnProcessTest, GivenStdioAndExitCode) {
  Pipe in, out, err;
  SpawnOptions opts;
  opts.stdin_fd = in.r.get();
  opts.stdout_fd = out.w.get();
  opts.stderr_fd = err.w.get();
  auto p = SpawnProcess({"/bin/sh", "-c", "read x; echo out-$x; echo err >&2; exit 3"}, opts);
  ASSERT_TRUE(p.ok()) << p.status();
  in.r.Reset();
  out.w.Reset();
  err.w.Reset();
  ASSERT_EQ(::write(in.w.get(), "hi\n", 3), 3);
  EXPECT_EQ(ReadAll(out.r.get()), "out-hi\n");
  EXPECT_EQ(ReadAll(err.r.get()), "err\n");
  auto code = p->Wait();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 3);
  EXPECT_EQ(*p->Wait(), 3) << "Wait is idempotent";
}

TEST(SpawnProcessTest, MissingProgramIsNotFound) {
  EXPECT_EQ(SpawnProcess({"/nonexistent/berth-program"}).status().code(), StatusCode::kNotFound);
  SpawnOptions opts;
  opts.adopt_orphans = true;
  EXPECT_EQ(SpawnProcess({"/nonexistent/berth-program"}, opts).status().code(),
            StatusCode::kNotFound);
}

TEST(SpawnProcessTest, WaitWithDeadlineAndDestructionKillsTheGroup) {
  Pipe out;
  SpawnOptions opts;
  opts.stdout_fd = out.w.get();
  pid_t child = 0;
  {
    auto p = SpawnProcess({"/bin/sh", "-c", "sleep 30 & echo $!; wait"}, opts);
    ASSERT_TRUE(p.ok()) << p.status();
    out.w.Reset();
    char buf[32] = {};
    ASSERT_GT(::read(out.r.get(), buf, sizeof buf - 1), 0);
    child = ParseDecimal<pid_t>(buf).value_or(0);
    ASSERT_GT(child, 0);
    auto code = p->Wait(std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
    EXPECT_EQ(code.status().code(), StatusCode::kDeadlineExceeded);
  }
  // The whole process group went, the background sleep included.
  for (int i = 0; i < 100 && Alive(child); ++i) ::usleep(10000);
  EXPECT_FALSE(Alive(child));
}

TEST(SpawnProcessTest, AdoptsWhatTheProgramLeavesBehind) {
  Pipe out;
  SpawnOptions opts;
  opts.adopt_orphans = true;
  opts.stdout_fd = out.w.get();
  // The subshell outlives sh, which prints its pid and exits: the subshell
  // is the subreaper's to reap, with its own exit code.
  auto p = SpawnProcess({"/bin/sh", "-c", "(sleep 0.3; exit 7) & echo $!"}, opts);
  ASSERT_TRUE(p.ok()) << p.status();
  out.w.Reset();
  std::string printed = ReadAll(out.r.get());  // EOF when the subshell ends
  pid_t orphan = ParseDecimal<pid_t>(printed).value_or(0);
  ASSERT_GT(orphan, 0) << printed;
  auto code = p->Wait();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  auto adopted = p->WaitAdopted(orphan);
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  EXPECT_EQ(*adopted, 7);
  EXPECT_EQ(p->WaitAdopted(orphan + 100000).status().code(), StatusCode::kFailedPrecondition);
}

TEST(SpawnProcessTest, DestructionLeavesStillRunningOrphansToInit) {
  Pipe out;
  SpawnOptions opts;
  opts.adopt_orphans = true;
  opts.stdout_fd = out.w.get();
  pid_t orphan = 0;
  auto start = std::chrono::steady_clock::now();
  {
    auto p = SpawnProcess({"/bin/sh", "-c", "sleep 30 >/dev/null & echo $!"}, opts);
    ASSERT_TRUE(p.ok()) << p.status();
    out.w.Reset();
    orphan = ParseDecimal<pid_t>(ReadAll(out.r.get())).value_or(0);
    ASSERT_GT(orphan, 0);
    EXPECT_EQ(*p->Wait(), 0);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  EXPECT_TRUE(Alive(orphan)) << "a daemon the program started must go on";
  ::kill(orphan, SIGKILL);
}

TEST(SpawnProcessTest, SubreaperHoldsNoneOfTheProgramsDescriptors) {
  Pipe out;
  SpawnOptions opts;
  opts.adopt_orphans = true;
  opts.stdout_fd = out.w.get();
  auto p = SpawnProcess({"/bin/sh", "-c", "sleep 30 >/dev/null & echo $!"}, opts);
  ASSERT_TRUE(p.ok()) << p.status();
  out.w.Reset();
  // EOF comes with sh's exit, while the sleep it left still runs.
  pid_t orphan = ParseDecimal<pid_t>(ReadAll(out.r.get())).value_or(0);
  ASSERT_GT(orphan, 0);
  EXPECT_TRUE(Alive(orphan));
  EXPECT_EQ(*p->Wait(), 0);
  EXPECT_EQ(p->WaitAdopted(orphan, std::chrono::steady_clock::now() + std::chrono::milliseconds(50))
                .status()
                .code(),
            StatusCode::kDeadlineExceeded);
  ASSERT_EQ(::kill(orphan, SIGKILL), 0);
  auto code = p->WaitAdopted(orphan);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 128 + SIGKILL);
  ASSERT_EQ(p->PollExits().code(), StatusCode::kOk);
  EXPECT_EQ(p->ExitOf(orphan), std::optional<int>(137));
}

}  // namespace
}  // namespace berth

// ---------------------------------------------------------------- KeyedMutex

namespace berth {
namespace {

TEST(KeyedMutexTest, SerialisesOneKeyAndTellsWhoWaited) {
  KeyedMutex locks;
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  std::atomic<int> waited_count{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      bool waited = false;
      auto held = locks.Acquire("pod-a", &waited);
      if (waited) ++waited_count;
      int now = ++inside;
      int seen = max_inside.load();
      while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      --inside;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(max_inside.load(), 1) << "two holders of one key at once";
  EXPECT_GE(waited_count.load(), 1);

  // A free key does not wait, and other keys are independent of a held one.
  bool waited = true;
  auto a = locks.Acquire("pod-a", &waited);
  EXPECT_FALSE(waited);
  auto b = std::async(std::launch::async, [&] {
    bool w = true;
    auto held = locks.Acquire("pod-b", &w);
    return w;
  });
  EXPECT_EQ(b.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_FALSE(b.get());
}

}  // namespace
}  // namespace berth

// ---------------------------------------------------------------- proc

namespace berth {
namespace {

TEST(ProcTest, ListsThisProcessWithItsCommandLine) {
  auto self = ReadFile("/proc/self/cmdline");
  ASSERT_TRUE(self.ok());
  bool found = false;
  for (const ProcessInfo& p : ListProcesses()) {
    if (p.pid == ::getpid()) {
      found = true;
      EXPECT_EQ(p.cmdline, *self);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(CmdlineOf({"berth-pause", "/run/x"}), std::string("berth-pause\0/run/x\0", 19));
  EXPECT_EQ(CmdlineOf({}), "");
}

}  // namespace
}  // namespace berth

#include "common/base64.h"

namespace berth {
namespace {

// RFC 4648 section 10's test vectors, both ways.
TEST(Base64Test, RfcVectors) {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    std::optional<std::string> back = Base64Decode(encoded);
    ASSERT_TRUE(back.has_value()) << encoded;
    EXPECT_EQ(*back, plain);
  }
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  EXPECT_EQ(*Base64Decode(Base64Encode(bytes)), bytes);
}

TEST(Base64Test, LenientPaddingStrictAlphabet) {
  EXPECT_EQ(*Base64Decode("Zm8"), "fo");  // padding missing
  EXPECT_EQ(*Base64Decode("Zg"), "f");
  EXPECT_FALSE(Base64Decode("Z").has_value());         // no encoding is 1 mod 4 long
  EXPECT_FALSE(Base64Decode("Zm 9v").has_value());     // blanks are not skipped
  EXPECT_FALSE(Base64Decode("Zg==Zg==").has_value());  // padding in the middle
  EXPECT_FALSE(Base64Decode("Zm9v_-").has_value());    // URL alphabet is another encoding
  EXPECT_TRUE(IsBase64Char('+'));
  EXPECT_FALSE(IsBase64Char('='));
}

}  // namespace
}  // namespace berth

namespace berth {
namespace {

TEST(ParseDecimalTest, ReadsTheWholeTextOrNothing) {
  EXPECT_EQ(ParseDecimal<int>("42"), 42);
  EXPECT_EQ(ParseDecimal<int>("  -7\n"), -7);
  EXPECT_EQ(ParseDecimal<pid_t>("12345\n"), 12345);
  EXPECT_EQ(ParseDecimal<int>(""), std::nullopt);
  EXPECT_EQ(ParseDecimal<int>(" \n"), std::nullopt);
  EXPECT_EQ(ParseDecimal<int>("12abc"), std::nullopt);  // atoi would say 12
  EXPECT_EQ(ParseDecimal<int>("abc"), std::nullopt);    // atoi would say 0
  EXPECT_EQ(ParseDecimal<int>("1 2"), std::nullopt);
  EXPECT_EQ(ParseDecimal<int>("99999999999"), std::nullopt);  // does not fit
  EXPECT_EQ(ParseDecimal<uint8_t>("-1"), std::nullopt);
}

TEST(ProcessStatTest, ParsesFieldsAfterTheLastParenthesis) {
  // Fields 6 to 13, then utime, stime, cutime, cstime, then the rest.
  const std::string kMiddle = " 1234 0 -1 4194560 100 0 0 0 ";
  auto s = ParseProcessStat("1234 (a) b (c)) S 17 1234" + kMiddle + "25 7 3 2 20 0 1 0 99\n");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->state, 'S');
  EXPECT_EQ(s->ppid, 17);
  EXPECT_EQ(s->pgrp, 1234);
  EXPECT_EQ(s->utime, 25);
  EXPECT_EQ(s->stime, 7);
  EXPECT_EQ(s->cutime, 3);
  EXPECT_EQ(s->cstime, 2);
  const std::string kCpu = "25 7 3 2";
  EXPECT_EQ(ParseProcessStat("1234 sh S 1 2" + kMiddle + kCpu), std::nullopt);     // no parenthesis
  EXPECT_EQ(ParseProcessStat("1 (sh) S 1"), std::nullopt);                         // cut short
  EXPECT_EQ(ParseProcessStat("1 (sh) S 1 2" + kMiddle + "25 7 3"), std::nullopt);  // no cstime
  EXPECT_EQ(ParseProcessStat("1 (sh) S x 2" + kMiddle + kCpu), std::nullopt);
  EXPECT_EQ(ParseProcessStat("1 (sh) SS 1 2" + kMiddle + kCpu), std::nullopt);
  EXPECT_EQ(ParseProcessStat("1 (sh) S 1 2" + kMiddle + "25 x 3 2"), std::nullopt);
}

TEST(ProcessStatTest, ReadsThisProcess) {
  auto s = ReadProcessStat(::getpid());
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->ppid, ::getppid());
  EXPECT_EQ(s->pgrp, ::getpgrp());
  EXPECT_EQ(s->state, 'R');
}

}  // namespace
}  // namespace berth
