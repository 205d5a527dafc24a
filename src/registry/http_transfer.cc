#include "registry/http_transfer.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cctype>
#include <memory>
#include <mutex>

namespace berth::registry::internal {

namespace {

constexpr size_t kMaxErrorBody = 64 * 1024;

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// Reads every certificate of a PEM file; the file must hold at least one.
Status LoadCaFile(const std::string& path, std::vector<X509Ptr>& out) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(path.c_str(), "r"), BIO_free);
  if (!bio) {
    return FailedPreconditionError(
        StrCat("cannot read CA file ", path, " (named by ca in hosts.toml)"));
  }
  size_t before = out.size();
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(cert);
  }
  ERR_clear_error();  // the loop ends with a "no start line" error
  if (out.size() == before) {
    return FailedPreconditionError(StrCat("CA file ", path, " holds no PEM certificate"));
  }
  return OkStatus();
}

// Adds the endpoint's CA certificates to the store curl already filled with the system CAs,
// so a mirror may use a private CA while its redirects still verify against public ones.
CURLcode AddCaCerts(CURL*, void* ssl_ctx, void* userptr) {
  auto* certs = static_cast<const std::vector<X509Ptr>*>(userptr);
  X509_STORE* store = SSL_CTX_get_cert_store(static_cast<SSL_CTX*>(ssl_ctx));
  for (const X509Ptr& cert : *certs) {
    X509_STORE_add_cert(store, cert.get());  // fails harmlessly for duplicates
  }
  ERR_clear_error();
  return CURLE_OK;
}

struct TransferState {
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  Status abort_status;
  bool headers_done = false;
  // Stall detection: the time the byte counters last moved.
  std::chrono::steady_clock::time_point last_progress;
  curl_off_t last_down = -1;
  curl_off_t last_up = -1;
  bool stalled = false;
};

bool Is2xx(long status) { return status >= 200 && status < 300; }

size_t OnHeader(char* data, size_t size, size_t nitems, void* userp) {
  auto* st = static_cast<TransferState*>(userp);
  size_t len = size * nitems;
  std::string_view line(data, len);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  HttpResponse& resp = *st->response;
  if (line.starts_with("HTTP/")) {
    // A new response (after a redirect or 100-continue) replaces what came before.
    resp.headers.clear();
    resp.body.clear();
    resp.body_truncated = false;
    resp.status = 0;
    st->headers_done = false;
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos) {
      long code = 0;
      for (size_t i = sp + 1; i < line.size() && std::isdigit(static_cast<unsigned char>(line[i]));
           ++i) {
        code = code * 10 + (line[i] - '0');
      }
      resp.status = code;
    }
    return len;
  }
  if (line.empty()) {
    st->headers_done = true;
    if (Is2xx(resp.status) && st->request->on_headers) {
      st->abort_status = st->request->on_headers(resp);
      if (!st->abort_status.ok()) return 0;
    }
    return len;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  resp.headers[name].emplace_back(value);
  return len;
}

size_t OnBody(char* data, size_t size, size_t nmemb, void* userp) {
  auto* st = static_cast<TransferState*>(userp);
  size_t len = size * nmemb;
  HttpResponse& resp = *st->response;
  if (Is2xx(resp.status)) {
    if (st->request->on_body) {
      st->abort_status = st->request->on_body(data, len);
      return st->abort_status.ok() ? len : 0;
    }
    if (resp.body.size() + len > st->request->max_body) {
      st->abort_status = ResourceExhaustedError(
          StrCat("response body exceeds the limit of ", st->request->max_body, " bytes"));
      return 0;
    }
    resp.body.append(data, len);
    return len;
  }
  size_t room = kMaxErrorBody > resp.body.size() ? kMaxErrorBody - resp.body.size() : 0;
  if (len > room) resp.body_truncated = true;
  resp.body.append(data, std::min(len, room));
  return len;
}

