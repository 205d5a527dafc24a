// Must not include the CRI proto (see berthd_process_exec.h).
#include "support/berthd_process_exec.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "common/fs.h"

namespace berth::testing::internal {

namespace {

ChildExit FromWaitStatus(int status) {
  ChildExit e;
  if (WIFEXITED(status)) {
    e.exited = true;
    e.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    e.signal = WTERMSIG(status);
  }
  return e;
}

}  // namespace

std::string ChildExit::ToString() const {
  if (exited) return StrCat("exit code ", exit_code);
  return StrCat("killed by signal ", signal, " (", ::strsignal(signal), ")");
}

StatusOr<pid_t> SpawnLogged(const std::vector<std::string>& argv,
                            const std::vector<std::string>& env,
                            const std::filesystem::path& log_file) {
  if (argv.empty()) return InvalidArgumentError("SpawnLogged: empty argv");
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  UniqueFd log_fd(::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log_fd.valid()) return ErrnoStatus(errno, StrCat("open ", log_file.string()));
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null.valid()) return ErrnoStatus(errno, "open /dev/null");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  sigset_t empty;
  sigemptyset(&empty);
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, StrCat("fork for ", argv[0]));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::sigprocmask(SIG_SETMASK, &empty, nullptr);
    if (::dup2(null.get(), 0) < 0 || ::dup2(log_fd.get(), 1) < 0 || ::dup2(log_fd.get(), 2) < 0) {
      ::_exit(126);
    }
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

std::optional<ChildExit> PollChild(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid) return FromWaitStatus(status);
  if (r < 0) {
    // ECHILD: already reaped elsewhere; report it as gone rather than running forever.
    ChildExit e;
    e.signal = 0;
    return e;
  }
  return std::nullopt;
}

StatusOr<ChildExit> TerminateChild(pid_t pid, std::chrono::milliseconds timeout) {
  if (::kill(pid, SIGTERM) != 0 && errno != ESRCH) {
    return ErrnoStatus(errno, StrCat("kill -TERM ", pid));
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto e = PollChild(pid)) return *e;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ChildExit e = KillChild(pid);
  return DeadlineExceededError(StrCat("process ", pid, " did not end within ", timeout.count(),
                                      " ms of SIGTERM; killed it (", e.ToString(), ")"));
}

ChildExit KillChild(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r != pid) return ChildExit{};
  return FromWaitStatus(status);
}

}  // namespace berth::testing::internal
