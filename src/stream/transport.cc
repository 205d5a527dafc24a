#include "stream/transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace berth::stream {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string OpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

Status SetNonBlocking(int fd, bool on) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return ErrnoStatus(errno, "fcntl F_GETFL");
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (fcntl(fd, F_SETFL, flags) != 0) return ErrnoStatus(errno, "fcntl F_SETFL");
  return OkStatus();
}

class TcpTransport final : public Transport {
 public:
  TcpTransport(UniqueFd fd, std::string peer) : Transport(std::move(fd), std::move(peer)) {}

  void ShutdownWrite() override { ::shutdown(fd(), SHUT_WR); }

 protected:
  StatusOr<size_t> ReadSome(std::span<char> buf,
                            std::optional<Clock::time_point> deadline) override {
    while (true) {
      if (deadline) RETURN_IF_ERROR(WaitFd(POLLIN, deadline));
      ssize_t n = ::recv(fd(), buf.data(), buf.size(), 0);
      if (n >= 0) {
        if (cancelled()) return CancelledError("connection cancelled");
        return static_cast<size_t>(n);
      }
      if (errno == EINTR) continue;
      if (cancelled()) return CancelledError("connection cancelled");
      return ErrnoStatus(errno, StrCat("read from ", peer()));
    }
  }

  Status WriteAll(std::string_view data) override {
    while (!data.empty()) {
      ssize_t n = ::send(fd(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (cancelled()) return CancelledError("connection cancelled");
        return ErrnoStatus(errno, StrCat("write to ", peer()));
      }
      data.remove_prefix(static_cast<size_t>(n));
      Touch();
    }
    return OkStatus();
  }
};

// A socket BIO that writes with MSG_NOSIGNAL: a peer that resets the
// connection must not kill the process with SIGPIPE, and a library should not
// depend on the process ignoring it.
int BioWrite(BIO* bio, const char* data, int len) {
  int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio)));
  BIO_clear_retry_flags(bio);
  ssize_t n = ::send(fd, data, static_cast<size_t>(len), MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_write(bio);
  }
  return static_cast<int>(n);
}

int BioRead(BIO* bio, char* data, int len) {
  int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio)));
  BIO_clear_retry_flags(bio);
  ssize_t n = ::recv(fd, data, static_cast<size_t>(len), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_read(bio);
  }
  return static_cast<int>(n);
}

long BioCtrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

int BioCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

const BIO_METHOD* SocketBioMethod() {
  // Created once and never modified afterwards.
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "berth-socket");
    BIO_meth_set_write(m, BioWrite);
    BIO_meth_set_read(m, BioRead);
    BIO_meth_set_ctrl(m, BioCtrl);
    BIO_meth_set_create(m, BioCreate);
    return m;
  }();
  return method;
}

// TLS over a non-blocking socket. OpenSSL forbids using one SSL object from
// two threads at once, so every SSL call holds ssl_mu_; waiting for the socket
// happens outside the lock, so a reader blocked on an idle connection does not
// stop a writer.
class TlsTransport final : public Transport {
 public:
  TlsTransport(UniqueFd fd, std::string peer, SSL* ssl, bool server)
      : Transport(std::move(fd), std::move(peer)), ssl_(ssl), server_(server) {}
  ~TlsTransport() override { SSL_free(ssl_); }

