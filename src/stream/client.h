// The client side of the streaming protocols: what berthctl's exec, attach
// and port-forward verbs use, and what tests use to speak to a streaming
// server (berthd's, or any CRI runtime's). Three levels:
//  - UpgradeSpdy / UpgradeWebSocket: connect to a streaming URL (http or
//    https) and upgrade; the raw connection, for tests that speak frames.
//  - RunRemoteCommand: a whole exec or attach session, with the exit code.
//  - PortForwarder: local listeners forwarded to a pod's ports.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/status.h"
#include "stream/byte_stream.h"
#include "stream/http.h"
#include "stream/runtime.h"
#include "stream/transport.h"

namespace berth::stream {

enum class StreamProtocol { kSpdy, kWebSocket };

struct ClientOptions {
  StreamProtocol protocol = StreamProtocol::kSpdy;
  // Subprotocols to offer, preferred first; empty: every one this library
  // speaks for the kind of request (SPDY: v4..v1; WebSocket: v5, v4).
  std::vector<std::string> protocols;
  // For https: the PEM CA bundle to verify the server with; empty skips
  // verification, as crictl does (runtimes serve self-signed certificates).
  std::string ca_file;
  std::chrono::milliseconds connect_timeout{30000};
  // How long the server has to reply to each SPDY stream we open.
  std::chrono::milliseconds stream_timeout{30000};
  // SPDY receive window per stream (how much the client buffers per stream).
  uint32_t stream_window = 256 * 1024;
};

// A connection the server switched to SPDY/3.1 or WebSocket.
struct UpgradedConnection {
  std::unique_ptr<Transport> transport;
  std::string protocol;  // the negotiated subprotocol ("" when the server named none)
  HttpResponseHead response;
};

// Sends the upgrade request for `url`. A refusal is an error whose code
// follows the HTTP status (404 NOT_FOUND, 403 PERMISSION_DENIED, 400
// INVALID_ARGUMENT, other UNAVAILABLE) and whose message carries the status
// and the server's text.
StatusOr<UpgradedConnection> UpgradeSpdy(const std::string& url,
                                         const std::vector<std::string>& protocols,
                                         const ClientOptions& options,
                                         const std::string& method = "POST");
StatusOr<UpgradedConnection> UpgradeWebSocket(const std::string& url,
                                              const std::vector<std::string>& protocols,
                                              const ClientOptions& options);

// A source of local input that another thread can interrupt (so a session
// that ended does not wait for a terminal that never types).
class InputSource : public ByteSource {
 public:
  // Makes a blocked and every later Read fail with CANCELLED. Thread-safe.
  virtual void Interrupt() = 0;
};

// Reads a file descriptor (not owned), e.g. standard input.
class FdInput final : public InputSource {
 public:
  explicit FdInput(int fd);
  StatusOr<size_t> Read(std::span<char> buf) override;
  void Interrupt() override;

 private:
  int fd_;
  UniqueFd wake_;  // eventfd
};

// Input written by the program itself (tests): Push chunks, then Finish.
class ChunkInput final : public InputSource {
 public:
  ChunkInput() : pipe_(1 << 20) {}
  Status Push(std::string_view data) { return pipe_.Write(data); }
  void Finish() { (void)pipe_.CloseWrite(); }
  StatusOr<size_t> Read(std::span<char> buf) override { return pipe_.Read(buf); }
  void Interrupt() override { pipe_.Abort(CancelledError("input interrupted")); }

 private:
  BoundedPipe pipe_;
};

// Writes to a file descriptor (not owned), e.g. standard output.
class FdOutput final : public ByteSink {
 public:
  explicit FdOutput(int fd) : fd_(fd) {}
  Status Write(std::string_view data) override;
  Status CloseWrite() override { return OkStatus(); }

 private:
  int fd_;
};

// Collects output in memory (tests). Thread-safe.
class StringOutput final : public ByteSink {
 public:
  Status Write(std::string_view data) override;
  Status CloseWrite() override;
  std::string str() const;
  bool closed() const;

 private:
  mutable std::mutex mu_;
  std::string data_;
  bool closed_ = false;
};

// Terminal sizes to send during a TTY session.
class TerminalSizeQueue {
 public:
  virtual ~TerminalSizeQueue() = default;
  // Blocks until the next size; std::nullopt when there are no more.
  virtual std::optional<TerminalSize> Next() = 0;
  // Makes Next return std::nullopt from now on. Thread-safe.
  virtual void Close() = 0;
};

struct RemoteCommandIo {
  InputSource* stdin = nullptr;  // null: no stdin stream
  ByteSink* stdout = nullptr;    // null: no stdout stream
  ByteSink* stderr = nullptr;    // null (or tty): no stderr stream
  bool tty = false;
  TerminalSizeQueue* sizes = nullptr;  // tty only
};

// Runs an exec or attach session on `url` until the server ends it. Returns
// the exit code the server reported (0 for success; only v4 and newer carry
// one), or an error: connection or protocol failures, or the server's report
// of a failure (with v1-v3, any failure, including a non-zero exit).
StatusOr<int> RunRemoteCommand(const std::string& url, RemoteCommandIo& io,
                               const ClientOptions& options);

struct PortMapping {
  std::string local_address = "127.0.0.1";
  uint16_t local_port = 0;  // 0: any free port
  uint16_t remote_port = 0;
};

// Forwards connections to local listeners to the pod's ports: over SPDY, one
// connection to the server carries a data and an error stream per forwarded
// connection; over WebSocket, each forwarded connection gets its own
// connection to the server. Thread-safe.
class PortForwarder {
 public:
  // Called with a line of text for the user ("Handling connection for 8080",
  // errors reported by the server); may be empty.
  using Log = std::function<void(const std::string&)>;

  static StatusOr<std::unique_ptr<PortForwarder>> Start(const std::string& url,
                                                        std::vector<PortMapping> mappings,
                                                        const ClientOptions& options, Log log = {});
  ~PortForwarder();  // Stop()

  // The local port of each mapping, in order.
  std::vector<uint16_t> local_ports() const;
  // Blocks until the connection to the server is lost (SPDY) or Stop();
  // returns why (OK after Stop).
  Status Wait();
  // Closes the listeners and every forwarded connection; idempotent.
  void Stop();

  struct Impl;

 private:
  explicit PortForwarder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::stream
