#include "ctl/terminal.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace berth::ctl {
namespace {

// The write end of the SIGWINCH self-pipe. A signal handler can only reach
// process-wide state; it is set while one WindowSizeQueue lives.
std::atomic<int> winch_pipe_fd{-1};

void OnSigwinch(int) {
  int fd = winch_pipe_fd.load();
  if (fd >= 0) {
    char c = 0;
    (void)!::write(fd, &c, 1);
  }
}

std::optional<stream::TerminalSize> CurrentSize(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return std::nullopt;
  return stream::TerminalSize{ws.ws_col, ws.ws_row};
}

}  // namespace

StatusOr<size_t> DetachKeysInput::Read(std::span<char> buf) {
  while (true) {
    if (!pending_.empty()) {
      size_t n = std::min(buf.size(), pending_.size());
      std::memcpy(buf.data(), pending_.data(), n);
      pending_.erase(0, n);
      return n;
    }
    if (ended_) return size_t{0};
    char chunk[4096];
    ASSIGN_OR_RETURN(size_t n, in_.Read(std::span<char>(chunk, sizeof(chunk))));
    if (n == 0) {
      if (held_ctrl_p_) pending_ = "\x10";
      held_ctrl_p_ = false;
      ended_ = true;
      continue;
    }
    std::string data = (held_ctrl_p_ ? std::string("\x10") : std::string()) + std::string(chunk, n);
    held_ctrl_p_ = false;
    size_t seq = data.find("\x10\x11");
    if (seq != std::string::npos) {
      pending_ = data.substr(0, seq);
      ended_ = true;
      continue;
    }
    if (data.back() == '\x10') {
      // Maybe the start of the sequence: hold it until the next byte.
      held_ctrl_p_ = true;
      data.pop_back();
    }
    pending_ = std::move(data);
  }
}

struct RawTerminal::Saved {
  termios attrs{};
  bool active = false;
};

RawTerminal::RawTerminal(int fd) : fd_(fd), saved_(std::make_unique<Saved>()) {
  if (::tcgetattr(fd_, &saved_->attrs) != 0) return;
  termios raw = saved_->attrs;
  ::cfmakeraw(&raw);
  saved_->active = ::tcsetattr(fd_, TCSANOW, &raw) == 0;
}

RawTerminal::~RawTerminal() {
  if (saved_->active) ::tcsetattr(fd_, TCSANOW, &saved_->attrs);
}

struct WindowSizeQueue::Handler {
  struct sigaction old {};
};

WindowSizeQueue::WindowSizeQueue(int fd) : fd_(fd) {
  close_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return;
  read_end_ = UniqueFd(p[0]);
  write_end_ = UniqueFd(p[1]);
  winch_pipe_fd.store(write_end_.get());
  handler_ = std::make_unique<Handler>();
  struct sigaction sa {};
  sa.sa_handler = OnSigwinch;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGWINCH, &sa, &handler_->old);
}

WindowSizeQueue::~WindowSizeQueue() {
  if (handler_) {
    ::sigaction(SIGWINCH, &handler_->old, nullptr);
    winch_pipe_fd.store(-1);
  }
}

std::optional<stream::TerminalSize> WindowSizeQueue::Next() {
  if (first_) {
    first_ = false;
    if (auto s = CurrentSize(fd_)) return s;
  }
  while (read_end_.valid()) {
    pollfd fds[2] = {{read_end_.get(), POLLIN, 0}, {close_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (fds[1].revents != 0) return std::nullopt;
    char buf[64];
    while (::read(read_end_.get(), buf, sizeof(buf)) > 0) {
    }
    if (auto s = CurrentSize(fd_)) return s;
  }
  return std::nullopt;
}

void WindowSizeQueue::Close() {
  uint64_t one = 1;
  (void)!::write(close_.get(), &one, sizeof(one));
}

struct InterruptWaiter::Mask {
  sigset_t set;
};

InterruptWaiter::InterruptWaiter() : old_(std::make_unique<Mask>()) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &set, &old_->set);
}

InterruptWaiter::~InterruptWaiter() { ::pthread_sigmask(SIG_SETMASK, &old_->set, nullptr); }

bool InterruptWaiter::Wait(const std::function<bool()>& done) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  timespec tick{0, 200 * 1000 * 1000};
  while (!done()) {
    if (::sigtimedwait(&set, nullptr, &tick) > 0) return true;
  }
  return false;
}

}  // namespace berth::ctl
