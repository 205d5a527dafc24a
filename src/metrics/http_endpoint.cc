#include "metrics/http_endpoint.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/fs.h"
#include "metrics/exposition.h"

namespace berth::metrics {

namespace {

MHD_Result Reply(MHD_Connection* conn, unsigned int code, const std::string& body,
                 std::string_view content_type) {
  MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()),
                                                    MHD_RESPMEM_MUST_COPY);
  if (r == nullptr) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, std::string(content_type).c_str());
  if (code == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, "Allow", "GET, HEAD");
  MHD_Result ret = MHD_queue_response(conn, code, r);
  MHD_destroy_response(r);
  return ret;
}

}  // namespace

StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(const std::string& ip, int port,
                                                            std::function<std::string()> render) {
  if (port < 0 || port > 65535) return InvalidArgumentError(StrCat("bad port ", port));
  sockaddr_storage ss{};
  socklen_t len = 0;
  bool v6 = ip.find(':') != std::string::npos;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr) != 1) {
      return InvalidArgumentError(StrCat("metrics address: \"", ip, "\" is not an IPv6 address"));
    }
    len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET, ip.c_str(), &a->sin_addr) != 1) {
      return InvalidArgumentError(StrCat("metrics address: \"", ip, "\" is not an IPv4 address"));
    }
    len = sizeof(sockaddr_in);
  }
  // The socket is made here rather than by libmicrohttpd so that the real
  // port of a ":0" address is known.
  UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "metrics endpoint: socket");
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (v6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  const std::string shown = v6 ? StrCat("[", ip, "]") : ip;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return ErrnoStatus(errno, StrCat("metrics endpoint: bind ", shown, ":", port));
  }
  if (::listen(fd.get(), 64) != 0) return ErrnoStatus(errno, "metrics endpoint: listen");
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen) != 0) {
    return ErrnoStatus(errno, "metrics endpoint: getsockname");
  }
  int real_port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                           : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

  std::unique_ptr<HttpEndpoint> ep(new HttpEndpoint());
  ep->render_ = std::move(render);
  ep->address_ = StrCat(shown, ":", real_port);
  auto handler = [](void* cls, MHD_Connection* conn, const char* url, const char* method,
                    const char*, const char*, size_t*, void**) -> MHD_Result {
    auto* self = static_cast<HttpEndpoint*>(cls);
    const bool get = std::strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    const bool head = std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (std::strcmp(url, "/metrics") != 0) {
      return Reply(conn, MHD_HTTP_NOT_FOUND, "not found: metrics are served at /metrics\n",
                   "text/plain; charset=utf-8");
    }
    if (!get && !head) {
      return Reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD are allowed\n",
                   "text/plain; charset=utf-8");
    }
    return Reply(conn, MHD_HTTP_OK, self->render_(), kContentType);
  };
  ep->daemon_ = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | (v6 ? MHD_USE_IPv6 : 0), 0, nullptr, nullptr,
      handler, ep.get(), MHD_OPTION_LISTEN_SOCKET, fd.get(), MHD_OPTION_CONNECTION_LIMIT, 32u,
      MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
  if (ep->daemon_ == nullptr) {
    return UnavailableError(StrCat("metrics endpoint: libmicrohttpd cannot serve ", ep->address_));
  }
  (void)fd.Release();  // the daemon owns and closes it
  return ep;
}

HttpEndpoint::~HttpEndpoint() {
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
}

}  // namespace berth::metrics
