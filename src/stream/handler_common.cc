#include "stream/handlers.h"
#include "stream/websocket.h"

namespace berth::stream {

void RespondAndClose(Transport& t, int status, std::string_view body,
                     const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string text(body);
  if (!text.empty() && text.back() != '\n') text.push_back('\n');
  auto out_headers = headers;
  out_headers.emplace_back("Connection", "close");
  if (!t.Write(FormatResponse(status, ReasonPhrase(status), out_headers, text)).ok()) return;
  t.ShutdownWrite();
  // Read what the client still sends until it closes, so that closing our
  // socket with unread data does not reset the connection before the client
  // read the response.
  auto deadline = Clock::now() + std::chrono::seconds(1);
  char buf[4096];
  while (true) {
    StatusOr<size_t> n = t.Read(buf, deadline);
    if (!n.ok() || *n == 0) break;
  }
}

bool IsWebSocketRequest(const HttpRequest& req) {
  return req.headers.HasToken("Connection", "upgrade") &&
         req.headers.HasToken("Upgrade", "websocket");
}

bool IsSpdyUpgradeRequest(const HttpRequest& req) {
  return req.headers.HasToken("Connection", "upgrade") &&
         req.headers.HasToken("Upgrade", "SPDY/3.1");
}

bool CheckWebSocketHandshake(Transport& t, const HttpRequest& req) {
  if (req.method != "GET") {
    RespondAndClose(t, 405, "WebSocket upgrade requires GET", {{"Allow", "GET"}});
    return false;
  }
  if (req.headers.Get("Sec-WebSocket-Version").value_or("") != "13") {
    RespondAndClose(t, 400, "unsupported Sec-WebSocket-Version (13 is supported)",
                    {{"Sec-WebSocket-Version", "13"}});
    return false;
  }
  if (!ws::IsValidKey(req.headers.Get("Sec-WebSocket-Key").value_or(""))) {
    RespondAndClose(t, 400, "missing or invalid Sec-WebSocket-Key");
    return false;
  }
  return true;
}

std::string WebSocketAcceptResponse(const HttpRequest& req, std::string_view protocol) {
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Accept", ws::AcceptKey(req.headers.Get("Sec-WebSocket-Key").value_or(""))}};
  if (!protocol.empty()) headers.emplace_back("Sec-WebSocket-Protocol", std::string(protocol));
  return FormatResponse(101, ReasonPhrase(101), headers);
}

}  // namespace berth::stream
