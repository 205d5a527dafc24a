#include "registry/client.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "registry/http_transfer.h"

namespace berth::registry {

namespace {

using internal::HttpRequest;
using internal::HttpResponse;
using internal::TransferResult;
using internal::TransportFailure;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxManifestBytes = 8 << 20;
constexpr size_t kMaxTokenResponseBytes = 1 << 20;
constexpr std::chrono::seconds kDefaultTokenLifetime{60};  // distribution token spec default

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One path component of a repository name: alnum runs joined by '.', '_', '__' or '-'+.
bool ValidComponent(std::string_view c) {
  if (c.empty() || !IsLowerAlnum(c.front()) || !IsLowerAlnum(c.back())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (IsLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    while (i < c.size() && !IsLowerAlnum(c[i])) ++i;
    std::string_view sep = c.substr(start, i - start);
    bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
  }
  return true;
}

std::string HttpStatusSummary(const HttpResponse& resp) {
  // Registries explain errors as {"errors":[{"code":"...","message":"..."}]}.
  std::string detail;
  nlohmann::json doc = nlohmann::json::parse(resp.body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_discarded() && doc.is_object()) {
    auto errors = doc.find("errors");
    if (errors != doc.end() && errors->is_array() && !errors->empty() && (*errors)[0].is_object()) {
      const nlohmann::json& e = (*errors)[0];
      std::string code = e.value("code", "");
      std::string message = e.value("message", "");
      detail = code.empty() ? message : (message.empty() ? code : StrCat(code, ": ", message));
    }
  }
  if (detail.empty() && !resp.body.empty() && resp.body.size() <= 200 &&
      std::all_of(resp.body.begin(), resp.body.end(), [](char c) {
        return std::isprint(static_cast<unsigned char>(c)) || c == '\n';
      })) {
    detail = resp.body;
    while (!detail.empty() && detail.back() == '\n') detail.pop_back();
  }
  return detail.empty() ? StrCat("HTTP ", resp.status)
                        : StrCat("HTTP ", resp.status, " (", detail, ")");
}

Status HttpError(const HttpResponse& resp) {
  std::string summary = HttpStatusSummary(resp);
  long s = resp.status;
  if (s == 401) return UnauthenticatedError(StrCat("unauthorized: ", summary));
  if (s == 403) return PermissionDeniedError(StrCat("access denied: ", summary));
  if (s == 404) return NotFoundError(StrCat("not found: ", summary));
  if (s == 429) return ResourceExhaustedError(StrCat("rate limited: ", summary));
  if (s >= 500) return UnavailableError(StrCat("registry error: ", summary));
  if (s == 400) return InvalidArgumentError(StrCat("bad request: ", summary));
  return UnknownError(StrCat("unexpected response: ", summary));
}

bool RetryableHttp(long status) { return status == 429 || status >= 500; }

Status TransportError(const TransferResult& r, std::chrono::seconds stall) {
  switch (internal::ClassifyCurlError(r.curl_code)) {
    case TransportFailure::kUnreachable:
      return UnavailableError(StrCat("unreachable: ", r.curl_error));
    case TransportFailure::kTls:
      return UnavailableError(
          StrCat("TLS failure: ", r.curl_error, " (configure ca or skip_verify in hosts.toml)"));
    case TransportFailure::kTimeout:
      return DeadlineExceededError(
          StrCat("timed out (stall timeout ", stall.count(), "s): ", r.curl_error));
    case TransportFailure::kTransient:
    case TransportFailure::kPermanent:
      break;
  }
  return UnavailableError(StrCat("transfer failed: ", r.curl_error));
}

bool RetryableTransport(CURLcode code) {
  TransportFailure f = internal::ClassifyCurlError(code);
  return f == TransportFailure::kTimeout || f == TransportFailure::kTransient;
}

internal::TlsSettings TlsOf(const Endpoint& ep) {
  return {ep.skip_verify, ep.ca_files, ep.client_cert, ep.client_key};
}

std::string MediaTypeOf(const HttpResponse& resp, const std::string& body) {
  std::string ct = resp.Header("content-type");
  if (size_t semi = ct.find(';'); semi != std::string::npos) ct.resize(semi);
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  if (!ct.empty() && ct != "application/json" && ct != "text/plain" &&
      ct != "application/octet-stream") {
    return ct;
  }
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_discarded() && doc.is_object()) {
    auto it = doc.find("mediaType");
    if (it != doc.end() && it->is_string()) return it->get<std::string>();
  }
  return ct;
}

// What one failed endpoint said, for the combined error.
struct EndpointFailure {
  std::string url;
  Status status;
};

Status CombineFailures(std::string_view object, const std::vector<EndpointFailure>& failures) {
  StatusCode code = StatusCode::kNotFound;
  for (const EndpointFailure& f : failures) {
    if (f.status.code() != StatusCode::kNotFound) {
      code = f.status.code();
      break;
    }
  }
  std::string msg(object);
  msg += ": ";
  for (size_t i = 0; i < failures.size(); ++i) {
    if (i > 0) msg += "; ";
    msg += StrCat(failures[i].url, ": ", failures[i].status.message());
  }
  return Status(code, std::move(msg));
}

}  // namespace

Status ValidateRepository(std::string_view repository) {
  bool ok = !repository.empty() && repository.size() <= 255;
  size_t start = 0;
  while (ok && start <= repository.size()) {
    size_t slash = repository.find('/', start);
    if (slash == std::string_view::npos) slash = repository.size();
    ok = ValidComponent(repository.substr(start, slash - start));
    start = slash + 1;
  }
  if (!ok) {
    return InvalidArgumentError(StrCat("invalid repository name \"", repository,
                                       "\": want lowercase path components like library/busybox"));
  }
  return OkStatus();
}

Status ValidateTag(std::string_view tag) {
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  bool ok =
      !tag.empty() && tag.size() <= 128 && word(tag.front()) &&
      std::all_of(tag.begin(), tag.end(), [&](char c) { return word(c) || c == '.' || c == '-'; });
  if (!ok) {
    return InvalidArgumentError(
        StrCat("invalid tag \"", tag, "\": want [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"));
  }
  return OkStatus();
}

struct Client::Impl {
  explicit Impl(ClientOptions o) : options(std::move(o)) {
    if (options.max_attempts < 1) options.max_attempts = 1;
    if (options.stall_timeout < std::chrono::seconds(1))
      options.stall_timeout = std::chrono::seconds(1);
    internal::EnsureCurlGlobalInit();
  }

