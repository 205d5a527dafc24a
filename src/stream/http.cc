#include "stream/http.h"

#include <charconv>
#include <span>

namespace berth::stream {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// RFC 9110 tchar.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// Field values: visible characters, spaces, tabs and obs-text; no other controls.
bool IsFieldValue(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u == '\t') continue;
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Status Malformed(std::string_view what) {
  return InvalidArgumentError(StrCat("malformed HTTP head: ", what));
}

// Splits `head` into lines at CRLF; the head must end with an empty line.
StatusOr<std::vector<std::string_view>> SplitLines(std::string_view head,
                                                   const HttpLimits& limits) {
  if (head.size() > limits.max_head_bytes) {
    return ResourceExhaustedError(
        StrCat("HTTP head is larger than ", limits.max_head_bytes, " bytes"));
  }
  std::vector<std::string_view> lines;
  while (true) {
    size_t eol = head.find("\r\n");
    if (eol == std::string_view::npos) return Malformed("missing empty line at the end");
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    if (line.empty()) break;
    if (line.find('\n') != std::string_view::npos || line.find('\r') != std::string_view::npos) {
      return Malformed("bare CR or LF in a line");
    }
    lines.push_back(line);
    if (lines.size() > limits.max_headers + 1) {
      return ResourceExhaustedError(
          StrCat("HTTP head has more than ", limits.max_headers, " header fields"));
    }
  }
  if (!head.empty()) return Malformed("data after the empty line");
  if (lines.empty()) return Malformed("empty head");
  return lines;
}

Status ParseHeaderLines(std::span<const std::string_view> lines, HttpHeaders& out) {
  for (std::string_view line : lines) {
    if (line.front() == ' ' || line.front() == '\t') {
      return Malformed("obsolete line folding in a header field");
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Malformed("header line without ':'");
    std::string_view name = line.substr(0, colon);
    if (!IsToken(name)) return Malformed("invalid header field name");
    std::string_view value = Trim(line.substr(colon + 1));
    if (!IsFieldValue(value)) return Malformed("control character in a header field value");
    out.Add(std::string(name), std::string(value));
  }
  return OkStatus();
}

StatusOr<int> ParseHttpVersion(std::string_view v) {
  if (v == "HTTP/1.1") return 1;
  if (v == "HTTP/1.0") return 0;
  return Malformed(StrCat("unsupported HTTP version"));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

void HttpHeaders::Add(std::string name, std::string value) {
  fields_.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string_view> HttpHeaders::Get(std::string_view name) const {
  for (const auto& [n, v] : fields_) {
    if (EqualsIgnoreCase(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::vector<std::string_view> HttpHeaders::GetAll(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [n, v] : fields_) {
    if (EqualsIgnoreCase(n, name)) out.emplace_back(v);
  }
  return out;
}

std::vector<std::string> HttpHeaders::Tokens(std::string_view name) const {
  std::vector<std::string> out;
  for (std::string_view v : GetAll(name)) {
    while (!v.empty()) {
      size_t comma = v.find(',');
      std::string_view item = Trim(v.substr(0, comma));
      if (!item.empty()) out.emplace_back(item);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return out;
}

bool HttpHeaders::HasToken(std::string_view name, std::string_view token) const {
  for (const std::string& t : Tokens(name)) {
    if (EqualsIgnoreCase(t, token)) return true;
  }
  return false;
}

size_t FindHeadEnd(std::string_view buf) {
  size_t pos = buf.find("\r\n\r\n");
  return pos == std::string_view::npos ? 0 : pos + 4;
}

StatusOr<HttpRequest> ParseRequestHead(std::string_view head, const HttpLimits& limits) {
  ASSIGN_OR_RETURN(std::vector<std::string_view> lines, SplitLines(head, limits));
  std::string_view request_line = lines.front();
  size_t sp1 = request_line.find(' ');
  if (sp1 == std::string_view::npos) return Malformed("request line without target");
  size_t sp2 = request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return Malformed("request line without version");
  HttpRequest req;
  std::string_view method = request_line.substr(0, sp1);
  std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = request_line.substr(sp2 + 1);
  if (!IsToken(method)) return Malformed("invalid method");
  if (target.empty() || target.front() != '/') return Malformed("request target is not a path");
  for (char c : target) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return Malformed("invalid character in the request target");
  }
  ASSIGN_OR_RETURN(req.minor_version, ParseHttpVersion(version));
  req.method = std::string(method);
  req.target = std::string(target);
  size_t q = target.find('?');
  req.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
  size_t hash = req.query.find('#');
  if (hash != std::string::npos) req.query.resize(hash);
  RETURN_IF_ERROR(ParseHeaderLines(std::span(lines).subspan(1), req.headers));
  return req;
}

StatusOr<HttpResponseHead> ParseResponseHead(std::string_view head, const HttpLimits& limits) {
  ASSIGN_OR_RETURN(std::vector<std::string_view> lines, SplitLines(head, limits));
  std::string_view status_line = lines.front();
  size_t sp1 = status_line.find(' ');
  if (sp1 == std::string_view::npos) return Malformed("status line without status code");
  RETURN_IF_ERROR(ParseHttpVersion(status_line.substr(0, sp1)).status());
  std::string_view rest = status_line.substr(sp1 + 1);
  std::string_view code = rest.substr(0, rest.find(' '));
  HttpResponseHead resp;
  if (code.size() != 3) return Malformed("status code is not three digits");
  auto [ptr, ec] = std::from_chars(code.data(), code.data() + code.size(), resp.status);
  if (ec != std::errc() || ptr != code.data() + code.size() || resp.status < 100) {
    return Malformed("invalid status code");
  }
  if (rest.size() > 4) resp.reason = std::string(rest.substr(4));
  RETURN_IF_ERROR(ParseHeaderLines(std::span(lines).subspan(1), resp.headers));
  return resp;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 426:
      return "Upgrade Required";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

std::string FormatResponse(int status, std::string_view reason,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           std::string_view body) {
  std::string out = StrCat("HTTP/1.1 ", status, " ", reason, "\r\n");
  for (const auto& [n, v] : headers) out += StrCat(n, ": ", v, "\r\n");
  if (status != 101) {
    out += "Content-Type: text/plain; charset=utf-8\r\n";
    out += "X-Content-Type-Options: nosniff\r\n";
    out += StrCat("Content-Length: ", body.size(), "\r\n");
  }
  out += "\r\n";
  out += body;
  return out;
}

StatusOr<std::string> PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) {
        return InvalidArgumentError("truncated percent escape");
      }
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return InvalidArgumentError("invalid percent escape");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    ASSIGN_OR_RETURN(std::string key, PercentDecode(item.substr(0, eq), true));
    std::string value;
    if (eq != std::string_view::npos) {
      ASSIGN_OR_RETURN(value, PercentDecode(item.substr(eq + 1), true));
    }
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

StatusOr<Url> ParseUrl(std::string_view url) {
  Url out;
  size_t sep = url.find("://");
  if (sep == std::string_view::npos)
    return InvalidArgumentError(StrCat("URL ", url, " has no scheme"));
  std::string scheme;
  for (char c : url.substr(0, sep)) scheme.push_back(Lower(c));
  if (scheme != "http" && scheme != "https") {
    return InvalidArgumentError(StrCat("URL ", url, ": scheme must be http or https"));
  }
  out.scheme = scheme;
  std::string_view rest = url.substr(sep + 3);
  size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  std::string_view target = slash == std::string_view::npos ? "" : rest.substr(slash);
  size_t hash = target.find('#');
  if (hash != std::string_view::npos) target = target.substr(0, hash);
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgumentError(StrCat("URL ", url, ": user information is not supported"));
  }
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgumentError(StrCat("URL ", url, ": unterminated IPv6 address"));
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgumentError(StrCat("URL ", url, ": bad authority"));
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
  }
  if (host.empty()) return InvalidArgumentError(StrCat("URL ", url, " has no host"));
  out.host = std::string(host);
  out.port = scheme == "https" ? 443 : 80;
  if (!port.empty()) {
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || ptr != port.data() + port.size() || value == 0 || value > 65535) {
      return InvalidArgumentError(StrCat("URL ", url, ": invalid port"));
    }
    out.port = static_cast<uint16_t>(value);
  }
  out.target = target.empty() ? "/" : std::string(target);
  if (out.target.front() == '?') out.target = StrCat("/", out.target);
  return out;
}

}  // namespace berth::stream
