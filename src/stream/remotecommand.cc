#include "stream/remotecommand.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "stream/http.h"

namespace berth::stream::remotecommand {
namespace {

using ordered_json = nlohmann::ordered_json;

constexpr size_t kMaxResizeObject = 4096;

// A top-level JSON value's extent in `buf` starting at `start` (which holds a
// non-space character): its length, or 0 while incomplete. Only objects and
// arrays can be incomplete; scalars are taken up to the next delimiter.
size_t JsonValueLength(std::string_view buf) {
  int depth = 0;
  bool in_string = false;
  bool escape = false;
  for (size_t i = 0; i < buf.size(); ++i) {
    char c = buf[i];
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
      case '[':
        ++depth;
        break;
      case '}':
      case ']':
        if (--depth == 0) return i + 1;
        if (depth < 0) return i + 1;  // let the parser reject it
        break;
      default:
        if (depth == 0) return i + 1;  // a scalar at top level: rejected by the caller
        break;
    }
  }
  return 0;
}

}  // namespace

const std::vector<Protocol>& SpdyRemoteCommandProtocols() {
  static const std::vector<Protocol> protocols = {
      {kV4, 4, false}, {kV3, 3, false}, {kV2, 2, false}, {kV1, 1, false}};
  return protocols;
}

const std::vector<Protocol>& WebSocketRemoteCommandProtocols() {
  static const std::vector<Protocol> protocols = {{kV5, 5, false},
                                                  {kV4, 4, false},
                                                  {kBase64V4, 4, true},
                                                  {kV1, 1, false},
                                                  {kBase64V1, 1, true}};
  return protocols;
}

const std::vector<Protocol>& WebSocketPortForwardProtocols() {
  static const std::vector<Protocol> protocols = {
      {kV4, 4, false}, {kBase64V4, 4, true}, {kPortForwardV1, 1, false}};
  return protocols;
}

std::optional<Protocol> Negotiate(const std::vector<std::string>& offered,
                                  const std::vector<Protocol>& supported, bool empty_ok) {
  if (offered.empty()) {
    if (empty_ok) return Protocol{"", 1, false};
    return std::nullopt;
  }
  for (const std::string& o : offered) {
    for (const Protocol& p : supported) {
      if (o == p.name) return p;
    }
  }
  return std::nullopt;
}

std::string SuccessStatus() {
  ordered_json j;
  j["metadata"] = ordered_json::object();
  j["status"] = "Success";
  return j.dump();
}

std::string NonZeroExitStatus(int exit_code, std::string_view message) {
  ordered_json j;
  j["metadata"] = ordered_json::object();
  j["status"] = "Failure";
  j["message"] = std::string(message);
  j["reason"] = "NonZeroExitCode";
  j["details"]["causes"] = ordered_json::array(
      {ordered_json{{"reason", "ExitCode"}, {"message", std::to_string(exit_code)}}});
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string InternalErrorText(std::string_view message) {
  return StrCat("Internal error occurred: ", message);
}

std::string InternalErrorStatus(std::string_view message) {
  ordered_json j;
  j["metadata"] = ordered_json::object();
  j["status"] = "Failure";
  j["message"] = InternalErrorText(message);
  j["reason"] = "InternalError";
  j["details"]["causes"] = ordered_json::array({ordered_json{{"message", std::string(message)}}});
  j["code"] = 500;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

StatusOr<int> DecodeErrorStream(ErrorFormat format, std::string_view message) {
  if (format == ErrorFormat::kText) {
    if (message.empty()) return 0;
    return UnknownError(StrCat("error executing remote command: ", message));
  }
  if (message.empty()) return 0;
  nlohmann::json j = nlohmann::json::parse(message, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return DataLossError(StrCat("error stream protocol error: not a Status: ", message));
  }
  std::string status = j.value("status", "");
  if (status == "Success") return 0;
  if (status != "Failure") return DataLossError("error stream protocol error: unknown error");
  std::string text = j.contains("message") && j["message"].is_string()
                         ? j["message"].get<std::string>()
                         : std::string("remote command failed");
  if (j.value("reason", "") == "NonZeroExitCode") {
    const auto& details = j.contains("details") ? j["details"] : nlohmann::json();
    if (!details.is_object() || !details.contains("causes") || !details["causes"].is_array()) {
      return DataLossError("error stream protocol error: details must be set");
    }
    for (const auto& cause : details["causes"]) {
      if (!cause.is_object() || cause.value("reason", "") != "ExitCode") continue;
      std::string code_text = cause.value("message", "");
      unsigned code = 0;
      auto [ptr, ec] = std::from_chars(code_text.data(), code_text.data() + code_text.size(), code);
      if (code_text.empty() || ec != std::errc() || ptr != code_text.data() + code_text.size() ||
          code > 255) {
        return DataLossError(
            StrCat("error stream protocol error: invalid exit code value \"", code_text, "\""));
      }
      return static_cast<int>(code);
    }
    return DataLossError("error stream protocol error: no ExitCode cause given");
  }
  return UnknownError(text);
}

std::string EncodeTerminalSize(TerminalSize size) {
  return StrCat("{\"Width\":", size.width, ",\"Height\":", size.height, "}\n");
}

StatusOr<std::vector<TerminalSize>> TerminalSizeDecoder::Feed(std::string_view bytes) {
  buf_.append(bytes);
  std::vector<TerminalSize> out;
  while (true) {
    size_t start = buf_.find_first_not_of(" \t\r\n");
    if (start == std::string::npos) {
      buf_.clear();
      break;
    }
    std::string_view rest = std::string_view(buf_).substr(start);
    size_t len = JsonValueLength(rest);
    if (len == 0) {
      if (rest.size() > kMaxResizeObject) {
        return InvalidArgumentError("terminal size message is too long");
      }
      buf_.erase(0, start);
      break;
    }
    nlohmann::json j = nlohmann::json::parse(rest.substr(0, len), nullptr, false);
    buf_.erase(0, start + len);
    if (j.is_discarded() || !j.is_object()) {
      return InvalidArgumentError("terminal size is not a JSON object");
    }
    TerminalSize size;
    for (const auto& [key, value] : j.items()) {
      uint16_t* field = nullptr;
      if (EqualsIgnoreCase(key, "width")) field = &size.width;
      if (EqualsIgnoreCase(key, "height")) field = &size.height;
      if (field == nullptr) continue;
      if (!value.is_number_unsigned() || value.get<uint64_t>() > 65535) {
        return InvalidArgumentError(StrCat("terminal size field ", key, " is not a uint16"));
      }
      *field = static_cast<uint16_t>(value.get<uint64_t>());
    }
    out.push_back(size);
  }
  return out;
}

StatusOr<std::vector<uint16_t>> ParsePortList(const std::vector<std::string>& values) {
  std::vector<uint16_t> ports;
  for (const std::string& value : values) {
    if (value.empty()) return InvalidArgumentError("query parameter \"port\" cannot be empty");
    std::string_view rest = value;
    while (true) {
      size_t comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      unsigned port = 0;
      auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), port);
      if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || port > 65535) {
        return InvalidArgumentError(StrCat("unable to parse \"", value, "\" as a port"));
      }
      if (port < 1) return InvalidArgumentError(StrCat("port \"", value, "\" must be > 0"));
      ports.push_back(static_cast<uint16_t>(port));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return ports;
}

}  // namespace berth::stream::remotecommand