// curl's LOW_SPEED_* options average the speed over several seconds, so a stall after a burst
// is noticed seconds late; counting the time since the byte counters last moved is exact to
// the callback's period (about a second when idle).
int OnProgress(void* userp, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t ulnow) {
  auto* st = static_cast<TransferState*>(userp);
  if (st->request->check_cancelled) {
    Status cancelled = st->request->check_cancelled();
    if (!cancelled.ok()) {
      st->abort_status = std::move(cancelled);
      return 1;
    }
  }
  auto now = std::chrono::steady_clock::now();
  if (dlnow != st->last_down || ulnow != st->last_up) {
    st->last_down = dlnow;
    st->last_up = ulnow;
    st->last_progress = now;
    return 0;
  }
  if (now - st->last_progress >= st->request->stall_timeout) {
    st->stalled = true;
    return 1;
  }
  return 0;
}

// Setup failures are programming or libcurl build errors; report them instead of ignoring.
template <typename T>
Status SetOpt(CURL* h, CURLoption opt, T value, const char* name) {
  CURLcode rc = curl_easy_setopt(h, opt, value);
  if (rc != CURLE_OK) {
    return InternalError(StrCat("libcurl rejected option ", name, ": ", curl_easy_strerror(rc)));
  }
  return OkStatus();
}

}  // namespace

void EnsureCurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

CurlHandlePool::~CurlHandlePool() {
  for (CURL* h : idle_) curl_easy_cleanup(h);
}

CURL* CurlHandlePool::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      CURL* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  EnsureCurlGlobalInit();
  return curl_easy_init();
}

void CurlHandlePool::Release(CURL* handle) {
  if (handle == nullptr) return;
  // Drops the options (which point into the finished request) but keeps the connection and
  // DNS caches, which are the point of pooling.
  curl_easy_reset(handle);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < max_idle_) {
      idle_.push_back(handle);
      return;
    }
  }
  curl_easy_cleanup(handle);
}

std::string HttpResponse::Header(const std::string& lowercase_name) const {
  auto it = headers.find(lowercase_name);
  return it == headers.end() || it->second.empty() ? "" : it->second.front();
}

