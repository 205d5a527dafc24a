// The HTTP endpoint that serves /metrics (GET or HEAD) in the Prometheus
// text format, on libmicrohttpd's own thread. Anything else is 404 (other
// paths) or 405 (other methods).
//
// Thread-safe. The render function is called on the endpoint's thread, once
// per scrape; it must be thread-safe and outlive the endpoint.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"

struct MHD_Daemon;

namespace berth::metrics {

class HttpEndpoint {
 public:
  // Listens on `ip` (an IPv4 or IPv6 literal) and `port` (0: any free port).
  static StatusOr<std::unique_ptr<HttpEndpoint>> Start(const std::string& ip, int port,
                                                       std::function<std::string()> render);
  ~HttpEndpoint();  // stops serving and closes the socket
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // Where it listens, "127.0.0.1:9153" or "[::1]:9153", with the real port.
  const std::string& address() const { return address_; }

 private:
  HttpEndpoint() = default;

  std::function<std::string()> render_;
  MHD_Daemon* daemon_ = nullptr;
  std::string address_;
};

}  // namespace berth::metrics
