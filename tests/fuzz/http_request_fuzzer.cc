// HTTP/1.1 request heads as a client sends them to the streaming server (and
// response heads and URLs as the client library parses them).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "stream/http.h"

using namespace berth::stream;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  HttpLimits limits;
  limits.max_head_bytes = 4096;
  limits.max_headers = 32;
  size_t end = FindHeadEnd(in);
  std::string_view head = end != 0 ? in.substr(0, end) : in;
  auto req = ParseRequestHead(head, limits);
  if (req.ok()) {
    (void)req->headers.Tokens("Connection");
    (void)req->headers.HasToken("Upgrade", "websocket");
    (void)req->headers.Get("Sec-WebSocket-Key");
    (void)ParseQuery(req->query);
  }
  auto resp = ParseResponseHead(head, limits);
  if (resp.ok()) (void)resp->headers.Tokens("Sec-WebSocket-Protocol");
  (void)ParseUrl(in.substr(0, 512));
  (void)PercentDecode(in.substr(0, 512), true);
  return 0;
}
