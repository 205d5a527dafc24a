#include "common/process.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#include "common/fs.h"

namespace berth {

namespace {

Status MakePipe(UniqueFd& r, UniqueFd& w) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  r.Reset(fds[0]);
  w.Reset(fds[1]);
  return OkStatus();
}

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

int RemainingMs(std::optional<std::chrono::steady_clock::time_point> deadline) {
  if (!deadline) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      *deadline - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

// Appends the decimal form of `v` to buf at *len (async-signal-safe).
void AppendInt(char* buf, size_t* len, long v) {
  auto r = std::to_chars(buf + *len, buf + 64, v);
  *len = static_cast<size_t>(r.ptr - buf);
}

// Makes `fd` the descriptor `target` of this (child) process; -1 is /dev/null.
void SetStdio(int fd, int target) {
  if (fd < 0) {
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0 && null != target) {
      ::dup2(null, target);
      ::close(null);
    }
    return;
  }
  if (fd == target) {
    ::fcntl(fd, F_SETFD, 0);  // keep it across exec
  } else {
    ::dup2(fd, target);
  }
}

// The subreaper of an adopt_orphans spawn: starts the program with
// posix_spawnp (attributes prepared by the parent: no allocation here) and
// then reaps every child it gets, reporting "<pid> <exit code>\n" on fd 3.
// A spawn failure is written as an int to errno_fd. Never returns.
// Async-signal-safe calls only (glibc's posix_spawn is a clone(CLONE_VFORK)
// and an exec, with no lock or allocation).
[[noreturn]] void SubreaperMain(const posix_spawn_file_actions_t* actions,
                                const posix_spawnattr_t* attr, char* const* args, char* const* envp,
                                int errno_fd) {
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  pid_t program = -1;
  int rc = ::posix_spawnp(&program, args[0], actions, attr, args, envp);
  if (rc != 0) {
    (void)!::write(errno_fd, &rc, sizeof rc);
    ::_exit(127);
  }
  // Hold nothing of the program's: its stdio must reach EOF when it and
  // what it left behind close them, and the errno pipe when it exec'd.
  ::syscall(SYS_close_range, 4u, ~0u, 0u);
  int null = ::open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
  if (null > 3) ::close(null);
  ::signal(SIGPIPE, SIG_IGN);  // berthd went away: keep reaping anyway
  char line[64];
  size_t len = 0;
  AppendInt(line, &len, program);
  line[len++] = '\n';
  (void)!::write(3, line, len);
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD: the program and everything it left have exited
    }
    len = 0;
    AppendInt(line, &len, pid);
    line[len++] = ' ';
    AppendInt(line, &len, ExitCodeOf(status));
    line[len++] = '\n';
    (void)!::write(3, line, len);
  }
  ::_exit(0);
}

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

// posix_spawn's C resources, released on every return path.
struct SpawnAttributes {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnAttributes() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnAttributes() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
};

