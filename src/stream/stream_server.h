// The CRI streaming server: the HTTP endpoint that the URLs returned by the
// Exec, Attach and PortForward RPCs point to. The kubelet (or crictl,
// kubectl through the API server) connects there and upgrades to SPDY/3.1 or
// WebSocket; the server then runs the request through a Runtime.
//
// Security model: a URL carries a single-use random token (128 bits) that
// expires after `token_ttl`; an unknown, reused or expired token is answered
// 404 before anything reaches the Runtime. At most `max_tokens` are
// outstanding. The listener defaults to loopback (the kubelet on the same
// node proxies to it); with a certificate and key it serves HTTPS.
//
// Threads: one accept thread, one housekeeping thread (idle timeout, joins),
// one thread per connection plus a few per session. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/fs.h"
#include "common/status.h"
#include "stream/runtime.h"
#include "stream/token_cache.h"
#include "stream/transport.h"

namespace berth::stream {

struct StreamServerOptions {
  std::string address = "127.0.0.1:0";  // host:port; port 0 picks a free port; "[::1]:0" works too
  // Both set: HTTPS; both empty: plain HTTP; one set: INVALID_ARGUMENT.
  std::string tls_cert_file, tls_key_file;
  std::chrono::seconds token_ttl{60};
  size_t max_tokens = 1000;  // outstanding (issued, unused, unexpired)
  // A session with no traffic either way for this long is closed (the
  // kubelet's and containerd's default).
  std::chrono::seconds idle_timeout{4 * 60 * 60};
  // How long a SPDY client has to open the streams of a request (exec, attach)
  // or the second stream of a port-forward pair (the kubelet's default).
  std::chrono::seconds stream_creation_timeout{30};
  // How long a client has to complete the TLS handshake and send its request head.
  std::chrono::seconds request_timeout{10};
  // Connections served at once; more are answered 503.
  size_t max_connections = 1024;
};

class StreamServer {
 public:
  // Listens and serves on its own threads until Stop() or destruction.
  // `runtime` must outlive the server.
  static StatusOr<std::unique_ptr<StreamServer>> Start(StreamServerOptions options,
                                                       Runtime* runtime);
  ~StreamServer();  // Stop()
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  // e.g. "http://127.0.0.1:41234" (https with TLS; IPv6 hosts in brackets).
  std::string base_url() const;
  // base_url() + "/exec/<token>" (or /attach/, /portforward/) with a fresh
  // single-use token. INVALID_ARGUMENT for requests the protocols cannot
  // serve (no stream requested; tty with stderr), RESOURCE_EXHAUSTED when
  // max_tokens are outstanding.
  StatusOr<std::string> ExecUrl(const ExecRequest& req);
  StatusOr<std::string> AttachUrl(const AttachRequest& req);
  StatusOr<std::string> PortForwardUrl(const PortForwardRequest& req);
  // Stops listening, cancels every session (exec'd processes are killed,
  // attach sessions detached), joins every thread. Idempotent.
  void Stop();

  // Connections being served (for tests and metrics).
  size_t active_connections() const;

 private:
  struct Connection {
    std::thread thread;
    int raw_fd = -1;                 // until a transport exists
    Transport* transport = nullptr;  // owned by the connection's thread
    bool done = false;
  };

  StreamServer(StreamServerOptions options, Runtime* runtime, Listener listener,
               std::shared_ptr<TlsContext> tls);
  void AcceptLoop();
  void HousekeepingLoop();
  void Serve(uint64_t id, UniqueFd fd, std::string peer);
  void Dispatch(Transport& t);
  void SetTransport(uint64_t id, Transport* t);

  const StreamServerOptions options_;
  Runtime* const runtime_;
  Listener listener_;
  std::shared_ptr<TlsContext> tls_;
  std::string base_url_;
  TokenCache tokens_;
  UniqueFd wake_fd_;  // eventfd: wakes the accept loop on Stop

  std::mutex stop_mu_;  // one Stop at a time
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool stopped_ = false;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Connection> connections_;
  std::thread accept_thread_;
  std::thread housekeeping_thread_;
};

}  // namespace berth::stream