  // State of one GetManifest/GetBlob call.
  struct Call {
    std::string registry_host;
    std::string repository;
    std::string object;   // names the manifest or blob in errors
    Status creds_status;  // a broken docker config surfaces only if credentials are needed
    std::optional<AuthConfig> creds;
    std::string creds_fingerprint;
    CancelCheck cancelled;  // polled by every transfer of this call
  };

  // A per-request exchange: `build` fills URL, headers and callbacks; `delivered` reports
  // whether the caller's sink has seen bytes (which forbids retries).
  struct Exchange {
    std::function<void(HttpRequest&)> build;
    std::function<bool()> delivered = [] { return false; };
  };

  struct CachedAuth {
    std::string header;  // full "Authorization: ..." line
    Clock::time_point expires;
  };

  Call NewCall(std::string_view host, std::string_view repo, std::string object,
               const std::optional<AuthConfig>& auth) {
    Call call{std::string(host), std::string(repo), std::move(object), OkStatus(), auth, "", {}};
    if (!call.creds.has_value()) {
      for (const auto& path : options.docker_config_paths) {
        StatusOr<std::optional<AuthConfig>> found = LookupDockerConfig(path, host);
        if (!found.ok()) {
          call.creds_status = found.status();
          break;
        }
        if (found->has_value()) {
          call.creds = std::move(**found);
          break;
        }
      }
    }
    if (call.creds.has_value() && call.creds->empty()) call.creds.reset();
    if (call.creds.has_value()) {
      const AuthConfig& c = *call.creds;
      call.creds_fingerprint = Sha256::Of(StrCat(c.username, '\0', c.password, '\0', c.auth, '\0',
                                                 c.identity_token, '\0', c.registry_token))
                                   .hex();
    }
    return call;
  }

