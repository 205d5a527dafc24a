#include "support/registry_server.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/fs.h"

namespace berth::testing {

namespace {

constexpr char kTokenService[] = "berth-test-registry";
constexpr char kTokenIssuer[] = "berth-test-issuer";

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;

std::string OpenSslError(std::string_view what) {
  char buf[256] = {0};
  unsigned long err = ERR_get_error();
  if (err != 0) ERR_error_string_n(err, buf, sizeof(buf));
  ERR_clear_error();
  return StrCat(what, ": ", buf[0] != '\0' ? buf : "unknown OpenSSL error");
}

std::string Base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string Base64Url(std::string_view data) {
  std::string s = Base64(data);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

struct KeyAndCert {
  PkeyPtr key;
  X509Ptr cert;
};

Status AddExtension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return InternalError(OpenSslError(StrCat("certificate extension ", value)));
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return InternalError(OpenSslError("X509_add_ext"));
  return OkStatus();
}

// A self-signed RSA certificate for 127.0.0.1 and localhost, valid for a day. It serves as
// the registry's TLS certificate (and its own CA), and as the token signing certificate.
StatusOr<KeyAndCert> MakeSelfSignedCert(const char* common_name) {
  KeyAndCert kc;
  kc.key.reset(EVP_RSA_gen(2048));
  if (!kc.key) return InternalError(OpenSslError("generate RSA key"));
  kc.cert.reset(X509_new());
  X509* x = kc.cert.get();
  if (x == nullptr) return InternalError(OpenSslError("X509_new"));
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), static_cast<long>(std::time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
  X509_set_pubkey(x, kc.key.get());
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
  X509_set_issuer_name(x, name);
  RETURN_IF_ERROR(AddExtension(x, NID_basic_constraints, "critical,CA:TRUE"));
  RETURN_IF_ERROR(
      AddExtension(x, NID_key_usage, "critical,digitalSignature,keyEncipherment,keyCertSign"));
  RETURN_IF_ERROR(AddExtension(x, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddExtension(x, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"));
  if (X509_sign(x, kc.key.get(), EVP_sha256()) == 0) {
    return InternalError(OpenSslError("sign certificate"));
  }
  return kc;
}

Status WritePem(const KeyAndCert& kc, const std::filesystem::path& cert_path,
                const std::filesystem::path* key_path) {
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!cert_bio || PEM_write_bio_X509(cert_bio.get(), kc.cert.get()) != 1) {
    return InternalError(OpenSslError("PEM-encode certificate"));
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(cert_bio.get(), &data);
  RETURN_IF_ERROR(WriteFileAtomic(cert_path, std::string_view(data, static_cast<size_t>(len))));
  if (key_path != nullptr) {
    std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new(BIO_s_mem()), BIO_free);
    if (!key_bio || PEM_write_bio_PrivateKey(key_bio.get(), kc.key.get(), nullptr, nullptr, 0,
                                             nullptr, nullptr) != 1) {
      return InternalError(OpenSslError("PEM-encode key"));
    }
    len = BIO_get_mem_data(key_bio.get(), &data);
    RETURN_IF_ERROR(
        WriteFileAtomic(*key_path, std::string_view(data, static_cast<size_t>(len)), 0600));
  }
  return OkStatus();
}

StatusOr<int> PickFreePort() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "bind 127.0.0.1:0");
  }
  socklen_t len = sizeof(addr);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return ErrnoStatus(errno, "getsockname");
  }
  return static_cast<int>(ntohs(addr.sin_port));
}

// Runs argv with a clean environment and returns its stdout; non-zero exit is an error.
StatusOr<std::string> RunCapture(const std::vector<std::string>& argv) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  char env_path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  char* envp[] = {env_path, nullptr};
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, StrCat("fork for ", argv[0]));
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::execve(args[0], args.data(), envp);
    ::_exit(127);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) out.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return InternalError(StrCat(argv[0], " failed (status ", status, ")"));
  }
  return out;
}

void CurlInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t Discard(char*, size_t size, size_t nmemb, void*) { return size * nmemb; }