  Status Handshake(Clock::time_point deadline) override {
    const bool server = server_;
    while (true) {
      int rc;
      int err;
      {
        std::lock_guard lock(ssl_mu_);
        ERR_clear_error();
        rc = server ? SSL_accept(ssl_) : SSL_connect(ssl_);
        err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, rc);
      }
      if (rc == 1) return OkStatus();
      if (err == SSL_ERROR_WANT_READ) {
        RETURN_IF_ERROR(WaitFd(POLLIN, deadline));
      } else if (err == SSL_ERROR_WANT_WRITE) {
        RETURN_IF_ERROR(WaitFd(POLLOUT, deadline));
      } else {
        return UnavailableError(StrCat("TLS handshake with ", peer(), ": ", OpenSslErrors()));
      }
    }
  }

  void ShutdownWrite() override {
    {
      std::lock_guard lock(ssl_mu_);
      ERR_clear_error();
      SSL_shutdown(ssl_);  // sends close_notify; a second call would wait for the peer's
    }
    ::shutdown(fd(), SHUT_WR);
  }

 protected:
  StatusOr<size_t> ReadSome(std::span<char> buf,
                            std::optional<Clock::time_point> deadline) override {
    while (true) {
      if (cancelled()) return CancelledError("connection cancelled");
      int rc;
      int err;
      {
        std::lock_guard lock(ssl_mu_);
        ERR_clear_error();
        rc = SSL_read(ssl_, buf.data(), static_cast<int>(std::min<size_t>(buf.size(), 1 << 30)));
        err = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, rc);
      }
      if (rc > 0) return static_cast<size_t>(rc);
      switch (err) {
        case SSL_ERROR_ZERO_RETURN:
          return size_t{0};
        case SSL_ERROR_WANT_READ:
          RETURN_IF_ERROR(WaitFd(POLLIN, deadline));
          break;
        case SSL_ERROR_WANT_WRITE:
          RETURN_IF_ERROR(WaitFd(POLLOUT, deadline));
          break;
        case SSL_ERROR_SYSCALL:
          if (cancelled()) return CancelledError("connection cancelled");
          // EOF without close_notify: treat as the end of the stream.
          if (ERR_peek_error() == 0) return size_t{0};
          [[fallthrough]];
        default:
          if (cancelled()) return CancelledError("connection cancelled");
          return UnavailableError(StrCat("TLS read from ", peer(), ": ", OpenSslErrors()));
      }
    }
  }

  Status WriteAll(std::string_view data) override {
    while (!data.empty()) {
      if (cancelled()) return CancelledError("connection cancelled");
      int rc;
      int err;
      int len = static_cast<int>(std::min<size_t>(data.size(), 1 << 20));
      {
        std::lock_guard lock(ssl_mu_);
        ERR_clear_error();
        rc = SSL_write(ssl_, data.data(), len);
        err = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, rc);
      }
      if (rc > 0) {
        data.remove_prefix(static_cast<size_t>(rc));
        Touch();
        continue;
      }
      if (err == SSL_ERROR_WANT_WRITE) {
        RETURN_IF_ERROR(WaitFd(POLLOUT, std::nullopt));
      } else if (err == SSL_ERROR_WANT_READ) {
        RETURN_IF_ERROR(WaitFd(POLLIN, std::nullopt));
      } else {
        if (cancelled()) return CancelledError("connection cancelled");
        return UnavailableError(StrCat("TLS write to ", peer(), ": ", OpenSslErrors()));
      }
    }
    return OkStatus();
  }

 private:
  std::mutex ssl_mu_;
  SSL* ssl_;
  const bool server_;
};

StatusOr<std::pair<std::string, std::string>> SplitHostPort(std::string_view address) {
  std::string_view host;
  std::string_view port;
  if (!address.empty() && address.front() == '[') {
    size_t close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return InvalidArgumentError(StrCat("address ", address, " is not [host]:port"));
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) {
      return InvalidArgumentError(StrCat("address ", address, " is not host:port"));
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return InvalidArgumentError(
          StrCat("address ", address, ": write IPv6 addresses in brackets, [::1]:port"));
    }
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || value > 65535) {
    return InvalidArgumentError(StrCat("address ", address, ": invalid port"));
  }
  return std::pair(std::string(host), std::string(port));
}

}  // namespace

Transport::Transport(UniqueFd fd, std::string peer)
    : fd_(std::move(fd)), peer_(std::move(peer)), last_activity_ns_(NowNs()) {}

void Transport::Touch() { last_activity_ns_.store(NowNs(), std::memory_order_relaxed); }

Clock::time_point Transport::last_activity() const {
  return Clock::time_point(std::chrono::nanoseconds(last_activity_ns_.load()));
}

void Transport::Cancel() {
  if (cancelled_.exchange(true)) return;
  // Wakes every thread blocked in recv, send or poll on this socket; the fd
  // itself stays open until destruction so it cannot be reused meanwhile.
  ::shutdown(fd_.get(), SHUT_RDWR);
}

