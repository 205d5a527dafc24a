// A minimal HTTP/1.1 server on 127.0.0.1 for tests: every request is answered by a handler
// with a canned response, on a single background thread, one connection at a time
// ("Connection: close" after each response). Enough to play a registry that misbehaves,
// a token service, or a server that stalls mid-body.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/fs.h"
#include "common/status.h"

namespace berth::testing {

struct RecordedRequest {
  std::string method;
  std::string target;                          // path and query as sent ("/v2/a/blobs/x?ns=y")
  std::map<std::string, std::string> headers;  // names lowercased; repeated headers joined ", "
  std::string body;

  std::string path() const { return target.substr(0, target.find('?')); }
  std::string query() const {
    size_t q = target.find('?');
    return q == std::string::npos ? "" : target.substr(q + 1);
  }
  std::string header(const std::string& lowercase_name) const {
    auto it = headers.find(lowercase_name);
    return it == headers.end() ? "" : it->second;
  }
};

struct CannedResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Length is added
  std::string body;
  // >= 0: announce the whole body but send only this many bytes of it, then keep the
  // connection open and silent until the client gives up or the server stops.
  long stall_after_bytes = -1;
  // Close the connection without answering.
  bool close_without_response = false;
};

// Percent-decodes a query component ('+' means space).
std::string UrlDecode(std::string_view s);
// "a=1&b=2&b=3" -> {{"a","1"},{"b","2"},{"b","3"}}, decoded.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);

// Thread-safe: the handler runs on the server thread; requests() may be read from any thread.
class FakeHttpServer {
 public:
  using Handler = std::function<CannedResponse(const RecordedRequest&)>;

  explicit FakeHttpServer(Handler handler);
  ~FakeHttpServer();  // Stop()s
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  // Listens on 127.0.0.1 on a free port and starts serving.
  Status Start();
  void Stop();

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<RecordedRequest> requests() const;

 private:
  void Serve();
  void HandleConnection(int fd);
  bool WaitReadable(int fd);  // false when stopping

  Handler handler_;
  UniqueFd listen_fd_;
  UniqueFd wake_read_, wake_write_;  // a pipe that interrupts poll() on Stop
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<RecordedRequest> requests_;  // guarded by mu_
};

}  // namespace berth::testing
