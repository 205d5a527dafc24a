#include "network/plugin_exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "common/fs.h"

namespace berth::network {

namespace {

constexpr size_t kMaxStdout = 16 << 20;
constexpr size_t kMaxStderr = 64 << 10;

// Wraps posix_spawn's C resources so every return path releases them.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

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

}  // namespace

StatusOr<ExecOutput> ExecWithTimeout(const std::filesystem::path& binary,
                                     const std::vector<std::string>& env,
                                     std::string_view stdin_data,
                                     std::chrono::milliseconds timeout) {
  const std::string name = binary.string();
  // Standard input is a memfd holding the whole config rather than a pipe: no
  // writer loop, and no SIGPIPE when a plugin exits without reading it.
  UniqueFd in(::memfd_create("cni-stdin", MFD_CLOEXEC));
  if (!in.valid()) return ErrnoStatus(errno, StrCat("memfd_create for stdin of ", name));
  RETURN_IF_ERROR(WriteAll(in.get(), stdin_data, StrCat("write stdin of ", name)));
  if (::lseek(in.get(), 0, SEEK_SET) != 0)
    return ErrnoStatus(errno, StrCat("lseek stdin of ", name));

  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus(errno, StrCat("pipe for stdout of ", name));
  UniqueFd out_r(p[0]), out_w(p[1]);
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus(errno, StrCat("pipe for stderr of ", name));
  UniqueFd err_r(p[0]), err_w(p[1]);

  SpawnSetup setup;
  posix_spawn_file_actions_adddup2(&setup.actions, in.get(), 0);
  posix_spawn_file_actions_adddup2(&setup.actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&setup.actions, err_w.get(), 2);
  // Own process group, so a timeout kills the plugin's children too (portmap
  // runs iptables); default signal dispositions and an empty mask, whatever
  // the daemon set for itself.
  posix_spawnattr_setflags(&setup.attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&setup.attr, 0);
  sigset_t mask;
  sigemptyset(&mask);
  posix_spawnattr_setsigmask(&setup.attr, &mask);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM}) {
    sigaddset(&defaults, sig);
  }
  posix_spawnattr_setsigdefault(&setup.attr, &defaults);

  std::vector<char*> argv = {const_cast<char*>(name.c_str()), nullptr};
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, name.c_str(), &setup.actions, &setup.attr, argv.data(), envp.data());
  if (rc != 0) return ErrnoStatus(rc, StrCat("execute CNI plugin ", name));
  out_w.Reset();
  err_w.Reset();
  in.Reset();

  // A pidfd wakes poll() when the child exits; without one (old kernels) poll
  // in short steps instead.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  std::optional<Clock::time_point> drain_deadline;
  ExecOutput result;
  int wstatus = 0;
  bool exited = false;
  char buf[65536];
  while (true) {
    if (exited && !out_r.valid() && !err_r.valid()) break;
    auto now = Clock::now();
    if (now >= deadline) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      while (!exited && ::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
      }
      return DeadlineExceededError(
          StrCat("CNI plugin ", name, " did not finish within ", timeout.count(), "ms; killed it"));
    }
    // A grandchild that inherited stdout may keep it open after the plugin
    // exited; give it a moment, then stop waiting for EOF.
    if (drain_deadline && now >= *drain_deadline) break;
    auto until = drain_deadline ? std::min(deadline, *drain_deadline) : deadline;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count() + 1;
    if (!exited && !pidfd.valid()) wait = std::min<long long>(wait, 20);

    pollfd fds[3];
    int nfds = 0;
    int out_idx = -1, err_idx = -1;
    if (out_r.valid()) {
      out_idx = nfds;
      fds[nfds++] = {out_r.get(), POLLIN, 0};
    }
    if (err_r.valid()) {
      err_idx = nfds;
      fds[nfds++] = {err_r.get(), POLLIN, 0};
    }
    if (!exited && pidfd.valid()) fds[nfds++] = {pidfd.get(), POLLIN, 0};
    int n = ::poll(fds, nfds, static_cast<int>(std::min<long long>(wait, 1 << 30)));
    if (n < 0 && errno != EINTR) return ErrnoStatus(errno, StrCat("poll output of ", name));
    if (n > 0) {
      for (int idx : {out_idx, err_idx}) {
        if (idx < 0 || fds[idx].revents == 0) continue;
        UniqueFd& fd = idx == out_idx ? out_r : err_r;
        ssize_t r = ::read(fd.get(), buf, sizeof(buf));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
          fd.Reset();
          continue;
        }
        std::string& sink = idx == out_idx ? result.out : result.err;
        size_t cap = idx == out_idx ? kMaxStdout : kMaxStderr;
        sink.append(buf, static_cast<size_t>(r));
        if (sink.size() > cap) {
          // stdout past the cap cannot be a valid result anyway; keep stderr's tail.
          if (idx == out_idx) {
            sink.resize(cap);
          } else {
            sink.erase(0, sink.size() - cap);
          }
        }
      }
    }
    if (!exited) {
      pid_t w = ::waitpid(pid, &wstatus, WNOHANG);
      if (w == pid) {
        exited = true;
        drain_deadline = Clock::now() + std::chrono::seconds(1);
      } else if (w < 0 && errno != EINTR) {
        return ErrnoStatus(errno, StrCat("wait for CNI plugin ", name));
      }
    }
  }
  if (WIFSIGNALED(wstatus)) {
    result.signaled = true;
    result.signal = WTERMSIG(wstatus);
  } else {
    result.exit_code = WEXITSTATUS(wstatus);
  }
  return result;
}

}  // namespace berth::network