void Transport::Unread(std::string bytes) {
  if (bytes.empty()) return;
  pushback_ = std::move(bytes) + pushback_.substr(pushback_offset_);
  pushback_offset_ = 0;
}

StatusOr<size_t> Transport::Read(std::span<char> buf, std::optional<Clock::time_point> deadline) {
  if (cancelled()) return CancelledError("connection cancelled");
  if (pushback_offset_ < pushback_.size()) {
    size_t n = std::min(buf.size(), pushback_.size() - pushback_offset_);
    std::memcpy(buf.data(), pushback_.data() + pushback_offset_, n);
    pushback_offset_ += n;
    if (pushback_offset_ == pushback_.size()) {
      pushback_.clear();
      pushback_offset_ = 0;
    }
    return n;
  }
  StatusOr<size_t> n = ReadSome(buf, deadline);
  if (n.ok() && *n > 0) Touch();
  return n;
}

Status Transport::Write(std::string_view data) {
  if (cancelled()) return CancelledError("connection cancelled");
  return WriteAll(data);
}

Status Transport::WaitFd(short events, std::optional<Clock::time_point> deadline) {
  while (true) {
    if (cancelled()) return CancelledError("connection cancelled");
    int timeout_ms = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
      if (left.count() <= 0) return DeadlineExceededError(StrCat("timed out waiting for ", peer()));
      timeout_ms = static_cast<int>(std::min<int64_t>(left.count() + 1, 1 << 30));
    }
    pollfd p{fd_.get(), events, 0};
    int rc = ::poll(&p, 1, timeout_ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "poll");
    }
    if (rc > 0) return OkStatus();
  }
}

std::unique_ptr<Transport> MakeTcpTransport(UniqueFd fd, std::string peer) {
  return std::make_unique<TcpTransport>(std::move(fd), std::move(peer));
}

TlsContext::~TlsContext() { SSL_CTX_free(static_cast<SSL_CTX*>(ctx_)); }

StatusOr<std::shared_ptr<TlsContext>> TlsContext::ForServer(const std::string& cert_file,
                                                            const std::string& key_file) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return InternalError(StrCat("SSL_CTX_new: ", OpenSslErrors()));
  std::shared_ptr<TlsContext> out(new TlsContext(ctx, false));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return InvalidArgumentError(
        StrCat("loading TLS certificate ", cert_file, ": ", OpenSslErrors()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return InvalidArgumentError(StrCat("loading TLS key ", key_file, ": ", OpenSslErrors()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return InvalidArgumentError(
        StrCat("TLS key ", key_file, " does not match certificate ", cert_file));
  }
  return out;
}

StatusOr<std::shared_ptr<TlsContext>> TlsContext::ForClient(const std::string& ca_file) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return InternalError(StrCat("SSL_CTX_new: ", OpenSslErrors()));
  std::shared_ptr<TlsContext> out(new TlsContext(ctx, !ca_file.empty()));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
      return InvalidArgumentError(StrCat("loading CA bundle ", ca_file, ": ", OpenSslErrors()));
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return out;
}

namespace {
StatusOr<std::unique_ptr<Transport>> WrapTls(SSL_CTX* ctx, UniqueFd fd, std::string peer,
                                             bool server, const std::string& host, bool verify) {
  RETURN_IF_ERROR(SetNonBlocking(fd.get(), true));
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) return InternalError(StrCat("SSL_new: ", OpenSslErrors()));
  BIO* bio = BIO_new(SocketBioMethod());
  if (bio == nullptr) {
    SSL_free(ssl);
    return InternalError(StrCat("BIO_new: ", OpenSslErrors()));
  }
  // The BIO's user-data slot carries the descriptor's number for BioRead and
  // BioWrite; it is never dereferenced as a pointer.
  // NOLINTNEXTLINE(performance-no-int-to-ptr): a number, not an address
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd.get())));
  SSL_set_bio(ssl, bio, bio);
  if (!server) {
    in6_addr addr6;
    in_addr addr4;
    bool is_ip = inet_pton(AF_INET, host.c_str(), &addr4) == 1 ||
                 inet_pton(AF_INET6, host.c_str(), &addr6) == 1;
    if (!is_ip) SSL_set_tlsext_host_name(ssl, host.c_str());
    if (verify) {
      if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
      } else {
        SSL_set1_host(ssl, host.c_str());
      }
    }
  }
  return std::unique_ptr<Transport>(
      std::make_unique<TlsTransport>(std::move(fd), std::move(peer), ssl, server));
}
}  // namespace

