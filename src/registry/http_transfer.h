// Internal to berth_registry: one HTTP exchange on a pooled libcurl easy handle. Callers
// outside src/registry/ use registry/client.h instead.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::registry::internal {

// Calls curl_global_init exactly once per process, from whichever thread comes first.
void EnsureCurlGlobalInit();

// Idle easy handles kept for reuse, so their connection caches keep registry connections alive
// between requests. Thread-safe. Handles are reset before reuse.
class CurlHandlePool {
 public:
  explicit CurlHandlePool(size_t max_idle = 8) : max_idle_(max_idle) {}
  ~CurlHandlePool();
  CurlHandlePool(const CurlHandlePool&) = delete;
  CurlHandlePool& operator=(const CurlHandlePool&) = delete;

  CURL* Acquire();  // nullptr only if libcurl cannot allocate
  void Release(CURL* handle);

 private:
  const size_t max_idle_;
  std::mutex mu_;
  std::vector<CURL*> idle_;
};

struct TlsSettings {
  bool skip_verify = false;
  std::vector<std::string> ca_files;  // added to the system trust store for this transfer
  std::string client_cert;
  std::string client_key;
};

struct HttpResponse {
  long status = 0;
  // Headers of the final response only (not of redirects), names lowercased.
  std::map<std::string, std::vector<std::string>> headers;
  std::string body;  // buffered body; for a 2xx response only when no on_body is set
  bool body_truncated = false;

  // First value of a header, "" if absent.
  std::string Header(const std::string& lowercase_name) const;
};

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD or POST
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // POST body
  TlsSettings tls;
  std::chrono::seconds stall_timeout{60};
  std::string user_agent;
  // Largest 2xx body buffered without on_body; beyond it the transfer aborts with
  // RESOURCE_EXHAUSTED. Error bodies are silently truncated at 64 KiB.
  size_t max_body = 1 << 20;
  // Called once when the headers of a final 2xx response are complete; non-OK aborts.
  std::function<Status(const HttpResponse&)> on_headers;
  // If set, receives the body of a 2xx response instead of buffering it; non-OK aborts.
  std::function<Status(const char*, size_t)> on_body;
  // If set, polled from libcurl's progress callback (at least about once a second, even when
  // no byte moves); a non-OK status aborts the transfer and becomes abort_status. Lets a
  // caller that has gone away stop a download that would otherwise run to its end.
  std::function<Status()> check_cancelled;
};

struct TransferResult {
  CURLcode curl_code = CURLE_OK;
  std::string curl_error;  // libcurl's detailed message, or curl_easy_strerror
  Status abort_status;     // why a callback or the CA loading stopped the transfer
  HttpResponse response;

  bool ok() const { return curl_code == CURLE_OK && abort_status.ok(); }
};

TransferResult Perform(CurlHandlePool& pool, const HttpRequest& request);

// How a failed transfer (curl_code != CURLE_OK, abort_status OK) should be treated.
enum class TransportFailure {
  kUnreachable,  // refused, unresolvable: try the next endpoint, no retry
  kTls,          // certificate or handshake failure: next endpoint, no retry
  kTimeout,      // no progress for stall_timeout: retryable
  kTransient,    // reset, partial transfer, HTTP/2 error: retryable
  kPermanent,    // anything else (too many redirects, bad URL): no retry
};
TransportFailure ClassifyCurlError(CURLcode code);

// Percent-encodes everything except RFC 3986 unreserved characters.
std::string UrlEscape(std::string_view s);

}  // namespace berth::registry::internal
