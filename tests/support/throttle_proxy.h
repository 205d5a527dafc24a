// A loopback HTTP/1.1 relay for tests of slow downloads: it forwards every request to a
// real upstream server (the test registry) and relays the answers, but trickles the bodies
// of blob downloads ("/blobs/" in the path) at a fixed rate. It records, per blob download
// (trickled or not, see set_throttled), how much it relayed and whether the client (berthd)
// closed the connection before the body was complete, so that a test can prove a download
// was aborted early, and count how often each blob was downloaded.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/status.h"

namespace berth::testing {

struct ThrottledTransfer {
  std::string path;
  bool throttled = false;      // trickled (else relayed at full speed)
  uint64_t body_bytes = 0;     // announced by the upstream's Content-Length
  uint64_t relayed_bytes = 0;  // body bytes written to the client
  bool client_closed = false;  // the client closed before the whole body was relayed
  bool finished = false;       // the relay of this transfer is over (either way)
  std::chrono::steady_clock::time_point started;
  std::chrono::steady_clock::time_point ended;
};

// Thread-safe. One thread per connection; every response is sent with "Connection: close".
class ThrottleProxy {
 public:
  // Blob bodies are relayed in `chunk` bytes every `period`.
  ThrottleProxy(std::string upstream_host, int upstream_port, size_t chunk,
                std::chrono::milliseconds period);
  ~ThrottleProxy();  // Stop()s
  ThrottleProxy(const ThrottleProxy&) = delete;
  ThrottleProxy& operator=(const ThrottleProxy&) = delete;

  Status Start();  // listens on 127.0.0.1, a free port
  void Stop();     // closes every connection and joins the threads

  // Whether blob bodies are trickled (the default) or relayed at full speed, for
  // transfers starting from now on.
  void set_throttled(bool on) { throttled_.store(on); }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<ThrottledTransfer> transfers() const;
  // Blob transfers whose path contains `path_part` (a digest, say).
  std::vector<ThrottledTransfer> transfers(const std::string& path_part) const;
  // Waits until a blob transfer whose path contains `path_part` has finished (client closed
  // or complete); false on timeout.
  bool WaitForFinishedTransfer(const std::string& path_part,
                               std::chrono::milliseconds timeout) const;

 private:
  void Accept();
  void Relay(int client_fd);

  std::string upstream_host_;
  int upstream_port_;
  size_t chunk_;
  std::chrono::milliseconds period_;
  std::atomic<bool> throttled_{true};
  UniqueFd listen_fd_;
  UniqueFd wake_read_, wake_write_;  // a pipe that interrupts poll() on Stop
  int port_ = 0;
  std::thread acceptor_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stopping_ = false;                     // guarded by mu_
  std::vector<std::thread> relays_;           // guarded by mu_
  std::vector<ThrottledTransfer> transfers_;  // guarded by mu_
};

}  // namespace berth::testing
