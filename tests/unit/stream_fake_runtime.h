// A scripted stream::Runtime for the streaming server's unit tests: processes
// whose output, stdin handling and exit are chosen per test, counters of what
// the server asked for, and port-forwards to TCP servers on loopback. Pure
// logic: the real runtime is tested by the integration tests against berthd.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "stream/runtime.h"
#include "stream/transport.h"

namespace berth::stream::testing {

struct FakeBehavior {
  std::vector<ProcessStreams::Output> outputs;  // emitted first, in order
  bool echo_stdin = false;                      // then: stdin back on stdout until stdin closes
  bool block_until_cancel = false;              // then: no output until Cancel
  bool infinite_output = false;                 // then: 32 KiB stdout chunks forever
  bool report_resize = false;                   // then: waits for a resize, prints "WxH", ends
  int exit_code = 0;
  std::optional<int> attach_exit;  // what Wait reports for an attach
};

class FakeRuntime;

class FakeProcess final : public ProcessStreams {
 public:
  FakeProcess(FakeRuntime& rt, FakeBehavior b, bool attach);
  ~FakeProcess() override;

  StatusOr<std::optional<Output>> ReadOutput() override;
  Status WriteStdin(std::string_view data) override;
  Status CloseStdin() override;
  Status Resize(TerminalSize size) override;
  StatusOr<std::optional<int>> Wait() override;
  void Cancel() override;

 private:
  FakeRuntime& rt_;
  const FakeBehavior b_;
  const bool attach_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t next_output_ = 0;
  std::string stdin_;
  bool stdin_closed_ = false;
  std::deque<TerminalSize> sizes_;
  bool resize_reported_ = false;
  bool cancelled_ = false;
};

class FakeRuntime final : public Runtime {
 public:
  std::function<StatusOr<FakeBehavior>(const ExecRequest&)> on_exec = [](const ExecRequest&) {
    return StatusOr<FakeBehavior>(FakeBehavior{});
  };
  std::function<StatusOr<FakeBehavior>(const AttachRequest&)> on_attach = [](const AttachRequest&) {
    return StatusOr<FakeBehavior>(FakeBehavior{});
  };
  // Pod port -> a port on 127.0.0.1 that PortForward connects to.
  std::map<uint16_t, uint16_t> ports;

  std::atomic<int> exec_calls{0}, attach_calls{0}, portforward_calls{0};
  std::atomic<int> live_processes{0}, cancels{0};
  std::atomic<int64_t> bytes_produced{0};  // by infinite_output processes
  std::mutex mu;
  std::vector<std::string> stdin_seen;  // what each process got on stdin
  std::vector<TerminalSize> resizes_seen;

