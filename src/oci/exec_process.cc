#include "oci/exec_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

#include "common/proc.h"

namespace berth::oci {

namespace {

using Clock = std::chrono::steady_clock;

int RemainingMs(std::optional<Clock::time_point> deadline) {
  if (!deadline) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

// Process group id of `pid` from /proc/<pid>/stat, 0 when unreadable.
pid_t ProcessGroupOf(pid_t pid) {
  auto stat = ReadProcessStat(pid);
  return stat ? stat->pgrp : 0;
}

}  // namespace

ExecProcess::ExecProcess(std::string description, Subprocess runtime, pid_t pid, ExecIo io,
                         UniqueFd stdin_w, UniqueFd stdout_r, UniqueFd stderr_r, UniqueFd terminal)
    : description_(std::move(description)),
      runtime_(std::move(runtime)),
      pid_(pid),
      io_(io),
      stdin_(std::move(stdin_w)),
      stdout_(std::move(stdout_r)),
      stderr_(std::move(stderr_r)),
      terminal_(std::move(terminal)) {
  // The subreaper reports the exit only after reaping, so a pidfd opened
  // before any report names our process, never a recycled pid.
  pidfd_.Reset(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
  (void)runtime_.PollExits();
  if (runtime_.ExitOf(pid_)) {
    exit_code_ = runtime_.ExitOf(pid_);
    pidfd_.Reset();
  } else if (pidfd_.valid()) {
    leads_group_ = ProcessGroupOf(pid_) == pid_;
  }
}

ExecProcess::ExecProcess(std::string description, UniqueFd pidfd, pid_t pid, ExecIo io,
                         UniqueFd stdin_w, UniqueFd stdout_r, UniqueFd stderr_r, UniqueFd terminal)
    : description_(std::move(description)),
      direct_(true),
      pid_(pid),
      io_(io),
      pidfd_(std::move(pidfd)),
      stdin_(std::move(stdin_w)),
      stdout_(std::move(stdout_r)),
      stderr_(std::move(stderr_r)),
      terminal_(std::move(terminal)) {
  // Our unreaped child: its pid, and so its process group, stay ours.
  leads_group_ = ProcessGroupOf(pid_) == pid_;
}

ExecProcess::~ExecProcess() {
  if (!ExitCode()) {
    Kill(SIGKILL);
    (void)Wait(Clock::now() + std::chrono::seconds(10));
  }
}

int ExecProcess::stdin_fd() const {
  if (!io_.stdin || stdin_closed_) return -1;
  return io_.terminal ? terminal_.get() : stdin_.get();
}

void ExecProcess::CloseStdin() {
  stdin_closed_ = true;
  stdin_.Reset();
}

Status ExecProcess::Resize(uint16_t rows, uint16_t cols) {
  if (!io_.terminal || !terminal_.valid()) return OkStatus();
  struct winsize ws {};
  ws.ws_row = rows;
  ws.ws_col = cols;
  if (::ioctl(terminal_.get(), TIOCSWINSZ, &ws) != 0) {
    return ErrnoStatus(errno, StrCat("resize the terminal of ", description_));
  }
  return OkStatus();
}

void ExecProcess::Kill(int sig) {
  // pidfd_ and leads_group_ are fixed at construction, so this needs no lock.
  if (!pidfd_.valid()) return;
  // Fails once the process is reaped; until then its process group id
  // cannot be reused, so the group signal below hits no stranger.
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) != 0) return;
  // A shell's children (its process group) go with it.
  if (leads_group_) ::kill(-pid_, sig);
}

// The exit code of a child that exited, reaping it; nullopt while it runs.
// `block`: wait for the exit.
static std::optional<int> ReapChild(int pidfd, bool block) {
  constexpr int kPidfdIdType = 3;  // P_PIDFD (Linux 5.4), missing from glibc 2.36's idtype_t
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(static_cast<idtype_t>(kPidfdIdType), static_cast<id_t>(pidfd), &info,
                  WEXITED | (block ? 0 : WNOHANG));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0 || info.si_pid == 0) return std::nullopt;
  if (info.si_code == CLD_EXITED) return info.si_status;
  return 128 + info.si_status;
}

std::optional<int> ExecProcess::ExitCode() {
  if (exit_code_) return exit_code_;
  if (direct_) {
    exit_code_ = ReapChild(pidfd_.get(), false);
    return exit_code_;
  }
  (void)runtime_.PollExits();
  exit_code_ = runtime_.ExitOf(pid_);
  return exit_code_;
}