  static std::string CacheKey(const Call& call, const Endpoint& ep) {
    return StrCat(ep.url, ep.path_prefix, '\n', call.repository, '\n', call.creds_fingerprint);
  }

  std::string CachedAuthHeader(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = auth_cache.find(key);
    if (it == auth_cache.end()) return "";
    if (Clock::now() >= it->second.expires) {
      auth_cache.erase(it);
      return "";
    }
    return it->second.header;
  }

  void StoreAuth(const std::string& key, std::string header, Clock::time_point expires) {
    std::lock_guard<std::mutex> lock(mu);
    Clock::time_point now = Clock::now();
    std::erase_if(auth_cache, [&](const auto& kv) { return kv.second.expires <= now; });
    auth_cache[key] = CachedAuth{std::move(header), expires};
  }

  void DropAuth(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    auth_cache.erase(key);
  }

  void Backoff(int attempt) const {
    auto delay = options.retry_backoff * (1 << std::min(attempt - 1, 10));
    std::this_thread::sleep_for(
        std::min<std::chrono::milliseconds>(delay, std::chrono::seconds(5)));
  }

  HttpRequest BaseRequest(const Endpoint& ep) const {
    HttpRequest req;
    req.tls = TlsOf(ep);
    req.stall_timeout = options.stall_timeout;
    req.user_agent = options.user_agent;
    for (const auto& [name, value] : ep.headers) req.headers.push_back(StrCat(name, ": ", value));
    return req;
  }

  // A request that is not streamed to a caller (token fetches): retried while transient.
  TransferResult PerformWithRetries(const HttpRequest& req) {
    TransferResult r;
    for (int attempt = 1;; ++attempt) {
      r = internal::Perform(pool, req);
      bool transient =
          (r.abort_status.ok() && r.curl_code != CURLE_OK && RetryableTransport(r.curl_code)) ||
          (r.ok() && RetryableHttp(r.response.status));
      if (!transient || attempt >= options.max_attempts) return r;
      Backoff(attempt);
    }
  }