// GET <url>/v2/; any HTTP answer from a distribution server (200 or 401) means ready.
bool RegistryAnswers(const std::string& url, const std::string& ca_file) {
  CurlInitOnce();
  CURL* h = curl_easy_init();
  if (h == nullptr) return false;
  std::string target = url + "/v2/";
  curl_easy_setopt(h, CURLOPT_URL, target.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Discard);
  if (!ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, ca_file.c_str());
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(h);
  return rc == CURLE_OK && (status == 200 || status == 401);
}

CannedResponse JsonResponse(int status, const nlohmann::json& body) {
  CannedResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = body.dump();
  return r;
}

CannedResponse Unauthorized(std::string_view why) {
  CannedResponse r =
      JsonResponse(401, {{"errors", {{{"code", "UNAUTHORIZED"}, {"message", std::string(why)}}}}});
  r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"berth-test-token\"");
  return r;
}

}  // namespace

StatusOr<std::string> MakeHtpasswdLine(std::string_view user, std::string_view password) {
  ASSIGN_OR_RETURN(std::string out, RunCapture({"/usr/bin/htpasswd", "-Bbn", std::string(user),
                                                std::string(password)}));
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// Signs registry tokens (RS256 JWTs whose x5c header carries the self-signed certificate the
// registry trusts through its rootcertbundle).
struct RegistryServer::TokenIssuer {
  KeyAndCert kc;
  std::string x5c;  // base64 DER of the certificate

  StatusOr<std::string> Mint(
      std::string_view subject,
      const std::vector<std::pair<std::string, std::vector<std::string>>>& access,
      int64_t lifetime_seconds) const {
    nlohmann::json header = {{"typ", "JWT"}, {"alg", "RS256"}, {"x5c", {x5c}}};
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    nlohmann::json grants = nlohmann::json::array();
    for (const auto& [name, actions] : access) {
      grants.push_back({{"type", "repository"}, {"name", name}, {"actions", actions}});
    }
    nlohmann::json claims = {{"iss", kTokenIssuer},  {"sub", std::string(subject)},
                             {"aud", kTokenService}, {"exp", now + lifetime_seconds},
                             {"nbf", now - 10},      {"iat", now},
                             {"jti", RandomHex(8)},  {"access", grants}};
    std::string signing_input = Base64Url(header.dump()) + "." + Base64Url(claims.dump());
    std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>> ctx(EVP_MD_CTX_new());
    size_t sig_len = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, kc.key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &sig_len,
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) != 1) {
      return InternalError(OpenSslError("sign token"));
    }
    std::string sig(sig_len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len,
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) != 1) {
      return InternalError(OpenSslError("sign token"));
    }
    sig.resize(sig_len);
    return signing_input + "." + Base64Url(sig);
  }
};

RegistryServer::RegistryServer() = default;

RegistryServer::~RegistryServer() { Stop(); }

std::string RegistryServer::url() const {
  return StrCat(options_.tls ? "https" : "http", "://127.0.0.1:", port_);
}

std::string RegistryServer::token_realm() const {
  return token_server_ ? token_server_->url() + "/token" : "";
}

std::vector<RecordedRequest> RegistryServer::token_requests() const {
  return token_server_ ? token_server_->requests() : std::vector<RecordedRequest>{};
}

std::string RegistryServer::Log() const {
  StatusOr<std::string> log = ReadFile(dir_ / "registry.log");
  return log.ok() ? *log : "";
}

StatusOr<std::string> RegistryServer::IssueToken(std::string_view repository,
                                                 std::string_view actions) const {
  if (!issuer_) return FailedPreconditionError("registry was not started with token_auth");
  std::vector<std::string> list;
  size_t start = 0;
  while (start <= actions.size()) {
    size_t comma = actions.find(',', start);
    if (comma == std::string_view::npos) comma = actions.size();
    if (comma > start) list.emplace_back(actions.substr(start, comma - start));
    start = comma + 1;
  }
  return issuer_->Mint("berth-test", {{std::string(repository), list}}, 3600);
}

