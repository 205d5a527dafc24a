#include "support/fake_http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>

namespace berth::testing {

namespace {

constexpr size_t kMaxHeaderBytes = 64 * 1024;

std::string ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 307:
      return "Temporary Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

std::string UrlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() &&
               std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t start = 0;
  while (start < query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view part = query.substr(start, amp - start);
    if (!part.empty()) {
      size_t eq = part.find('=');
      if (eq == std::string_view::npos) {
        out.emplace_back(UrlDecode(part), "");
      } else {
        out.emplace_back(UrlDecode(part.substr(0, eq)), UrlDecode(part.substr(eq + 1)));
      }
    }
    start = amp + 1;
  }
  return out;
}

FakeHttpServer::FakeHttpServer(Handler handler) : handler_(std::move(handler)) {}

FakeHttpServer::~FakeHttpServer() { Stop(); }

Status FakeHttpServer::Start() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket for fake HTTP server");
  listen_fd_.Reset(fd);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "bind 127.0.0.1:0 for fake HTTP server");
  }
  if (::listen(fd, 16) != 0) return ErrnoStatus(errno, "listen for fake HTTP server");
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return ErrnoStatus(errno, "getsockname for fake HTTP server");
  }
  port_ = ntohs(addr.sin_port);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe for fake HTTP server");
  wake_read_.Reset(pipefd[0]);
  wake_write_.Reset(pipefd[1]);
  stopping_ = false;
  thread_ = std::thread([this] { Serve(); });
  return OkStatus();
}

void FakeHttpServer::Stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  char c = 'x';
  (void)!::write(wake_write_.get(), &c, 1);
  thread_.join();
  listen_fd_.Reset();
  wake_read_.Reset();
  wake_write_.Reset();
}

std::vector<RecordedRequest> FakeHttpServer::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

bool FakeHttpServer::WaitReadable(int fd) {
  while (!stopping_) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (fds[1].revents != 0) return false;
    if (fds[0].revents != 0) return true;
  }
  return false;
}

void FakeHttpServer::Serve() {
  while (WaitReadable(listen_fd_.get())) {
    int conn = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    UniqueFd owned(conn);
    HandleConnection(conn);
  }
}

void FakeHttpServer::HandleConnection(int fd) {
  std::string buf;
  size_t header_end = std::string::npos;
  char chunk[16384];
  while (header_end == std::string::npos) {
    if (buf.size() > kMaxHeaderBytes || !WaitReadable(fd)) return;
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return;
    buf.append(chunk, static_cast<size_t>(n));
    header_end = buf.find("\r\n\r\n");
  }
  RecordedRequest req;
  std::string_view head(buf.data(), header_end);
  size_t line_end = head.find("\r\n");
  std::string_view request_line = head.substr(0, line_end);
  size_t sp1 = request_line.find(' ');
  size_t sp2 = request_line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 <= sp1) return;
  req.method = std::string(request_line.substr(0, sp1));
  req.target = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
  size_t pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(pos, end - pos);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string name(line.substr(0, colon));
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      std::string& slot = req.headers[name];
      slot += slot.empty() ? std::string(value) : StrCat(", ", value);
    }
    pos = end + 2;
  }
  size_t content_length = 0;
  if (std::string cl = req.header("content-length"); !cl.empty()) {
    content_length = std::stoul(cl);
  }
  req.body = buf.substr(header_end + 4);
  while (req.body.size() < content_length) {
    if (!WaitReadable(fd)) return;
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return;
    req.body.append(chunk, static_cast<size_t>(n));
  }

  CannedResponse resp = handler_(req);
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(req);
  }
  if (resp.close_without_response) return;
  std::string out = StrCat("HTTP/1.1 ", resp.status, " ", ReasonPhrase(resp.status), "\r\n");
  for (const auto& [name, value] : resp.headers) out += StrCat(name, ": ", value, "\r\n");
  out += StrCat("Content-Length: ", resp.body.size(), "\r\nConnection: close\r\n\r\n");
  if (req.method != "HEAD") {
    size_t body_bytes =
        resp.stall_after_bytes >= 0
            ? std::min(resp.body.size(), static_cast<size_t>(resp.stall_after_bytes))
            : resp.body.size();
    out.append(resp.body, 0, body_bytes);
  }
  if (!SendAll(fd, out)) return;
  if (resp.stall_after_bytes >= 0) {
    // Stay silent until the client hangs up (readable with EOF) or the server stops.
    while (WaitReadable(fd)) {
      ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return;
    }
    return;
  }
  ::shutdown(fd, SHUT_WR);
  // Drain until the client closes, so it sees the whole response rather than a reset.
  pollfd pfd{fd, POLLIN, 0};
  for (int i = 0; i < 20 && ::poll(&pfd, 1, 50) > 0; ++i) {
    if (::recv(fd, chunk, sizeof(chunk), 0) <= 0) break;
  }
}

}  // namespace berth::testing