  // Obtains an Authorization header answering the 401 in `resp` and caches it under `key`.
  Status Authenticate(const Call& call, const Endpoint& ep, const HttpResponse& resp,
                      const std::string& key) {
    std::vector<AuthChallenge> challenges;
    auto it = resp.headers.find("www-authenticate");
    if (it != resp.headers.end()) {
      for (const std::string& value : it->second) {
        for (AuthChallenge& c : ParseAuthChallenges(value)) challenges.push_back(std::move(c));
      }
    }
    const AuthChallenge* bearer = nullptr;
    const AuthChallenge* basic = nullptr;
    for (const AuthChallenge& c : challenges) {
      if (c.scheme == "bearer" && bearer == nullptr) bearer = &c;
      if (c.scheme == "basic" && basic == nullptr) basic = &c;
    }
    if (bearer == nullptr && basic == nullptr) {
      return UnauthenticatedError(
          StrCat("registry answered 401 without a Basic or Bearer "
                 "WWW-Authenticate challenge: ",
                 HttpStatusSummary(resp)));
    }
    if (!call.creds_status.ok()) return call.creds_status;
    const AuthConfig empty;
    const AuthConfig& creds = call.creds.has_value() ? *call.creds : empty;
    StatusOr<BasicCredentials> basic_creds = ResolveBasicCredentials(creds);
    if (!basic_creds.ok()) {
      return Annotate(basic_creds.status(), StrCat("credentials for ", call.registry_host));
    }
    std::string user_pass_header;
    if (!basic_creds->empty()) {
      user_pass_header =
          StrCat("Authorization: Basic ",
                 Base64Encode(StrCat(basic_creds->username, ":", basic_creds->password)));
    }
    const Clock::time_point forever = Clock::now() + std::chrono::hours(24 * 365);

    if (bearer == nullptr) {
      if (user_pass_header.empty()) {
        return UnauthenticatedError(
            StrCat("registry requires basic authentication (realm \"", basic->param("realm"),
                   "\") and no credentials were given or found in a docker config for ",
                   call.registry_host));
      }
      StoreAuth(key, user_pass_header, forever);
      return OkStatus();
    }
    if (!creds.registry_token.empty()) {
      StoreAuth(key, StrCat("Authorization: Bearer ", creds.registry_token), forever);
      return OkStatus();
    }

    std::string realm = bearer->param("realm");
    if (!realm.starts_with("http://") && !realm.starts_with("https://")) {
      return UnauthenticatedError(
          StrCat("registry's bearer challenge has no usable realm URL (\"", realm, "\")"));
    }
    std::string service = bearer->param("service");
    std::vector<std::string> scopes = {StrCat("repository:", call.repository, ":pull")};
    if (std::string s = bearer->param("scope"); !s.empty() && s != scopes[0]) scopes.push_back(s);

    HttpRequest req = BaseRequest(ep);
    req.max_body = kMaxTokenResponseBytes;
    std::string who;
    if (!creds.identity_token.empty()) {
      // OAuth2 refresh-token grant of the distribution token spec.
      std::string scope_list;
      for (const std::string& s : scopes) scope_list += (scope_list.empty() ? "" : " ") + s;
      req.method = "POST";
      req.url = realm;
      req.headers.push_back("Content-Type: application/x-www-form-urlencoded");
      req.body = StrCat(
          "grant_type=refresh_token&refresh_token=", internal::UrlEscape(creds.identity_token),
          "&service=", internal::UrlEscape(service), "&scope=", internal::UrlEscape(scope_list),
          "&client_id=berth");
      who = "identity token";
    } else {
      std::string query;
      if (!service.empty()) query += StrCat("service=", internal::UrlEscape(service));
      for (const std::string& s : scopes) {
        query += StrCat(query.empty() ? "" : "&", "scope=", internal::UrlEscape(s));
      }
      if (!basic_creds->username.empty()) {
        query += StrCat("&account=", internal::UrlEscape(basic_creds->username));
      }
      req.url = StrCat(realm, realm.find('?') == std::string::npos ? "?" : "&", query);
      if (!user_pass_header.empty()) req.headers.push_back(user_pass_header);
      who = user_pass_header.empty()
                ? "anonymous access"
                : StrCat("credentials of user \"", basic_creds->username, "\"");
    }

    TransferResult r = PerformWithRetries(req);
    if (!r.abort_status.ok()) return Annotate(r.abort_status, StrCat("token server ", realm));
    if (r.curl_code != CURLE_OK) {
      return Annotate(TransportError(r, options.stall_timeout), StrCat("token server ", realm));
    }
    const HttpResponse& tr = r.response;
    if (tr.status == 401 || tr.status == 403) {
      return UnauthenticatedError(
          StrCat("token server ", realm, " refused ", who, ": ", HttpStatusSummary(tr)));
    }
    if (tr.status < 200 || tr.status >= 300) {
      return Annotate(HttpError(tr), StrCat("token server ", realm));
    }
    nlohmann::json doc = nlohmann::json::parse(tr.body, nullptr, /*allow_exceptions=*/false);
    std::string token;
    std::chrono::seconds lifetime = kDefaultTokenLifetime;
    if (!doc.is_discarded() && doc.is_object()) {
      for (const char* field : {"access_token", "token"}) {
        auto f = doc.find(field);
        if (f != doc.end() && f->is_string() && !f->get<std::string>().empty()) {
          token = f->get<std::string>();
          break;
        }
      }
      auto exp = doc.find("expires_in");
      if (exp != doc.end() && exp->is_number_integer() && exp->get<int64_t>() > 0) {
        lifetime = std::chrono::seconds(exp->get<int64_t>());
      }
    }
    if (token.empty()) {
      return UnauthenticatedError(
          StrCat("token server ", realm, " answered without a token or access_token"));
    }
    // Renew a little early so a token does not expire between the check and its use.
    auto margin = std::min<std::chrono::seconds>(lifetime / 10 + std::chrono::seconds(1),
                                                 std::chrono::seconds(30));
    StoreAuth(key, StrCat("Authorization: Bearer ", token), Clock::now() + lifetime - margin);
    return OkStatus();
  }

