#include "stream/stream_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "stream/handlers.h"
#include "stream/http.h"

namespace berth::stream {
namespace {

std::string PeerName(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET6) {
    const auto* sa = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &sa->sin6_addr, buf, sizeof(buf));
    return StrCat("[", buf, "]:", ntohs(sa->sin6_port));
  }
  const auto* sa = reinterpret_cast<const sockaddr_in*>(&ss);
  inet_ntop(AF_INET, &sa->sin_addr, buf, sizeof(buf));
  return StrCat(buf, ":", ntohs(sa->sin_port));
}

Status ValidateStdio(bool in, bool out, bool err, bool tty) {
  if (tty && err) {
    // With a terminal the process has one output stream; the protocols have
    // no way to multiplex stderr onto it.
    return InvalidArgumentError("tty and stderr cannot both be true");
  }
  if (!in && !out && !err) {
    return InvalidArgumentError("one of stdin, stdout, or stderr must be set");
  }
  return OkStatus();
}

}  // namespace

StatusOr<std::unique_ptr<StreamServer>> StreamServer::Start(StreamServerOptions options,
                                                            Runtime* runtime) {
  if (runtime == nullptr) return InvalidArgumentError("streaming server needs a runtime");
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return InvalidArgumentError(
        "streaming server TLS needs both a certificate and a key file (or neither)");
  }
  if (options.token_ttl.count() <= 0 || options.max_tokens == 0) {
    return InvalidArgumentError("streaming token TTL and maximum must be positive");
  }
  if (options.idle_timeout.count() <= 0 || options.stream_creation_timeout.count() <= 0 ||
      options.request_timeout.count() <= 0 || options.max_connections == 0) {
    return InvalidArgumentError("streaming server timeouts and connection limit must be positive");
  }
  std::shared_ptr<TlsContext> tls;
  if (!options.tls_cert_file.empty()) {
    ASSIGN_OR_RETURN(tls, TlsContext::ForServer(options.tls_cert_file, options.tls_key_file));
  }
  StatusOr<Listener> listener = ListenTcp(options.address, 128);
  if (!listener.ok()) return Annotate(listener.status(), "streaming server");
  std::unique_ptr<StreamServer> server(
      new StreamServer(std::move(options), runtime, std::move(*listener), std::move(tls)));
  server->wake_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!server->wake_fd_.valid()) return ErrnoStatus(errno, "eventfd");
  server->accept_thread_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  server->housekeeping_thread_ = std::thread([s = server.get()] { s->HousekeepingLoop(); });
  spdlog::info("event=stream_server_listening url={} tls={}", server->base_url_,
               server->tls_ != nullptr);
  return server;
}

StreamServer::StreamServer(StreamServerOptions options, Runtime* runtime, Listener listener,
                           std::shared_ptr<TlsContext> tls)
    : options_(std::move(options)),
      runtime_(runtime),
      listener_(std::move(listener)),
      tls_(std::move(tls)),
      tokens_(options_.max_tokens, options_.token_ttl) {
  std::string host = listener_.host.find(':') != std::string::npos
                         ? StrCat("[", listener_.host, "]")
                         : listener_.host;
  base_url_ = StrCat(tls_ ? "https" : "http", "://", host, ":", listener_.port);
}

StreamServer::~StreamServer() { Stop(); }

std::string StreamServer::base_url() const { return base_url_; }

size_t StreamServer::active_connections() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [id, c] : connections_) n += c.done ? 0 : 1;
  return n;
}

StatusOr<std::string> StreamServer::ExecUrl(const ExecRequest& req) {
  if (req.container_id.empty()) return InvalidArgumentError("exec needs a container id");
  if (req.cmd.empty()) return InvalidArgumentError("exec needs a command");
  RETURN_IF_ERROR(ValidateStdio(req.stdin, req.stdout, req.stderr, req.tty));
  {
    std::lock_guard lock(mu_);
    if (stopping_) return UnavailableError("streaming server is stopping");
  }
  ASSIGN_OR_RETURN(std::string token, tokens_.Insert(req));
  return StrCat(base_url_, "/exec/", token);
}