CannedResponse RegistryServer::HandleTokenRequest(const RecordedRequest& req) {
  if (req.path() != "/token") return JsonResponse(404, {{"error", "no such path"}});
  std::vector<std::pair<std::string, std::string>> params =
      ParseQuery(req.method == "POST" ? std::string_view(req.body) : std::string_view(req.query()));
  std::vector<std::string> scopes;
  std::string subject = "anonymous";
  std::string grant_type, refresh_token, service;
  for (const auto& [k, v] : params) {
    if (k == "scope") {
      // A scope parameter may list several scopes separated by spaces (the OAuth form).
      size_t start = 0;
      while (start <= v.size()) {
        size_t sp = v.find(' ', start);
        if (sp == std::string::npos) sp = v.size();
        if (sp > start) scopes.push_back(v.substr(start, sp - start));
        start = sp + 1;
      }
    }
    if (k == "grant_type") grant_type = v;
    if (k == "refresh_token") refresh_token = v;
    if (k == "service") service = v;
  }
  if (service != kTokenService) return Unauthorized("unknown service");
  if (req.method == "POST") {
    if (grant_type != "refresh_token" || options_.token_refresh_token.empty() ||
        refresh_token != options_.token_refresh_token) {
      return Unauthorized("invalid refresh token");
    }
    subject = "refresh-token-user";
  } else if (!options_.token_username.empty()) {
    std::string want = "Basic " + Base64(options_.token_username + ":" + options_.token_password);
    if (req.header("authorization") != want) return Unauthorized("invalid username or password");
    subject = options_.token_username;
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> access;
  for (const std::string& scope : scopes) {
    size_t first = scope.find(':');
    size_t last = scope.rfind(':');
    if (first == std::string::npos || last == first || scope.substr(0, first) != "repository") {
      continue;
    }
    std::vector<std::string> actions;
    std::string list = scope.substr(last + 1);
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      if (comma == std::string::npos) comma = list.size();
      if (comma > start) actions.push_back(list.substr(start, comma - start));
      start = comma + 1;
    }
    access.emplace_back(scope.substr(first + 1, last - first - 1), actions);
  }
  StatusOr<std::string> token = issuer_->Mint(subject, access, 300);
  if (!token.ok()) return JsonResponse(500, {{"error", token.status().ToString()}});
  if (req.method == "POST") {
    return JsonResponse(200, {{"access_token", *token}, {"expires_in", 300}});
  }
  return JsonResponse(200, {{"token", *token}, {"access_token", *token}, {"expires_in", 300}});
}