StatusOr<std::unique_ptr<Transport>> TlsContext::WrapServer(UniqueFd fd, std::string peer) {
  return WrapTls(static_cast<SSL_CTX*>(ctx_), std::move(fd), std::move(peer), true, "", false);
}

StatusOr<std::unique_ptr<Transport>> TlsContext::WrapClient(UniqueFd fd, const std::string& host) {
  return WrapTls(static_cast<SSL_CTX*>(ctx_), std::move(fd), host, false, host, verify_);
}

void SetNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

StatusOr<Listener> ListenTcp(std::string_view address, int backlog) {
  ASSIGN_OR_RETURN(auto host_port, SplitHostPort(address));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const char* node = host_port.first.empty() ? nullptr : host_port.first.c_str();
  int rc = getaddrinfo(node, host_port.second.c_str(), &hints, &res);
  if (rc != 0) {
    return InvalidArgumentError(StrCat("resolving ", address, ": ", gai_strerror(rc)));
  }
  Status last = InvalidArgumentError(StrCat("no address to listen on for ", address));
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      last = ErrnoStatus(errno, "socket");
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      last = ErrnoStatus(errno, StrCat("bind ", address));
      continue;
    }
    if (::listen(fd.get(), backlog) != 0) {
      last = ErrnoStatus(errno, StrCat("listen ", address));
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    char buf[INET6_ADDRSTRLEN] = {};
    Listener out;
    if (ss.ss_family == AF_INET6) {
      auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
      inet_ntop(AF_INET6, &sa->sin6_addr, buf, sizeof(buf));
      out.port = ntohs(sa->sin6_port);
    } else {
      auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &sa->sin_addr, buf, sizeof(buf));
      out.port = ntohs(sa->sin_port);
    }
    out.host = buf;
    out.fd = std::move(fd);
    freeaddrinfo(res);
    return out;
  }
  freeaddrinfo(res);
  return last;
}

StatusOr<UniqueFd> ConnectTcp(const std::string& host, uint16_t port, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) return UnavailableError(StrCat("resolving ", host, ": ", gai_strerror(rc)));
  Status last = UnavailableError(StrCat("no address for ", host));
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd.valid()) {
      last = ErrnoStatus(errno, "socket");
      continue;
    }
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = ErrnoStatus(errno, StrCat("connect to ", host, ":", port));
        continue;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{fd.get(), POLLOUT, 0};
      int prc;
      do {
        prc = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
      } while (prc < 0 && errno == EINTR);
      if (prc == 0) {
        last = DeadlineExceededError(StrCat("connect to ", host, ":", port, ": timed out"));
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last = ErrnoStatus(err, StrCat("connect to ", host, ":", port));
        continue;
      }
    }
    freeaddrinfo(res);
    RETURN_IF_ERROR(SetNonBlocking(fd.get(), false));
    SetNoDelay(fd.get());
    return fd;
  }
  freeaddrinfo(res);
  return last;
}

StatusOr<std::string> ReadHttpHead(Transport& t, const HttpLimits& limits,
                                   Clock::time_point deadline) {
  std::string buf;
  char chunk[4096];
  while (true) {
    ASSIGN_OR_RETURN(size_t n, t.Read(chunk, deadline));
    if (n == 0) return UnavailableError("connection closed before the end of the HTTP head");
    size_t scan_from = buf.size() >= 3 ? buf.size() - 3 : 0;
    buf.append(chunk, n);
    size_t end = FindHeadEnd(std::string_view(buf).substr(scan_from));
    if (end != 0) {
      end += scan_from;
      t.Unread(buf.substr(end));
      buf.resize(end);
      if (buf.size() > limits.max_head_bytes) break;
      return buf;
    }
    if (buf.size() > limits.max_head_bytes) break;
  }
  return ResourceExhaustedError(
      StrCat("HTTP head is larger than ", limits.max_head_bytes, " bytes"));
}

}  // namespace berth::stream