// Starts argv[0] (looked up in PATH unless it has a '/') with posix_spawn:
// own process group, empty signal mask, default dispositions, in `cwd`
// (empty: ours), environment `env` (empty: ours). `fds` maps the program's
// descriptors to ours (-1: /dev/null); every other descriptor is closed in
// the program. glibc's posix_spawn runs the child with CLONE_VFORK and
// reports an exec failure as its return value.
StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                      const std::string& cwd, const std::vector<std::pair<int, int>>& fds) {
  const std::string& name = argv[0];
  // Our descriptors move above every target number first, so that no
  // dup2 of the file actions overwrites a source another one still needs.
  int highest = 2;
  for (const auto& [target, source] : fds) highest = std::max(highest, target);
  std::vector<UniqueFd> lifted;
  SpawnAttributes sa;
  for (const auto& [target, source] : fds) {
    if (source < 0) {
      posix_spawn_file_actions_addopen(&sa.actions, target, "/dev/null", O_RDWR, 0);
      continue;
    }
    UniqueFd copy(::fcntl(source, F_DUPFD_CLOEXEC, highest + 1));
    if (!copy.valid()) return ErrnoStatus(errno, StrCat("dup descriptor for ", name));
    posix_spawn_file_actions_adddup2(&sa.actions, copy.get(), target);
    lifted.push_back(std::move(copy));
  }
  // Nothing of ours but what `fds` names, whatever lacks close-on-exec.
  posix_spawn_file_actions_addclosefrom_np(&sa.actions, highest + 1);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&sa.actions, cwd.c_str());
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&sa.attr, &none);
  posix_spawnattr_setsigdefault(&sa.attr, &all);
  posix_spawnattr_setpgroup(&sa.attr, 0);
  posix_spawnattr_setflags(&sa.attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, name.c_str(), &sa.actions, &sa.attr, args.data(),
                          env.empty() ? environ : envp.data());
  if (rc == 0) return pid;
  std::string where = cwd.empty() ? "" : StrCat(" in ", cwd);
  if (rc == ENOENT || rc == EACCES || rc == ENOEXEC || rc == ENOTDIR || rc == ELOOP ||
      rc == ENAMETOOLONG) {
    return NotFoundError(StrCat("cannot execute ", name, where, ": ", std::strerror(rc)));
  }
  return ErrnoStatus(rc, StrCat("spawn ", name, where));
}

}  // namespace

