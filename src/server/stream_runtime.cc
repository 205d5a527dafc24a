#include "server/stream_runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>

#include "common/numbers.h"

namespace berth::server {

namespace {

using Clock = std::chrono::steady_clock;
using stream::ProcessStreams;

constexpr size_t kMaxChunk = 32 * 1024;  // ProcessStreams::ReadOutput's limit
// After the exec'd process exited, output still arriving from processes it
// left behind (holding its stdout) is passed on until they go quiet this long.
constexpr auto kLinger = std::chrono::milliseconds(200);

void SetNonBlocking(int fd) {
  if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// write(2) that reports EPIPE without raising SIGPIPE in berthd: the signal
// is blocked in this thread for the call and a pending one is consumed.
ssize_t WriteWithoutSigpipe(int fd, const char* data, size_t size) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t n = ::write(fd, data, size);
  int err = errno;
  if (n < 0 && err == EPIPE) {
    timespec zero{};
    while (::sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return n;
}

// An eventfd that Cancel() makes readable, so blocked polls return.
class CancelSignal {
 public:
  CancelSignal() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  int fd() const { return fd_.get(); }
  bool raised() const { return raised_.load(); }
  void Raise() {
    raised_.store(true);
    uint64_t one = 1;
    (void)!::write(fd_.get(), &one, sizeof one);
  }

 private:
  UniqueFd fd_;
  std::atomic<bool> raised_{false};
};

// The stdio of a process exec'd through the container manager.
class ExecStreams final : public ProcessStreams {
 public:
  explicit ExecStreams(std::unique_ptr<oci::ExecProcess> process)
      : process_(std::move(process)),
        out_fd_(process_->stdout_fd()),
        err_fd_(process_->stderr_fd()) {
    SetNonBlocking(out_fd_);
    SetNonBlocking(err_fd_);
    SetNonBlocking(process_->stdin_fd());
  }

  StatusOr<std::optional<Output>> ReadOutput() override {
    const oci::ExecIo& io = process_->io();
    char buf[kMaxChunk];
    for (;;) {
      if (cancel_.raised()) return CancelledError(Describe("cancelled"));
      if (out_fd_ < 0 && err_fd_ < 0) return std::optional<Output>();
      if (!linger_until_ && process_->ExitCode()) linger_until_ = Clock::now() + kLinger;
      pollfd fds[4];
      int n = 0, out_i = -1, err_i = -1;
      fds[n++] = {cancel_.fd(), POLLIN, 0};
      if (out_fd_ >= 0) {
        fds[n] = {out_fd_, POLLIN, 0};
        out_i = n++;
      }
      if (err_fd_ >= 0) {
        fds[n] = {err_fd_, POLLIN, 0};
        err_i = n++;
      }
      int exit_fd = linger_until_ ? -1 : process_->exit_fd();
      if (exit_fd >= 0) fds[n++] = {exit_fd, POLLIN, 0};
      int wait_ms = -1;
      if (linger_until_) {
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(*linger_until_ - Clock::now());
        wait_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
      }
      int rc = ::poll(fds, static_cast<nfds_t>(n), wait_ms);
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) return ErrnoStatus(errno, Describe("poll output"));
      if (rc == 0) return std::optional<Output>();  // exited, and the stragglers went quiet
      if (exit_fd >= 0 && fds[n - 1].revents != 0) (void)process_->ExitCode();
      // Take turns, so that a chatty stream cannot starve the other.
      int order[2] = {out_i, err_i};
      if (prefer_err_) std::swap(order[0], order[1]);
      for (int idx : order) {
        if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        bool is_out = idx == out_i;
        int& fd = is_out ? out_fd_ : err_fd_;
        ssize_t got = ::read(fd, buf, sizeof buf);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got <= 0) {  // EOF; EIO from a terminal whose last holder is gone
          fd = -1;
          continue;
        }
        if (linger_until_) linger_until_ = Clock::now() + kLinger;
        // Streams the client did not ask for are read all the same (the
        // process must not block on them) and dropped.
        if (is_out ? !io.stdout : (!io.stderr || io.terminal)) continue;
        prefer_err_ = is_out;
        return std::optional<Output>(Output{is_out ? Source::kStdout : Source::kStderr,
                                            std::string(buf, static_cast<size_t>(got))});
      }
    }
  }

  Status WriteStdin(std::string_view data) override {
    int fd = process_->stdin_fd();
    if (fd < 0) return FailedPreconditionError(Describe("stdin is closed or was not requested"));
    while (!data.empty()) {
      if (cancel_.raised()) return CancelledError(Describe("cancelled"));
      ssize_t n = WriteWithoutSigpipe(fd, data.data(), data.size());
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        // The process does not read: wait for it (back-pressure) or Cancel.
        pollfd fds[2] = {{fd, POLLOUT, 0}, {cancel_.fd(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
          return ErrnoStatus(errno, Describe("poll stdin"));
        }
        continue;
      }
      if (n < 0 && (errno == EPIPE || errno == EIO)) {
        return UnavailableError(Describe("the process no longer reads its stdin"));
      }
      return ErrnoStatus(errno, Describe("write stdin"));
    }
    return OkStatus();
  }

  Status CloseStdin() override {
    process_->CloseStdin();
    return OkStatus();
  }

  Status Resize(stream::TerminalSize size) override {
    return process_->Resize(size.height, size.width);
  }

  StatusOr<std::optional<int>> Wait() override {
    ASSIGN_OR_RETURN(int code, process_->Wait());
    return std::optional<int>(code);
  }

  void Cancel() override {
    cancel_.Raise();
    process_->Kill(SIGKILL);
  }

 private:
  std::string Describe(std::string_view what) const {
    return StrCat(process_->description(), ": ", what);
  }

  std::unique_ptr<oci::ExecProcess> process_;  // destruction kills a running process
  int out_fd_, err_fd_;                        // owned by process_; -1 once at EOF
  bool prefer_err_ = false;
  std::optional<Clock::time_point> linger_until_;
  CancelSignal cancel_;
};

// An attach session on a container's berth-monitor.
class AttachStreams final : public ProcessStreams {
 public:
  AttachStreams(std::string container_id, monitor::AttachConnection conn)
      : container_id_(std::move(container_id)), conn_(std::move(conn)) {}

  StatusOr<std::optional<Output>> ReadOutput() override {
    for (;;) {
      if (cancelled_.load()) return CancelledError(Describe("cancelled"));
      if (ended_) return std::optional<Output>();
      auto frame = conn_.Receive(std::chrono::hours(1));
      if (!frame.ok()) {
        if (frame.status().code() == StatusCode::kDeadlineExceeded) continue;
        if (cancelled_.load()) return CancelledError(Describe("cancelled"));
        ended_ = true;
        if (frame.status().code() == StatusCode::kUnavailable) return std::optional<Output>();
        return frame.status();
      }
      switch (frame->type) {
        case monitor::FrameType::kStdout:
          return std::optional<Output>(Output{Source::kStdout, std::move(frame->payload)});
        case monitor::FrameType::kStderr:
          return std::optional<Output>(Output{Source::kStderr, std::move(frame->payload)});
        case monitor::FrameType::kExit:
          // A frame that is not a number is a broken monitor: no exit code to report.
          exit_code_ = ParseDecimal<int>(frame->payload);
          ended_ = true;
          return std::optional<Output>();
        case monitor::FrameType::kError:
          ended_ = true;
          return InternalError(Describe(StrCat("the monitor reports: ", frame->payload)));
        default:
          continue;  // acknowledgements of nothing we asked
      }
    }
  }

  Status WriteStdin(std::string_view data) override {
    // Blocks while the monitor's stdin queue is full (back-pressure).
    Status s = conn_.SendStdin(data);
    if (!s.ok() && cancelled_.load()) return CancelledError(Describe("cancelled"));
    return s;
  }

  Status CloseStdin() override { return conn_.CloseStdin(); }

  Status Resize(stream::TerminalSize size) override {
    return conn_.Resize(size.height, size.width);
  }

  StatusOr<std::optional<int>> Wait() override { return exit_code_; }

  void Cancel() override {
    cancelled_.store(true);
    // Wakes a blocked Receive (EOF) and a blocked send (EPIPE); the monitor
    // sees the session end and, with stdin_once, closes the container's stdin.
    ::shutdown(conn_.fd(), SHUT_RDWR);
  }

 private:
  std::string Describe(std::string_view what) const {
    return StrCat("attach to container ", container_id_, ": ", what);
  }

  std::string container_id_;
  monitor::AttachConnection conn_;
  std::atomic<bool> cancelled_{false};
  bool ended_ = false;            // ReadOutput's thread only
  std::optional<int> exit_code_;  // likewise; Wait() is called after the end
};

}  // namespace

StatusOr<std::unique_ptr<ProcessStreams>> StreamRuntime::Exec(const stream::ExecRequest& req) {
  container::ExecSpec spec;
  spec.cmd = req.cmd;
  spec.io.terminal = req.tty;
  spec.io.stdin = req.stdin;
  spec.io.stdout = req.stdout;
  spec.io.stderr = req.stderr && !req.tty;
  auto start = Clock::now();
  ASSIGN_OR_RETURN(std::unique_ptr<oci::ExecProcess> process,
                   containers_->Exec(req.container_id, spec));
  // Where an exec's time goes (the runtime's exec is most of it): see
  // bench/stream-bench.sh.
  spdlog::debug("event=exec_started container={} pid={} tty={} ms={:.1f}", req.container_id,
                process->pid(), req.tty,
                std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  return std::unique_ptr<ProcessStreams>(std::make_unique<ExecStreams>(std::move(process)));
}

StatusOr<std::unique_ptr<ProcessStreams>> StreamRuntime::Attach(const stream::AttachRequest& req) {
  ASSIGN_OR_RETURN(monitor::AttachConnection conn,
                   containers_->Attach(req.container_id, req.stdin, req.stdout, req.stderr));
  return std::unique_ptr<ProcessStreams>(
      std::make_unique<AttachStreams>(req.container_id, std::move(conn)));
}

StatusOr<UniqueFd> StreamRuntime::PortForward(const std::string& pod_sandbox_id, uint16_t port) {
  return sandboxes_->ConnectToPort(pod_sandbox_id, port);
}

}  // namespace berth::server
