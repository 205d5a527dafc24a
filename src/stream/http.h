// The little of HTTP/1.1 the streaming server and its client need: parsing a
// request or response head (with limits, since it is outside input),
// formatting a response, query strings and URLs. Bodies are never read: every
// request the streaming server serves is an Upgrade. Pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace berth::stream {

// Header fields in arrival order; names compare case-insensitively.
class HttpHeaders {
 public:
  void Add(std::string name, std::string value);
  // The first value of `name`.
  std::optional<std::string_view> Get(std::string_view name) const;
  std::vector<std::string_view> GetAll(std::string_view name) const;
  // All values of `name` split at commas, each trimmed of spaces and tabs,
  // empty elements dropped (the list syntax of Connection, Upgrade,
  // Sec-WebSocket-Protocol and X-Stream-Protocol-Version).
  std::vector<std::string> Tokens(std::string_view name) const;
  // Whether Tokens(name) holds `token`, compared case-insensitively.
  bool HasToken(std::string_view name, std::string_view token) const;
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }
  size_t size() const { return fields_.size(); }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

struct HttpLimits {
  size_t max_head_bytes = 16 * 1024;  // request or status line plus all header lines
  size_t max_headers = 100;
};

struct HttpRequest {
  std::string method;
  std::string target;  // as sent, e.g. "/exec/abc?x=1"
  std::string path;    // target up to '?', not decoded
  std::string query;   // after '?', not decoded
  int minor_version = 1;
  HttpHeaders headers;
};

struct HttpResponseHead {
  int status = 0;
  std::string reason;
  HttpHeaders headers;
};

// Length of the head at the start of `buf` including its terminating empty
// line ("\r\n\r\n"), or 0 when `buf` does not hold a whole head yet.
size_t FindHeadEnd(std::string_view buf);

// Parses a request head (request line and header lines, ending with an empty
// line). Errors: INVALID_ARGUMENT for malformed input (answered 400),
// RESOURCE_EXHAUSTED when over `limits` (answered 431).
StatusOr<HttpRequest> ParseRequestHead(std::string_view head, const HttpLimits& limits);
// Same for a response head (status line and header lines).
StatusOr<HttpResponseHead> ParseResponseHead(std::string_view head, const HttpLimits& limits);

// "HTTP/1.1 <status> <reason>" plus `headers`; with a body, Content-Type
// text/plain and Content-Length are added (a 101 gets neither).
std::string FormatResponse(int status, std::string_view reason,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           std::string_view body = {});
// The standard reason phrase of the status codes the server uses.
std::string_view ReasonPhrase(int status);

// Decodes %XX escapes (and '+' as space when `plus_is_space`); a malformed
// escape is INVALID_ARGUMENT.
StatusOr<std::string> PercentDecode(std::string_view s, bool plus_is_space);
// "a=1&b=2&a=3" -> {a,1},{b,2},{a,3}, decoded; a key without '=' has an empty value.
StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view query);

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // without brackets for IPv6
  uint16_t port = 0;   // the scheme's default when the URL names none
  std::string target;  // path and query, at least "/"
};
// Parses an absolute http or https URL (no user info, no fragment).
StatusOr<Url> ParseUrl(std::string_view url);

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace berth::stream
