#include "support/throttle_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace berth::testing {

namespace {

UniqueFd ConnectLoopback(const std::string& host, int port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fd;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return {};
  return fd;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Reads until the blank line ending an HTTP head; `rest` gets bytes read past it.
bool ReadHead(int fd, int wake_fd, std::string* head, std::string* rest) {
  std::string buf;
  char tmp[16384];
  for (;;) {
    size_t end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      *head = buf.substr(0, end + 4);
      *rest = buf.substr(end + 4);
      return true;
    }
    pollfd p[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    if (::poll(p, 2, 30'000) <= 0 || (p[1].revents & POLLIN) != 0) return false;
    ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
  }
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The value of a header in `head`, "" if absent.
std::string HeaderValue(const std::string& head, const std::string& lowercase_name) {
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos + 2 < head.size()) {
    size_t start = pos + 2;
    size_t end = head.find("\r\n", start);
    if (end == std::string::npos) break;
    std::string line = head.substr(start, end - start);
    size_t colon = line.find(':');
    if (colon != std::string::npos && Lower(line.substr(0, colon)) == lowercase_name) {
      std::string v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
    pos = end;
  }
  return "";
}

// The request head with any Connection header replaced by "Connection: close".
std::string CloseAfterward(const std::string& head) {
  std::string out;
  size_t start = 0;
  while (start < head.size()) {
    size_t end = head.find("\r\n", start);
    std::string line = head.substr(start, end - start);
    start = end + 2;
    if (line.empty()) break;
    if (Lower(line).rfind("connection:", 0) == 0) continue;
    out += line + "\r\n";
  }
  return out + "Connection: close\r\n\r\n";
}

}  // namespace

ThrottleProxy::ThrottleProxy(std::string upstream_host, int upstream_port, size_t chunk,
                             std::chrono::milliseconds period)
    : upstream_host_(std::move(upstream_host)),
      upstream_port_(upstream_port),
      chunk_(chunk),
      period_(period) {}

ThrottleProxy::~ThrottleProxy() { Stop(); }

Status ThrottleProxy::Start() {
  listen_fd_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listen_fd_.valid()) return ErrnoStatus(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "bind");
  }
  if (::listen(listen_fd_.get(), 64) != 0) return ErrnoStatus(errno, "listen");
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  wake_read_ = UniqueFd(pipefd[0]);
  wake_write_ = UniqueFd(pipefd[1]);
  acceptor_ = std::thread([this] { Accept(); });
  return OkStatus();
}

void ThrottleProxy::Stop() {
  if (!acceptor_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  char c = 1;
  (void)!::write(wake_write_.get(), &c, 1);
  acceptor_.join();
  std::vector<std::thread> relays;
  {
    std::lock_guard lock(mu_);
    relays.swap(relays_);
  }
  for (std::thread& t : relays) t.join();
}

std::vector<ThrottledTransfer> ThrottleProxy::transfers() const {
  std::lock_guard lock(mu_);
  return transfers_;
}

std::vector<ThrottledTransfer> ThrottleProxy::transfers(const std::string& path_part) const {
  std::lock_guard lock(mu_);
  std::vector<ThrottledTransfer> out;
  for (const ThrottledTransfer& t : transfers_) {
    if (t.path.find(path_part) != std::string::npos) out.push_back(t);
  }
  return out;
}

bool ThrottleProxy::WaitForFinishedTransfer(const std::string& path_part,
                                            std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    return std::any_of(transfers_.begin(), transfers_.end(), [&](const ThrottledTransfer& t) {
      return t.finished && t.path.find(path_part) != std::string::npos;
    });
  });
}

void ThrottleProxy::Accept() {
  for (;;) {
    pollfd p[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0 && errno != EINTR) return;
    if ((p[1].revents & POLLIN) != 0) return;
    if ((p[0].revents & POLLIN) == 0) continue;
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    relays_.emplace_back([this, fd] { Relay(fd); });
  }
}

void ThrottleProxy::Relay(int raw_client_fd) {
  UniqueFd client(raw_client_fd);
  std::string head, rest;
  if (!ReadHead(client.get(), wake_read_.get(), &head, &rest)) return;
  std::string request_line = head.substr(0, head.find("\r\n"));
  std::string method = request_line.substr(0, request_line.find(' '));
  size_t path_start = request_line.find(' ') + 1;
  std::string path = request_line.substr(path_start, request_line.rfind(' ') - path_start);
  UniqueFd upstream = ConnectLoopback(upstream_host_, upstream_port_);
  if (!upstream.valid()) return;
  std::string forwarded = CloseAfterward(head) + rest;
  if (!WriteAll(upstream.get(), forwarded.data(), forwarded.size())) return;

  std::string response_head, body_start;
  if (!ReadHead(upstream.get(), wake_read_.get(), &response_head, &body_start)) return;
  // Every blob download is recorded, trickled or not.
  const bool blob = method == "GET" && path.find("/blobs/") != std::string::npos &&
                    response_head.rfind("HTTP/1.1 2", 0) == 0;
  const bool throttled = blob && throttled_.load();
  if (!WriteAll(client.get(), response_head.data(), response_head.size())) return;

  size_t index = 0;
  if (blob) {
    std::lock_guard lock(mu_);
    ThrottledTransfer t;
    t.path = path;
    t.throttled = throttled;
    std::string len = HeaderValue(response_head, "content-length");
    t.body_bytes = len.empty() ? 0 : std::stoull(len);
    t.started = std::chrono::steady_clock::now();
    transfers_.push_back(t);
    index = transfers_.size() - 1;
  }
  std::string pending = std::move(body_start);
  bool upstream_done = false;
  bool client_closed = false;
  uint64_t relayed = 0;
  char tmp[65536];
  for (;;) {
    // Fill `pending` with at least one chunk (or everything, unthrottled).
    while (!upstream_done && (!throttled || pending.size() < chunk_)) {
      ssize_t n = ::recv(upstream.get(), tmp, sizeof(tmp), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        upstream_done = true;
        break;
      }
      pending.append(tmp, static_cast<size_t>(n));
      if (!throttled) break;
    }
    if (pending.empty() && upstream_done) break;
    size_t n = throttled ? std::min(chunk_, pending.size()) : pending.size();
    if (!WriteAll(client.get(), pending.data(), n)) {
      client_closed = true;
      break;
    }
    relayed += n;
    pending.erase(0, n);
    if (!throttled) continue;
    {
      std::lock_guard lock(mu_);
      transfers_[index].relayed_bytes = relayed;
    }
    // Wait one period, watching for the client hanging up (or the proxy stopping).
    pollfd p[2] = {{client.get(), POLLIN | POLLRDHUP, 0}, {wake_read_.get(), POLLIN, 0}};
    int r = ::poll(p, 2, static_cast<int>(period_.count()));
    if (r > 0 && (p[1].revents & POLLIN) != 0) break;
    if (r > 0 && (p[0].revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) != 0) {
      ssize_t got = ::recv(client.get(), tmp, sizeof(tmp), MSG_DONTWAIT);
      if (got == 0 || (got < 0 && errno != EAGAIN)) {  // hung up, or an error
        client_closed = true;
        break;
      }
    }
  }
  if (blob) {
    std::lock_guard lock(mu_);
    ThrottledTransfer& t = transfers_[index];
    t.relayed_bytes = relayed;
    t.client_closed = client_closed && relayed < t.body_bytes;
    t.finished = true;
    t.ended = std::chrono::steady_clock::now();
    cv_.notify_all();
  }
}

}  // namespace berth::testing