Status RegistryServer::Start(RegistryServerOptions options) {
  if (running()) return FailedPreconditionError("registry server already running");
  bool basic = !options.htpasswd_file.empty() || !options.username.empty();
  if (basic && options.token_auth) {
    return InvalidArgumentError("registry server: basic auth and token auth are exclusive");
  }
  options_ = std::move(options);
  std::string tmpl = (std::filesystem::temp_directory_path() / "berth-registry-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus(errno, StrCat("mkdtemp ", tmpl));
  dir_ = tmpl;

  Status s = OkStatus();
  if (!options_.username.empty()) {
    StatusOr<std::string> line = MakeHtpasswdLine(options_.username, options_.password);
    s = line.ok() ? WriteFileAtomic(dir_ / "htpasswd", *line + "\n") : line.status();
    options_.htpasswd_file = dir_ / "htpasswd";
  }
  if (s.ok() && options_.tls) {
    StatusOr<KeyAndCert> kc = MakeSelfSignedCert("127.0.0.1");
    std::filesystem::path key = dir_ / "tls-key.pem";
    s = kc.ok() ? WritePem(*kc, ca_file(), &key) : kc.status();
  }
  if (s.ok() && options_.token_auth) {
    StatusOr<KeyAndCert> kc = MakeSelfSignedCert("berth-test-token-issuer");
    if (kc.ok()) {
      s = WritePem(*kc, dir_ / "token-cert.pem", nullptr);
      unsigned char* der = nullptr;
      int len = i2d_X509(kc->cert.get(), &der);
      if (s.ok() && len <= 0) s = InternalError(OpenSslError("DER-encode token certificate"));
      if (s.ok()) {
        issuer_ = std::make_unique<TokenIssuer>();
        issuer_->x5c = Base64(std::string_view(reinterpret_cast<char*>(der), len));
        issuer_->kc = std::move(*kc);
      }
      OPENSSL_free(der);
    } else {
      s = kc.status();
    }
    if (s.ok()) {
      token_server_ = std::make_unique<FakeHttpServer>(
          [this](const RecordedRequest& req) { return HandleTokenRequest(req); });
      s = token_server_->Start();
    }
  }
  // Another process may grab the port between PickFreePort and the registry's bind.
  for (int attempt = 0; s.ok() && attempt < 3; ++attempt) {
    s = StartOnce();
    if (s.ok() || Log().find("address already in use") == std::string::npos) break;
  }
  if (!s.ok()) {
    Stop();
    return s;
  }
  return OkStatus();
}

Status RegistryServer::StartOnce() {
  ASSIGN_OR_RETURN(port_, PickFreePort());
  std::string config = StrCat(
      "version: 0.1\n"
      "log:\n  level: info\n  accesslog:\n    disabled: true\n"
      "storage:\n  filesystem:\n    rootdirectory: \"",
      (dir_ / "data").string(), "\"\n",
      "  delete:\n    enabled: true\n"
      "  maintenance:\n    uploadpurging:\n      enabled: false\n"
      "http:\n  addr: 127.0.0.1:",
      port_, "\n  secret: ", RandomHex(16), "\n");
  if (options_.tls) {
    config += StrCat("  tls:\n    certificate: \"", ca_file().string(), "\"\n    key: \"",
                     (dir_ / "tls-key.pem").string(), "\"\n");
  }
  if (!options_.htpasswd_file.empty()) {
    config += StrCat("auth:\n  htpasswd:\n    realm: berth-test\n    path: \"",
                     options_.htpasswd_file.string(), "\"\n");
  } else if (options_.token_auth) {
    config += StrCat("auth:\n  token:\n    realm: \"", token_realm(),
                     "\"\n    service: ", kTokenService, "\n    issuer: ", kTokenIssuer,
                     "\n    rootcertbundle: \"", (dir_ / "token-cert.pem").string(), "\"\n");
  }
  std::filesystem::path config_path = dir_ / "config.yml";
  RETURN_IF_ERROR(WriteFileAtomic(config_path, config));

  std::string binary = kRegistryBinary;
  std::string serve = "serve";
  std::string config_arg = config_path.string();
  std::string log_path = (dir_ / "registry.log").string();
  char* argv[] = {binary.data(), serve.data(), config_arg.data(), nullptr};
  std::string env_path = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  std::string env_home = "HOME=" + dir_.string();
  char* envp[] = {env_path.data(), env_home.data(), nullptr};
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "fork for docker-registry");
  if (pid == 0) {
    // Only async-signal-safe calls until execve.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = ::open("/dev/null", O_RDONLY);
    if (log < 0 || null < 0) ::_exit(126);
    ::dup2(null, 0);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::execve(argv[0], argv, envp);
    ::_exit(127);
  }
  pid_ = pid;

  const std::string ca = options_.tls ? ca_file().string() : "";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      std::string log = Log();
      if (log.size() > 2000) log = log.substr(log.size() - 2000);
      return UnavailableError(StrCat(kRegistryBinary, " exited (status ", status,
                                     ") before serving on ", host(), "; log:\n", log));
    }
    if (RegistryAnswers(url(), ca)) return OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string log = Log();
  if (log.size() > 2000) log = log.substr(log.size() - 2000);
  return DeadlineExceededError(
      StrCat(kRegistryBinary, " did not answer on ", url(), " within 20s; log:\n", log));
}

void RegistryServer::Stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    bool reaped = false;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!reaped) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }
  if (token_server_) {
    token_server_->Stop();
    token_server_.reset();
  }
  issuer_.reset();
  if (!dir_.empty()) {
    (void)RemoveAll(dir_);
    dir_.clear();
  }
}

}  // namespace berth::testing