  // One request against one endpoint: anonymous or cached auth first, one authentication round
  // on 401, retries of transient failures while nothing reached the caller. On success the
  // final 2xx response is in `*out`.
  Status Execute(const Call& call, const Endpoint& ep, const Exchange& exchange,
                 HttpResponse* out) {
    const std::string key = CacheKey(call, ep);
    bool authenticated = false;
    int attempt = 1;
    while (true) {
      HttpRequest req = BaseRequest(ep);
      exchange.build(req);
      req.check_cancelled = call.cancelled;
      std::string auth_header = CachedAuthHeader(key);
      if (!auth_header.empty()) req.headers.push_back(auth_header);

      TransferResult r = internal::Perform(pool, req);
      if (!r.abort_status.ok()) return r.abort_status;
      if (r.curl_code != CURLE_OK) {
        Status err = TransportError(r, options.stall_timeout);
        if (exchange.delivered() || !RetryableTransport(r.curl_code) ||
            attempt >= options.max_attempts) {
          return err;
        }
        Backoff(attempt++);
        continue;
      }
      HttpResponse& resp = r.response;
      if (resp.status >= 200 && resp.status < 300) {
        *out = std::move(resp);
        return OkStatus();
      }
      if (resp.status == 401) {
        if (!auth_header.empty()) DropAuth(key);
        if (authenticated) {
          std::string who = "an anonymous token";
          if (call.creds.has_value()) {
            StatusOr<BasicCredentials> basic = ResolveBasicCredentials(*call.creds);
            who = basic.ok() && !basic->username.empty()
                      ? StrCat("the credentials of user \"", basic->username, "\"")
                      : "the given token";
          }
          return UnauthenticatedError(StrCat("registry refused ", who, " for repository ",
                                             call.repository, ": ", HttpStatusSummary(resp)));
        }
        RETURN_IF_ERROR(Authenticate(call, ep, resp, key));
        authenticated = true;
        continue;
      }
      if (RetryableHttp(resp.status) && attempt < options.max_attempts) {
        Backoff(attempt++);
        continue;
      }
      return HttpError(resp);
    }
  }

  std::string ObjectUrl(const Call& call, const Endpoint& ep, std::string_view kind,
                        std::string_view ref) const {
    std::string url = StrCat(ep.url, ep.path_prefix, "/", call.repository, "/", kind, "/", ref);
    if (ep.is_mirror) url += StrCat("?ns=", internal::UrlEscape(call.registry_host));
    return url;
  }

  StatusOr<std::vector<Endpoint>> EndpointsFor(std::string_view host, bool resolve,
                                               std::string_view object) {
    ASSIGN_OR_RETURN(std::vector<Endpoint> all, ResolveEndpoints(options.hosts_dir, host));
    std::vector<Endpoint> out;
    for (Endpoint& ep : all) {
      if (resolve ? ep.can_resolve : ep.can_pull) out.push_back(std::move(ep));
    }
    if (out.empty()) {
      return FailedPreconditionError(StrCat(object, ": no endpoint configured for ", host,
                                            " has the ", resolve ? "resolve" : "pull",
                                            " capability (see its hosts.toml)"));
    }
    return out;
  }