  StatusOr<std::unique_ptr<ProcessStreams>> Exec(const ExecRequest& req) override {
    ++exec_calls;
    StatusOr<FakeBehavior> b = on_exec(req);
    if (!b.ok()) return b.status();
    return std::unique_ptr<ProcessStreams>(new FakeProcess(*this, std::move(*b), false));
  }
  StatusOr<std::unique_ptr<ProcessStreams>> Attach(const AttachRequest& req) override {
    ++attach_calls;
    StatusOr<FakeBehavior> b = on_attach(req);
    if (!b.ok()) return b.status();
    return std::unique_ptr<ProcessStreams>(new FakeProcess(*this, std::move(*b), true));
  }
  StatusOr<UniqueFd> PortForward(const std::string& pod, uint16_t port) override {
    ++portforward_calls;
    auto it = ports.find(port);
    if (it == ports.end()) {
      return FailedPreconditionError(StrCat("nothing listens on port ", port, " in pod ", pod));
    }
    return ConnectTcp("127.0.0.1", it->second, Clock::now() + std::chrono::seconds(5));
  }
};

inline FakeProcess::FakeProcess(FakeRuntime& rt, FakeBehavior b, bool attach)
    : rt_(rt), b_(std::move(b)), attach_(attach) {
  ++rt_.live_processes;
}

inline FakeProcess::~FakeProcess() {
  {
    std::lock_guard lock(rt_.mu);
    rt_.stdin_seen.push_back(stdin_);
  }
  --rt_.live_processes;
}

inline StatusOr<std::optional<ProcessStreams::Output>> FakeProcess::ReadOutput() {
  using R = std::optional<Output>;
  std::unique_lock lock(mu_);
  if (next_output_ < b_.outputs.size()) return R(b_.outputs[next_output_++]);
  if (b_.infinite_output) {
    if (cancelled_) return R();
    rt_.bytes_produced += 32 * 1024;
    return R(Output{Source::kStdout, std::string(32 * 1024, 'z')});
  }
  if (b_.echo_stdin) {
    cv_.wait(lock, [&] { return cancelled_ || !stdin_.empty() || stdin_closed_; });
    if (cancelled_ || stdin_.empty()) return R();
    std::string out;
    out.swap(stdin_);
    return R(Output{Source::kStdout, std::move(out)});
  }
  if (b_.report_resize) {
    cv_.wait(lock, [&] { return cancelled_ || !sizes_.empty() || resize_reported_; });
    if (cancelled_ || resize_reported_) return R();
    resize_reported_ = true;
    TerminalSize s = sizes_.front();
    return R(Output{Source::kStdout, StrCat(s.width, "x", s.height)});
  }
  if (b_.block_until_cancel) {
    cv_.wait(lock, [&] { return cancelled_; });
  }
  return R();
}

inline Status FakeProcess::WriteStdin(std::string_view data) {
  std::lock_guard lock(mu_);
  if (cancelled_) return CancelledError("process killed");
  if (stdin_closed_) return FailedPreconditionError("stdin closed");
  stdin_ += data;
  cv_.notify_all();
  return OkStatus();
}

inline Status FakeProcess::CloseStdin() {
  std::lock_guard lock(mu_);
  stdin_closed_ = true;
  cv_.notify_all();
  return OkStatus();
}

inline Status FakeProcess::Resize(TerminalSize size) {
  {
    std::lock_guard lock(rt_.mu);
    rt_.resizes_seen.push_back(size);
  }
  std::lock_guard lock(mu_);
  sizes_.push_back(size);
  cv_.notify_all();
  return OkStatus();
}

inline StatusOr<std::optional<int>> FakeProcess::Wait() {
  std::lock_guard lock(mu_);
  if (attach_) return b_.attach_exit;
  return std::optional<int>(cancelled_ ? 137 : b_.exit_code);
}

inline void FakeProcess::Cancel() {
  std::lock_guard lock(mu_);
  if (!cancelled_) ++rt_.cancels;
  cancelled_ = true;
  cv_.notify_all();
}

// A TCP echo server on 127.0.0.1 (the "pod" port-forward targets).
class EchoServer {
 public:
  EchoServer() {
    StatusOr<Listener> l = ListenTcp("127.0.0.1:0", 64);
    listener_ = std::move(*l);
    thread_ = std::thread([this] { Run(); });
  }
  ~EchoServer() {
    stopping_ = true;
    ::shutdown(listener_.fd.get(), SHUT_RDWR);
    thread_.join();
    std::lock_guard lock(mu_);
    for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    for (std::thread& t : conns_) t.join();
    for (int fd : open_) ::close(fd);
  }
  uint16_t port() const { return listener_.port; }

 private:
  void Run() {
    while (!stopping_) {
      int fd = ::accept4(listener_.fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      std::lock_guard lock(mu_);
      open_.push_back(fd);
      conns_.emplace_back([fd] {
        char buf[64 * 1024];
        while (true) {
          ssize_t n = ::read(fd, buf, sizeof(buf));
          if (n <= 0) break;
          for (ssize_t off = 0; off < n;) {
            ssize_t w = ::send(fd, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
            if (w <= 0) break;
            off += w;
          }
        }
        ::shutdown(fd, SHUT_RDWR);  // closed by the destructor
      });
    }
  }

  Listener listener_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<int> open_;
  std::vector<std::thread> conns_;
};

}  // namespace berth::stream::testing
