// Byte transports under the HTTP, SPDY and WebSocket code: a TCP socket,
// optionally wrapped in TLS (OpenSSL). Blocking I/O; one thread may read
// while another writes (writes themselves are serialized by the caller), and
// any thread may Cancel, which fails every blocked and later Read and Write:
// that is how sessions are torn down (client gone, idle timeout, Stop).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/fs.h"
#include "common/status.h"
#include "stream/http.h"

namespace berth::stream {

using Clock = std::chrono::steady_clock;

class Transport {
 public:
  virtual ~Transport() = default;

  // Reads up to buf.size() bytes; 0 means the peer closed its side. With a
  // deadline, DEADLINE_EXCEEDED when nothing arrived by then. CANCELLED after
  // Cancel().
  StatusOr<size_t> Read(std::span<char> buf, std::optional<Clock::time_point> deadline = {});
  // Writes all of `data` (blocks while the peer does not read).
  Status Write(std::string_view data);
  // Tells the peer nothing more will be written (TCP FIN; TLS close_notify).
  virtual void ShutdownWrite() = 0;
  // Runs the protocol's opening handshake (TLS) until `deadline`; nothing
  // for plain TCP. Call once, before any Read or Write.
  virtual Status Handshake(Clock::time_point deadline) {
    (void)deadline;
    return OkStatus();
  }
  // Thread-safe and idempotent.
  void Cancel();
  bool cancelled() const { return cancelled_.load(); }
  // Makes `bytes` the next bytes Read returns (what was read past an HTTP head).
  void Unread(std::string bytes);
  // When bytes last went either way (for the idle timeout).
  Clock::time_point last_activity() const;
  // "ip:port" of the peer, for logs.
  const std::string& peer() const { return peer_; }

 protected:
  Transport(UniqueFd fd, std::string peer);
  virtual StatusOr<size_t> ReadSome(std::span<char> buf,
                                    std::optional<Clock::time_point> deadline) = 0;
  virtual Status WriteAll(std::string_view data) = 0;
  int fd() const { return fd_.get(); }
  // Waits until `fd` is readable (POLLIN) or writable (POLLOUT), the deadline
  // passes (DEADLINE_EXCEEDED) or the transport is cancelled (CANCELLED).
  Status WaitFd(short events, std::optional<Clock::time_point> deadline);
  void Touch();

 private:
  UniqueFd fd_;
  std::string peer_;
  std::atomic<bool> cancelled_{false};
  std::atomic<int64_t> last_activity_ns_;
  std::string pushback_;
  size_t pushback_offset_ = 0;
};

// Plain TCP over a connected socket.
std::unique_ptr<Transport> MakeTcpTransport(UniqueFd fd, std::string peer);

// An OpenSSL context: the server's certificate and key, or a client's trust.
class TlsContext {
 public:
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // Loads a PEM certificate chain and its private key (they must match).
  static StatusOr<std::shared_ptr<TlsContext>> ForServer(const std::string& cert_file,
                                                         const std::string& key_file);
  // Verifies the server against the PEM CA bundle `ca_file` and the host
  // name; an empty `ca_file` skips verification (crictl's behaviour towards a
  // runtime's streaming server, whose certificate is usually self-signed).
  static StatusOr<std::shared_ptr<TlsContext>> ForClient(const std::string& ca_file);

  // A TLS transport over a connected socket, before its handshake (call
  // Handshake next): the server side, or a client's towards `host`.
  StatusOr<std::unique_ptr<Transport>> WrapServer(UniqueFd fd, std::string peer);
  StatusOr<std::unique_ptr<Transport>> WrapClient(UniqueFd fd, const std::string& host);

 private:
  explicit TlsContext(void* ctx, bool verify) : ctx_(ctx), verify_(verify) {}
  void* ctx_;  // SSL_CTX*
  bool verify_;
};

// A listening TCP socket on `address` ("host:port", "[v6]:port"; port 0
// picks one). Returns the socket and the address it is bound to.
struct Listener {
  UniqueFd fd;
  std::string host;  // as bound, without brackets
  uint16_t port = 0;
};
StatusOr<Listener> ListenTcp(std::string_view address, int backlog);
// Connects to host:port (numeric or resolvable names) before `deadline`.
StatusOr<UniqueFd> ConnectTcp(const std::string& host, uint16_t port, Clock::time_point deadline);
// Disables Nagle (streams of small frames are latency-bound).
void SetNoDelay(int fd);

// Reads an HTTP head from `t` until its empty line, keeping anything read
// past it for the next Read. DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED (over
// limits.max_head_bytes), UNAVAILABLE when the peer closes first.
StatusOr<std::string> ReadHttpHead(Transport& t, const HttpLimits& limits,
                                   Clock::time_point deadline);

}  // namespace berth::stream