StatusOr<std::string> StreamServer::AttachUrl(const AttachRequest& req) {
  if (req.container_id.empty()) return InvalidArgumentError("attach needs a container id");
  RETURN_IF_ERROR(ValidateStdio(req.stdin, req.stdout, req.stderr, req.tty));
  {
    std::lock_guard lock(mu_);
    if (stopping_) return UnavailableError("streaming server is stopping");
  }
  ASSIGN_OR_RETURN(std::string token, tokens_.Insert(req));
  return StrCat(base_url_, "/attach/", token);
}

StatusOr<std::string> StreamServer::PortForwardUrl(const PortForwardRequest& req) {
  if (req.pod_sandbox_id.empty()) return InvalidArgumentError("port-forward needs a pod id");
  for (int32_t port : req.ports) {
    if (port < 1 || port > 65535) {
      return InvalidArgumentError(StrCat("port ", port, " is not from 1 to 65535"));
    }
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) return UnavailableError("streaming server is stopping");
  }
  ASSIGN_OR_RETURN(std::string token, tokens_.Insert(req));
  return StrCat(base_url_, "/portforward/", token);
}

void StreamServer::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listener_.fd.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    int rc = ::poll(fds, 2, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      spdlog::error("event=stream_server_poll_failed error=\"{}\"", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    UniqueFd fd(
        ::accept4(listener_.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
      // EMFILE and friends: back off instead of spinning.
      spdlog::warn("event=stream_server_accept_failed error=\"{}\"", std::strerror(errno));
      ::poll(nullptr, 0, 100);
      continue;
    }
    SetNoDelay(fd.get());
    std::string peer = PeerName(ss);
    std::lock_guard lock(mu_);
    if (stopping_) return;
    size_t active = 0;
    for (const auto& [id, c] : connections_) active += c.done ? 0 : 1;
    if (active >= options_.max_connections) {
      // Best effort and without blocking: the accept loop must not stall.
      std::string resp = FormatResponse(503, ReasonPhrase(503), {{"Connection", "close"}},
                                        "streaming server is at its connection limit\n");
      (void)::send(fd.get(), resp.data(), resp.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      spdlog::warn("event=stream_server_connection_limit peer={} limit={}", peer,
                   options_.max_connections);
      continue;
    }
    uint64_t id = next_id_++;
    Connection& c = connections_[id];
    c.thread = std::thread([this, id, fd = std::move(fd), peer]() mutable {
      Serve(id, std::move(fd), std::move(peer));
    });
  }
}

void StreamServer::SetTransport(uint64_t id, Transport* t) {
  std::lock_guard lock(mu_);
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  it->second.transport = t;
  if (t != nullptr && stopping_) t->Cancel();
  if (t == nullptr) {
    it->second.done = true;
    cv_.notify_all();
  }
}

void StreamServer::Serve(uint64_t id, UniqueFd fd, std::string peer) {
  std::unique_ptr<Transport> t;
  if (tls_) {
    StatusOr<std::unique_ptr<Transport>> wrapped = tls_->WrapServer(std::move(fd), peer);
    if (!wrapped.ok()) {
      spdlog::warn("event=stream_tls_failed peer={} error=\"{}\"", peer,
                   wrapped.status().message());
      SetTransport(id, nullptr);
      return;
    }
    t = std::move(*wrapped);
  } else {
    t = MakeTcpTransport(std::move(fd), peer);
  }
  SetTransport(id, t.get());
  auto deadline = Clock::now() + options_.request_timeout;
  Status handshake = t->Handshake(deadline);
  if (handshake.ok()) {
    Dispatch(*t);
  } else {
    spdlog::info("event=stream_tls_handshake_failed peer={} error=\"{}\"", peer,
                 handshake.message());
  }
  // Unregister before the transport is destroyed: Stop and the idle check
  // only touch registered transports.
  SetTransport(id, nullptr);
}

void StreamServer::Dispatch(Transport& t) {
  HttpLimits limits;
  StatusOr<std::string> head = ReadHttpHead(t, limits, Clock::now() + options_.request_timeout);
  if (!head.ok()) {
    if (head.status().code() == StatusCode::kDeadlineExceeded) {
      RespondAndClose(t, 408, "timed out reading the request");
    } else if (head.status().code() == StatusCode::kResourceExhausted) {
      RespondAndClose(t, 431, head.status().message());
    }
    return;
  }
  StatusOr<HttpRequest> req = ParseRequestHead(*head, limits);
  if (!req.ok()) {
    RespondAndClose(t, req.status().code() == StatusCode::kResourceExhausted ? 431 : 400,
                    req.status().message());
    return;
  }
  std::string_view path = req->path;
  std::string_view kind;
  for (std::string_view prefix : {"/exec/", "/attach/", "/portforward/"}) {
    if (path.starts_with(prefix)) {
      kind = prefix.substr(1, prefix.size() - 2);
      path.remove_prefix(prefix.size());
      break;
    }
  }
  if (kind.empty() || path.empty() || path.find('/') != std::string_view::npos) {
    RespondAndClose(t, 404, "404 page not found");
    return;
  }
  if (req->method != "GET" && req->method != "POST") {
    RespondAndClose(t, 405, "method not allowed", {{"Allow", "GET, POST"}});
    return;
  }
  // Consumed whatever happens next: a token is good for one attempt.
  std::optional<CachedRequest> cached = tokens_.Consume(std::string(path));
  bool matches = cached.has_value() &&
                 ((kind == "exec" && std::holds_alternative<ExecRequest>(*cached)) ||
                  (kind == "attach" && std::holds_alternative<AttachRequest>(*cached)) ||
                  (kind == "portforward" && std::holds_alternative<PortForwardRequest>(*cached)));
  if (!matches) {
    spdlog::info("event=stream_unknown_token kind={} peer={}", kind, t.peer());
    RespondAndClose(t, 404, "404 page not found");
    return;
  }
  HandlerOptions hopts;
  hopts.stream_creation_timeout = options_.stream_creation_timeout;
  if (auto* pf = std::get_if<PortForwardRequest>(&*cached)) {
    ServePortForward(t, *req, *pf, *runtime_, hopts);
    return;
  }
  CommandTarget target;
  if (auto* ex = std::get_if<ExecRequest>(&*cached)) {
    target.exec = std::move(*ex);
  } else {
    target.attach = true;
    target.attach_request = std::get<AttachRequest>(std::move(*cached));
  }
  ServeRemoteCommand(t, *req, target, *runtime_, hopts);
}

void StreamServer::HousekeepingLoop() {
  auto tick = std::clamp<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.idle_timeout) / 4,
      std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, tick, [&] { return stopping_; });
    std::vector<std::thread> finished;
    auto now = Clock::now();
    for (auto it = connections_.begin(); it != connections_.end();) {
      Connection& c = it->second;
      if (c.done) {
        finished.push_back(std::move(c.thread));
        it = connections_.erase(it);
        continue;
      }
      if (c.transport != nullptr && !c.transport->cancelled() &&
          now - c.transport->last_activity() > options_.idle_timeout) {
        spdlog::info("event=stream_idle_timeout peer={} idle_timeout_s={}", c.transport->peer(),
                     options_.idle_timeout.count());
        c.transport->Cancel();
      }
      ++it;
    }
    lock.unlock();
    for (std::thread& th : finished) th.join();
    lock.lock();
  }
}

void StreamServer::Stop() {
  std::lock_guard stop_lock(stop_mu_);
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  uint64_t one = 1;
  (void)::write(wake_fd_.get(), &one, sizeof(one));
  if (accept_thread_.joinable()) accept_thread_.join();
  if (housekeeping_thread_.joinable()) housekeeping_thread_.join();
  std::unique_lock lock(mu_);
  listener_.fd.Reset();
  for (auto& [id, c] : connections_) {
    if (c.transport != nullptr) c.transport->Cancel();
  }
  cv_.wait(lock, [&] {
    for (const auto& [id, c] : connections_) {
      if (!c.done) return false;
    }
    return true;
  });
  std::vector<std::thread> threads;
  for (auto& [id, c] : connections_) threads.push_back(std::move(c.thread));
  connections_.clear();
  stopped_ = true;
  lock.unlock();
  for (std::thread& th : threads) th.join();
  spdlog::info("event=stream_server_stopped url={}", base_url_);
}

}  // namespace berth::stream