StatusOr<Subprocess> SpawnProcess(const std::vector<std::string>& argv,
                                  const SpawnOptions& options) {
  if (argv.empty()) return InvalidArgumentError("SpawnProcess: empty argv");
  if (!options.adopt_orphans) {
    std::vector<std::pair<int, int>> fds = {
        {0, options.stdin_fd}, {1, options.stdout_fd}, {2, options.stderr_fd}};
    for (const auto& [target, source] : options.extra_fds) {
      if (target < 3 || source < 0) {
        return InvalidArgumentError(
            StrCat("SpawnProcess ", argv[0], ": bad extra descriptor ", target, " <- ", source));
      }
      fds.emplace_back(target, source);
    }
    ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, options.env, options.cwd, fds));
    Subprocess p;
    p.name_ = argv[0];
    p.reaper_ = pid;
    p.pid_ = pid;
    return p;
  }
  if (!options.extra_fds.empty()) {
    return InvalidArgumentError(
        StrCat("SpawnProcess ", argv[0], ": extra descriptors need !adopt_orphans"));
  }
  UniqueFd errno_r, errno_w, report_r, report_w;
  RETURN_IF_ERROR(MakePipe(errno_r, errno_w));
  if (options.adopt_orphans) RETURN_IF_ERROR(MakePipe(report_r, report_w));

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : options.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  // The program's own process group and directory, applied by posix_spawnp
  // in the subreaper; prepared here, where allocating is allowed.
  SpawnAttributes sa;
  if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&sa.actions, options.cwd.c_str());
  posix_spawnattr_setpgroup(&sa.attr, 0);
  posix_spawnattr_setflags(&sa.attr, POSIX_SPAWN_SETPGROUP);
  char* const* program_env = options.env.empty() ? environ : envp.data();

  pid_t child = ::fork();
  if (child < 0) return ErrnoStatus(errno, StrCat("fork for ", argv[0]));
  if (child == 0) {
    // Only async-signal-safe calls from here on. The errno pipe moves above
    // the stdio numbers first, so that setting up stdio cannot clobber it.
    auto lift = [](int fd) { return fd < 0 ? -1 : ::fcntl(fd, F_DUPFD_CLOEXEC, 10); };
    int err_fd = lift(errno_w.get());
    int in = lift(options.stdin_fd), out = lift(options.stdout_fd), err = lift(options.stderr_fd);
    int report = lift(report_w.get());
    SetStdio(in, 0);
    SetStdio(out, 1);
    SetStdio(err, 2);
    if (report >= 0) {
      // The subreaper's fd 3; close-on-exec, so the program does not hold it.
      ::dup2(report, 3);
      ::fcntl(3, F_SETFD, FD_CLOEXEC);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    SubreaperMain(&sa.actions, &sa.attr, args.data(), program_env, err_fd);
  }
  Subprocess p;
  p.name_ = argv[0];
  p.reaper_ = child;
  p.pid_ = options.adopt_orphans ? -1 : child;
  errno_w.Reset();
  report_w.Reset();
  if (!options.adopt_orphans) ::setpgid(child, child);  // whichever runs first
  // EOF once the program exec'd; an errno if it could not.
  int err = 0;
  ssize_t n;
  do {
    n = ::read(errno_r.get(), &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  if (options.adopt_orphans) {
    p.report_ = std::move(report_r);
    // The subreaper's first line: the program's pid.
    std::string first;
    char c;
    while (::read(p.report_.get(), &c, 1) == 1 && c != '\n') first.push_back(c);
    int pid = 0;
    std::from_chars(first.data(), first.data() + first.size(), pid);
    p.pid_ = pid > 0 ? pid : -1;
  }
  if (n == static_cast<ssize_t>(sizeof err)) {
    p.Release();  // reaps the subreaper / the failed child
    if (err == ENOENT || err == EACCES) return NotFoundError(StrCat("cannot execute ", argv[0]));
    return ErrnoStatus(err, StrCat("execute ", argv[0]));
  }
  if (p.pid_ <= 0) {
    p.Release();
    return InternalError(StrCat("the subreaper of ", argv[0], " reported no pid"));
  }
  return p;
}

Subprocess::Subprocess(Subprocess&& o) noexcept { *this = std::move(o); }

Subprocess& Subprocess::operator=(Subprocess&& o) noexcept {
  if (this == &o) return *this;
  Release();
  name_ = std::move(o.name_);
  pid_ = std::exchange(o.pid_, -1);
  reaper_ = std::exchange(o.reaper_, -1);
  reaper_reaped_ = std::exchange(o.reaper_reaped_, false);
  report_ = std::move(o.report_);
  report_buf_ = std::move(o.report_buf_);
  report_eof_ = std::exchange(o.report_eof_, false);
  exits_ = std::move(o.exits_);
  return *this;
}

Subprocess::~Subprocess() { Release(); }

void Subprocess::Release() {
  if (reaper_ <= 0) return;
  if (!reaper_reaped_) {
    if (pid_ > 0 && !ExitOf(pid_)) Signal(SIGKILL);
    if (report_.valid()) {
      // Normally the subreaper is about to exit (its last child is reaped).
      // If it still has children, they are processes the adopted one left
      // in a shared PID namespace (a daemon an exec started): they go on,
      // reparented to init, as they would have without a subreaper.
      (void)ReadReports([] { return false; },
                        std::chrono::steady_clock::now() + std::chrono::milliseconds(50));
      if (!report_eof_) ::kill(reaper_, SIGKILL);
    }
    int status;
    while (::waitpid(reaper_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  reaper_ = -1;
  pid_ = -1;
  report_.Reset();
}

void Subprocess::Signal(int sig) {
  if (pid_ <= 0 || ExitOf(pid_) || (reaper_ == pid_ && reaper_reaped_)) return;
  ::kill(-pid_, sig);
}

Status Subprocess::PollExits() {
  Status s = ReadReports([] { return false; }, std::chrono::steady_clock::now());
  return s.code() == StatusCode::kDeadlineExceeded ? OkStatus() : s;
}

std::optional<int> Subprocess::ExitOf(pid_t pid) const {
  auto it = exits_.find(pid);
  if (it == exits_.end()) return std::nullopt;
  return it->second;
}

Status Subprocess::ReadReports(const std::function<bool()>& done,
                               std::optional<std::chrono::steady_clock::time_point> deadline) {
  char buf[512];
  for (;;) {
    if (report_eof_ || !report_.valid()) return OkStatus();
    pollfd pfd{report_.get(), POLLIN, 0};
    int rc = ::poll(&pfd, 1, RemainingMs(deadline));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return ErrnoStatus(errno, StrCat("poll exit reports of ", name_));
    if (rc == 0) {
      if (done()) return OkStatus();
      return DeadlineExceededError(StrCat(name_, " did not exit in time"));
    }
    ssize_t n = ::read(report_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      report_eof_ = true;
      return OkStatus();
    }
    report_buf_.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = report_buf_.find('\n')) != std::string::npos) {
      std::string line = report_buf_.substr(0, nl);
      report_buf_.erase(0, nl + 1);
      int pid = 0, code = -1;
      size_t sp = line.find(' ');
      if (sp == std::string::npos) continue;
      std::from_chars(line.data(), line.data() + sp, pid);
      std::from_chars(line.data() + sp + 1, line.data() + line.size(), code);
      if (pid > 0) exits_[pid] = code;
    }
    if (done()) return OkStatus();
  }
}

StatusOr<int> Subprocess::Wait(std::optional<std::chrono::steady_clock::time_point> deadline) {
  if (pid_ <= 0) return FailedPreconditionError(StrCat(name_, " is not running"));
  if (report_.valid()) {
    RETURN_IF_ERROR(ReadReports([&] { return ExitOf(pid_).has_value(); }, deadline));
    if (auto code = ExitOf(pid_)) return *code;
    return InternalError(StrCat("the subreaper of ", name_, " ended without its exit status"));
  }
  if (auto code = ExitOf(pid_)) return *code;
  if (deadline) {
    // Our unreaped child: its pidfd cannot name another process.
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
    if (!pidfd.valid()) return ErrnoStatus(errno, StrCat("pidfd_open ", name_));
    for (;;) {
      pollfd pfd{pidfd.get(), POLLIN, 0};
      int rc = ::poll(&pfd, 1, RemainingMs(deadline));
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) return ErrnoStatus(errno, StrCat("poll pidfd of ", name_));
      if (rc == 0) return DeadlineExceededError(StrCat(name_, " did not exit in time"));
      break;
    }
  }
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, StrCat("wait for ", name_));
  }
  reaper_reaped_ = true;
  exits_[pid_] = ExitCodeOf(status);
  return exits_[pid_];
}