StatusOr<int> ExecProcess::Wait(std::optional<Clock::time_point> deadline) {
  if (exit_code_) return *exit_code_;
  if (direct_) {
    for (;;) {
      pollfd pfd{pidfd_.get(), POLLIN, 0};
      int rc = ::poll(&pfd, 1, RemainingMs(deadline));
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) return ErrnoStatus(errno, StrCat("wait for ", description_));
      if (rc == 0) return DeadlineExceededError(StrCat("wait for ", description_));
      exit_code_ = ReapChild(pidfd_.get(), true);
      if (!exit_code_) return InternalError(StrCat("wait for ", description_, ": not reaped"));
      return *exit_code_;
    }
  }
  auto code = runtime_.WaitAdopted(pid_, deadline);
  if (!code.ok()) return Annotate(code.status(), description_);
  exit_code_ = *code;
  return *code;
}

StatusOr<ProcessResult> RunToCompletion(ExecProcess& process,
                                        std::optional<std::chrono::milliseconds> timeout,
                                        size_t max_output, std::chrono::milliseconds linger) {
  ProcessResult result;
  UniqueFd out = process.TakeStdout();
  UniqueFd err = process.TakeStderr();
  process.CloseStdin();
  const bool keep_err = process.io().stderr && !process.terminal();
  std::optional<Clock::time_point> deadline;
  if (timeout && timeout->count() > 0) deadline = Clock::now() + *timeout;
  auto on_deadline = [&] {
    result.timed_out = true;
    process.Kill(SIGKILL);
    deadline.reset();
  };
  // Set once the process exited: output still coming from processes it left
  // behind (holding its stdout) is read until they close it or go quiet.
  std::optional<Clock::time_point> linger_until;
  bool watch_exit = process.exit_fd() >= 0;
  char buf[65536];
  while (out.valid() || err.valid()) {
    if (!linger_until && process.ExitCode()) linger_until = Clock::now() + linger;
    std::optional<Clock::time_point> wake = deadline;
    if (linger_until && (!wake || *linger_until < *wake)) wake = linger_until;
    pollfd fds[3];
    int n = 0, out_i = -1, err_i = -1, exit_i = -1;
    if (out.valid()) {
      fds[n] = {out.get(), POLLIN, 0};
      out_i = n++;
    }
    if (err.valid()) {
      fds[n] = {err.get(), POLLIN, 0};
      err_i = n++;
    }
    if (!linger_until && watch_exit) {
      fds[n] = {process.exit_fd(), POLLIN, 0};
      exit_i = n++;
    }
    int rc = ::poll(fds, static_cast<nfds_t>(n), RemainingMs(wake));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return ErrnoStatus(errno, StrCat("poll output of ", process.description()));
    if (rc == 0) {
      if (linger_until && Clock::now() >= *linger_until) break;
      if (deadline && Clock::now() >= *deadline) on_deadline();
      continue;
    }
    auto drain = [&](int idx, UniqueFd& fd, std::string* sink) {
      if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      ssize_t got = ::read(fd.get(), buf, sizeof buf);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) return;
      if (got <= 0) {  // EOF, or EIO once a terminal's last holder is gone
        fd.Reset();
        return;
      }
      if (linger_until) linger_until = Clock::now() + linger;
      if (sink == nullptr) return;
      size_t room = max_output > sink->size() ? max_output - sink->size() : 0;
      sink->append(buf, std::min(room, static_cast<size_t>(got)));
    };
    drain(out_i, out, &result.out);
    drain(err_i, err, keep_err ? &result.err : nullptr);
    if (exit_i >= 0 && (fds[exit_i].revents & (POLLIN | POLLHUP | POLLERR))) {
      (void)process.ExitCode();
      watch_exit = process.exit_fd() >= 0;  // -1 once the subreaper is done
    }
  }
  bool killed = result.timed_out;
  if (killed) deadline = Clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto code = process.Wait(deadline);
    if (code.ok()) {
      result.exit_code = *code;
      return result;
    }
    if (code.status().code() != StatusCode::kDeadlineExceeded || killed) return code.status();
    on_deadline();
    killed = true;
    deadline = Clock::now() + std::chrono::seconds(10);  // for SIGKILL to take effect
  }
}

}  // namespace berth::oci