  ClientOptions options;
  internal::CurlHandlePool pool;
  std::mutex mu;
  std::map<std::string, CachedAuth> auth_cache;  // guarded by mu
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Client::~Client() = default;

StatusOr<Manifest> Client::GetManifest(std::string_view registry_host, std::string_view repository,
                                       std::string_view reference,
                                       const std::optional<AuthConfig>& auth,
                                       const CancelCheck& cancelled) {
  RETURN_IF_ERROR(ValidateRepository(repository));
  std::optional<Digest> want;
  if (reference.find(':') != std::string_view::npos) {
    ASSIGN_OR_RETURN(Digest d, Digest::Parse(reference));
    want = d;
  } else {
    RETURN_IF_ERROR(ValidateTag(reference));
  }
  std::string object =
      StrCat("manifest ", registry_host, "/", repository, want.has_value() ? "@" : ":", reference);
  ASSIGN_OR_RETURN(std::vector<Endpoint> endpoints,
                   impl_->EndpointsFor(registry_host, /*resolve=*/!want.has_value(), object));
  Impl::Call call = impl_->NewCall(registry_host, repository, object, auth);
  call.cancelled = cancelled;

  std::vector<EndpointFailure> failures;
  for (const Endpoint& ep : endpoints) {
    Impl::Exchange exchange;
    exchange.build = [&](HttpRequest& req) {
      req.url = impl_->ObjectUrl(call, ep, "manifests", reference);
      req.max_body = kMaxManifestBytes;
      req.headers.push_back(StrCat("Accept: ", kMediaTypeDockerManifest, ", ",
                                   kMediaTypeDockerManifestList, ", ", kMediaTypeOciManifest, ", ",
                                   kMediaTypeOciIndex));
    };
    HttpResponse resp;
    Status s = impl_->Execute(call, ep, exchange, &resp);
    // A caller that has gone wants no other endpoint tried on its behalf.
    if (!s.ok() && cancelled) {
      if (Status c = cancelled(); !c.ok()) return c;
    }
    if (s.ok()) {
      Digest got = Sha256::Of(resp.body);
      if (want.has_value() && got != *want) {
        s = DataLossError(StrCat("digest mismatch: body hashes to ", got.str()));
      } else {
        std::string media_type = MediaTypeOf(resp, resp.body);
        return Manifest{std::move(media_type), std::move(resp.body), std::move(got)};
      }
    }
    failures.push_back({ep.url, std::move(s)});
  }
  return CombineFailures(object, failures);
}

Status Client::GetBlob(std::string_view registry_host, std::string_view repository,
                       const Digest& digest, int64_t expected_size,
                       const std::function<Status(const char*, size_t)>& sink,
                       const std::optional<AuthConfig>& auth, const CancelCheck& cancelled) {
  RETURN_IF_ERROR(ValidateRepository(repository));
  std::string object = StrCat("blob ", registry_host, "/", repository, "@", digest.str());
  ASSIGN_OR_RETURN(std::vector<Endpoint> endpoints,
                   impl_->EndpointsFor(registry_host, /*resolve=*/false, object));
  Impl::Call call = impl_->NewCall(registry_host, repository, object, auth);
  call.cancelled = cancelled;

  std::vector<EndpointFailure> failures;
  for (const Endpoint& ep : endpoints) {
    Sha256 hasher;
    uint64_t received = 0;
    bool delivered = false;
    Status sink_status;
    Impl::Exchange exchange;
    exchange.delivered = [&] { return delivered; };
    exchange.build = [&](HttpRequest& req) {
      req.url = impl_->ObjectUrl(call, ep, "blobs", digest.str());
      req.on_headers = [&](const HttpResponse& resp) -> Status {
        std::string len = resp.Header("content-length");
        if (expected_size >= 0 && !len.empty() && len != std::to_string(expected_size)) {
          return DataLossError(StrCat("size mismatch: registry announces ", len,
                                      " bytes, expected ", expected_size));
        }
        return OkStatus();
      };
      req.on_body = [&](const char* data, size_t n) -> Status {
        received += n;
        if (expected_size >= 0 && received > static_cast<uint64_t>(expected_size)) {
          return DataLossError(
              StrCat("size mismatch: received more than the expected ", expected_size, " bytes"));
        }
        hasher.Update(data, n);
        delivered = true;
        sink_status = sink(data, n);
        return sink_status;
      };
    };
    HttpResponse resp;
    Status s = impl_->Execute(call, ep, exchange, &resp);
    // A caller that has gone wants no other endpoint tried on its behalf.
    if (!s.ok() && cancelled) {
      if (Status c = cancelled(); !c.ok()) return c;
    }
    if (!sink_status.ok()) return sink_status;
    if (s.ok()) {
      if (expected_size >= 0 && received != static_cast<uint64_t>(expected_size)) {
        s = DataLossError(
            StrCat("size mismatch: received ", received, " bytes, expected ", expected_size));
      } else if (Digest got = hasher.Finish(); got != digest) {
        s = DataLossError(
            StrCat("digest mismatch: received ", received, " bytes that hash to ", got.str()));
      } else {
        return OkStatus();
      }
    }
    if (delivered) return Annotate(s, StrCat(object, ": ", ep.url));
    failures.push_back({ep.url, std::move(s)});
  }
  return CombineFailures(object, failures);
}

}  // namespace berth::registry