TransferResult Perform(CurlHandlePool& pool, const HttpRequest& request) {
  TransferResult result;
  std::vector<X509Ptr> ca_certs;
  for (const std::string& file : request.tls.ca_files) {
    result.abort_status = LoadCaFile(file, ca_certs);
    if (!result.abort_status.ok()) return result;
  }

  CURL* h = pool.Acquire();
  if (h == nullptr) {
    result.abort_status = ResourceExhaustedError("libcurl could not allocate a handle");
    return result;
  }
  ScopeGuard release([&] { pool.Release(h); });

  std::unique_ptr<curl_slist, SlistDeleter> headers;
  for (const std::string& hdr : request.headers) {
    curl_slist* next = curl_slist_append(headers.get(), hdr.c_str());
    if (next == nullptr) {
      result.abort_status = ResourceExhaustedError("out of memory building request headers");
      return result;
    }
    // libcurl appends at the tail: the head, once there is one, stays.
    if (!headers) headers.reset(next);
  }

  TransferState state;
  state.request = &request;
  state.response = &result.response;
  char errbuf[CURL_ERROR_SIZE] = {0};
  const long stall = std::max<long>(1, static_cast<long>(request.stall_timeout.count()));

  Status setup;
  auto set = [&](CURLoption opt, auto value, const char* name) {
    if (setup.ok()) setup = SetOpt(h, opt, value, name);
  };
  set(CURLOPT_URL, request.url.c_str(), "URL");
  set(CURLOPT_PROTOCOLS_STR, "http,https", "PROTOCOLS_STR");
  set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https", "REDIR_PROTOCOLS_STR");
  set(CURLOPT_FOLLOWLOCATION, 1L, "FOLLOWLOCATION");
  set(CURLOPT_MAXREDIRS, 10L, "MAXREDIRS");
  set(CURLOPT_NOSIGNAL, 1L, "NOSIGNAL");
  set(CURLOPT_TCP_KEEPALIVE, 1L, "TCP_KEEPALIVE");
  set(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L, "SUPPRESS_CONNECT_HEADERS");
  set(CURLOPT_CONNECTTIMEOUT, stall, "CONNECTTIMEOUT");
  set(CURLOPT_NOPROGRESS, 0L, "NOPROGRESS");
  set(CURLOPT_XFERINFOFUNCTION, &OnProgress, "XFERINFOFUNCTION");
  set(CURLOPT_XFERINFODATA, static_cast<void*>(&state), "XFERINFODATA");
  set(CURLOPT_ERRORBUFFER, errbuf, "ERRORBUFFER");
  set(CURLOPT_HEADERFUNCTION, &OnHeader, "HEADERFUNCTION");
  set(CURLOPT_HEADERDATA, static_cast<void*>(&state), "HEADERDATA");
  set(CURLOPT_WRITEFUNCTION, &OnBody, "WRITEFUNCTION");
  set(CURLOPT_WRITEDATA, static_cast<void*>(&state), "WRITEDATA");
  // Layer blobs are large: bigger receive chunks mean fewer sink calls and
  // fewer writes to the content store and the unpack pipe.
  set(CURLOPT_BUFFERSIZE, 512L * 1024, "BUFFERSIZE");
  if (!request.user_agent.empty()) set(CURLOPT_USERAGENT, request.user_agent.c_str(), "USERAGENT");
  if (headers) set(CURLOPT_HTTPHEADER, headers.get(), "HTTPHEADER");
  if (request.method == "POST") {
    set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()),
        "POSTFIELDSIZE_LARGE");
    set(CURLOPT_POSTFIELDS, request.body.data(), "POSTFIELDS");
  } else if (request.method == "HEAD") {
    set(CURLOPT_NOBODY, 1L, "NOBODY");
  } else if (request.method != "GET") {
    setup = InternalError(StrCat("unsupported HTTP method ", request.method));
  }
  if (request.tls.skip_verify) {
    set(CURLOPT_SSL_VERIFYPEER, 0L, "SSL_VERIFYPEER");
    set(CURLOPT_SSL_VERIFYHOST, 0L, "SSL_VERIFYHOST");
  }
  if (!ca_certs.empty()) {
    set(CURLOPT_SSL_CTX_FUNCTION, &AddCaCerts, "SSL_CTX_FUNCTION");
    set(CURLOPT_SSL_CTX_DATA, static_cast<void*>(&ca_certs), "SSL_CTX_DATA");
  }
  if (!request.tls.client_cert.empty()) {
    set(CURLOPT_SSLCERT, request.tls.client_cert.c_str(), "SSLCERT");
    if (!request.tls.client_key.empty()) {
      set(CURLOPT_SSLKEY, request.tls.client_key.c_str(), "SSLKEY");
    }
  }
  if (!setup.ok()) {
    result.abort_status = setup;
    return result;
  }

  state.last_progress = std::chrono::steady_clock::now();
  result.curl_code = curl_easy_perform(h);
  if (!state.abort_status.ok()) {
    result.abort_status = std::move(state.abort_status);
  }
  if (state.stalled) {
    result.curl_code = CURLE_OPERATION_TIMEDOUT;
    result.curl_error =
        StrCat("no data moved for ", stall, "s after ", state.last_down, " bytes received");
  } else if (result.curl_code != CURLE_OK) {
    result.curl_error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(result.curl_code);
  }
  return result;
}

TransportFailure ClassifyCurlError(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return TransportFailure::kUnreachable;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
      return TransportFailure::kTls;
    case CURLE_OPERATION_TIMEDOUT:
      return TransportFailure::kTimeout;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
      return TransportFailure::kTransient;
    default:
      return TransportFailure::kPermanent;
  }
}

std::string UrlEscape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace berth::registry::internal
