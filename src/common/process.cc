#include "common/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

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

}  // namespace

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
  UniqueFd in_r, in_w, out_r, out_w, err_r, err_w;
  RETURN_IF_ERROR(MakePipe(in_r, in_w));
  RETURN_IF_ERROR(MakePipe(out_r, out_w));
  RETURN_IF_ERROR(MakePipe(err_r, err_w));

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : options.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, StrCat("fork for ", argv[0]));
  if (pid == 0) {
    // Child: only async-signal-safe calls from here on.
    ::dup2(in_r.get(), 0);
    ::dup2(out_w.get(), 1);
    ::dup2(err_w.get(), 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Own process group, so a timeout kills the program's children too.
    ::setpgid(0, 0);
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) ::_exit(127);
    if (options.env.empty()) {
      ::execvp(args[0], args.data());
    } else {
      ::execvpe(args[0], args.data(), envp.data());
    }
    const char msg[] = "exec failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  in_r.Reset();
  out_w.Reset();
  err_w.Reset();

  ProcessResult result;
  auto deadline = options.timeout ? std::chrono::steady_clock::now() + *options.timeout
                                  : std::chrono::steady_clock::time_point::max();
  size_t stdin_off = 0;
  if (options.stdin_data.empty()) in_w.Reset();
  ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  char buf[65536];
  while (out_r.valid() || err_r.valid()) {
    pollfd fds[3];
    int n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (out_r.valid()) {
      fds[n] = {out_r.get(), POLLIN, 0};
      out_i = n++;
    }
    if (err_r.valid()) {
      fds[n] = {err_r.get(), POLLIN, 0};
      err_i = n++;
    }
    if (in_w.valid()) {
      fds[n] = {in_w.get(), POLLOUT, 0};
      in_i = n++;
    }
    int wait_ms = -1;
    if (options.timeout) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        if (options.on_timeout && !result.timed_out) {
          result.timed_out = true;
          options.on_timeout();
          deadline = std::chrono::steady_clock::now() + options.timeout_grace;
          continue;
        }
        result.timed_out = true;
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
        break;
      }
      wait_ms = static_cast<int>(left.count());
    }
    int rc = ::poll(fds, n, wait_ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return ErrnoStatus(errno, StrCat("poll output of ", argv[0]));
    }
    auto drain = [&](int idx, UniqueFd& fd, std::string& sink) {
      if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      ssize_t got = ::read(fd.get(), buf, sizeof buf);
      if (got <= 0) {
        if (got < 0 && errno == EINTR) return;
        fd.Reset();
        return;
      }
      size_t room = options.max_output > sink.size() ? options.max_output - sink.size() : 0;
      sink.append(buf, std::min(room, static_cast<size_t>(got)));
    };
    drain(out_i, out_r, result.out);
    drain(err_i, err_r, result.err);
    if (in_i >= 0 && (fds[in_i].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = ::write(in_w.get(), options.stdin_data.data() + stdin_off,
                          options.stdin_data.size() - stdin_off);
      if (w > 0) stdin_off += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) in_w.Reset();
      if (stdin_off >= options.stdin_data.size()) in_w.Reset();
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, StrCat("wait for ", argv[0]));
  }
  if (WIFEXITED(status))
    result.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    result.exit_code = 128 + WTERMSIG(status);
  if (result.exit_code == 127 && result.err == "exec failed\n") {
    return NotFoundError(StrCat("cannot execute ", argv[0]));
  }
  return result;
}

}  // namespace berth