StatusOr<int> Subprocess::WaitAdopted(
    pid_t pid, std::optional<std::chrono::steady_clock::time_point> deadline) {
  if (!report_.valid()) {
    return FailedPreconditionError(StrCat(name_, " was not spawned with adopt_orphans"));
  }
  RETURN_IF_ERROR(ReadReports([&] { return ExitOf(pid).has_value(); }, deadline));
  if (auto code = ExitOf(pid)) return *code;
  return FailedPreconditionError(
      StrCat("process ", pid, " was not left behind by ", name_, " (its subreaper is done)"));
}

std::string DescribeFailure(const std::vector<std::string>& argv, const ProcessResult& r) {
  std::string cmd;
  for (size_t i = 0; i < argv.size() && i < 4; ++i) cmd += (i ? " " : "") + argv[i];
  std::string err = r.err.empty() ? r.out : r.err;
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  if (r.timed_out) return StrCat(cmd, " timed out");
  return StrCat(cmd, " failed (exit ", r.exit_code, ")", err.empty() ? "" : ": ", err);
}

StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                   const RunOptions& options) {
  if (argv.empty()) return InvalidArgumentError("RunProcess: empty argv");
  const std::string& name = argv[0];
  UniqueFd in;
  if (!options.stdin_data.empty()) {
    in.Reset(::memfd_create("berth-stdin", MFD_CLOEXEC));
    if (!in.valid()) return ErrnoStatus(errno, StrCat("memfd_create for stdin of ", name));
    RETURN_IF_ERROR(WriteAll(in.get(), options.stdin_data, StrCat("write stdin of ", name)));
    if (::lseek(in.get(), 0, SEEK_SET) != 0) {
      return ErrnoStatus(errno, StrCat("lseek stdin of ", name));
    }
  }
  UniqueFd out_r, out_w, err_r, err_w;
  RETURN_IF_ERROR(MakePipe(out_r, out_w));
  RETURN_IF_ERROR(MakePipe(err_r, err_w));
  ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, options.env, options.cwd,
                                    {{0, in.get()}, {1, out_w.get()}, {2, err_w.get()}}));
  in.Reset();
  out_w.Reset();
  err_w.Reset();
  // Our unreaped child: its pidfd cannot name another process. It wakes
  // poll() at the exit; without one (old kernels) poll in short steps.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  using Clock = std::chrono::steady_clock;
  ProcessResult result;
  const size_t max_err = options.max_stderr != 0 ? options.max_stderr : options.max_output;
  std::optional<Clock::time_point> deadline;
  if (options.timeout) deadline = Clock::now() + *options.timeout;
  std::optional<Clock::time_point> drain_deadline;
  int wstatus = 0;
  bool exited = false;
  char buf[65536];
  auto reap = [&](int flags) -> StatusOr<bool> {
    for (;;) {
      pid_t w = ::waitpid(pid, &wstatus, flags);
      if (w == pid) return true;
      if (w == 0) return false;
      if (errno != EINTR) return ErrnoStatus(errno, StrCat("wait for ", name));
    }
  };
  auto kill_group = [&] {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
  };
  while (!exited || out_r.valid() || err_r.valid()) {
    auto now = Clock::now();
    if (deadline && now >= *deadline && !exited) {
      if (options.on_timeout && !result.timed_out) {
        result.timed_out = true;
        options.on_timeout();
        deadline = Clock::now() + options.timeout_grace;
        continue;
      }
      result.timed_out = true;
      kill_group();
      ASSIGN_OR_RETURN(exited, reap(0));
      drain_deadline =
          Clock::now() + std::min(options.drain_after_exit, std::chrono::milliseconds(100));
      continue;
    }
    // A process the program left behind may hold its stdout after it
    // exited; give it drain_after_exit, then stop waiting for EOF.
    if (drain_deadline && now >= *drain_deadline) break;
    std::optional<Clock::time_point> until = drain_deadline ? drain_deadline : deadline;
    if (deadline && drain_deadline) until = std::min(*deadline, *drain_deadline);
    long long wait_ms = -1;
    if (until) {
      wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(*until - now).count() + 1;
    }
    if (!exited && !pidfd.valid()) wait_ms = wait_ms < 0 ? 20 : std::min<long long>(wait_ms, 20);

    pollfd fds[3];
    int nfds = 0;
    int out_i = -1, err_i = -1;
    if (out_r.valid()) {
      out_i = nfds;
      fds[nfds++] = {out_r.get(), POLLIN, 0};
    }
    if (err_r.valid()) {
      err_i = nfds;
      fds[nfds++] = {err_r.get(), POLLIN, 0};
    }
    if (!exited && pidfd.valid()) fds[nfds++] = {pidfd.get(), POLLIN, 0};
    int n = ::poll(fds, static_cast<nfds_t>(nfds),
                   static_cast<int>(std::min<long long>(wait_ms, 1 << 30)));
    if (n < 0 && errno != EINTR) {
      int err = errno;
      kill_group();
      (void)reap(0);
      return ErrnoStatus(err, StrCat("poll output of ", name));
    }
    if (n > 0) {
      for (int idx : {out_i, err_i}) {
        if (idx < 0 || fds[idx].revents == 0) continue;
        const bool is_out = idx == out_i;
        UniqueFd& fd = is_out ? out_r : err_r;
        ssize_t got = ::read(fd.get(), buf, sizeof buf);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got <= 0) {
          fd.Reset();
          continue;
        }
        std::string& sink = is_out ? result.out : result.err;
        const size_t cap = is_out ? options.max_output : max_err;
        sink.append(buf, static_cast<size_t>(got));
        if (sink.size() > cap) {
          (is_out ? result.out_truncated : result.err_truncated) = true;
          if (!is_out && options.keep_stderr_tail) {
            sink.erase(0, sink.size() - cap);
          } else {
            sink.resize(cap);
          }
        }
      }
    }
    if (!exited) {
      ASSIGN_OR_RETURN(exited, reap(WNOHANG));
      if (exited) drain_deadline = Clock::now() + options.drain_after_exit;
    }
  }
  result.exit_code = ExitCodeOf(wstatus);
  if (WIFSIGNALED(wstatus)) result.signal = WTERMSIG(wstatus);
  return result;
}

}  // namespace berth
