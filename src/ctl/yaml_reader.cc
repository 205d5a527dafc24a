#include "ctl/yaml_reader.h"

#include <cctype>
#include <cstdlib>
#include <string>

#include "common/yaml.h"
#include "ctl/go_yaml.h"

namespace berth::ctl {
namespace {

using nlohmann::json;

// The typed value of a plain scalar (yaml.v2 rules) or the string itself.
json TypedPlain(const std::string& s) {
  switch (ResolvePlainScalar(s)) {
    case YamlScalarKind::kNull:
      return nullptr;
    case YamlScalarKind::kBool: {
      static const std::string_view kTrue[] = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                               "True", "TRUE", "on",  "On",  "ON"};
      for (std::string_view t : kTrue) {
        if (s == t) return true;
      }
      return false;
    }
    case YamlScalarKind::kInt: {
      std::string plain;
      for (char c : s) {
        if (c != '_') plain.push_back(c);
      }
      bool neg = !plain.empty() && plain[0] == '-';
      std::string body = plain;
      if (!body.empty() && (body[0] == '-' || body[0] == '+')) body.erase(0, 1);
      int base = 10;
      if (body.size() >= 2 && body[0] == '0') {
        char p = static_cast<char>(std::tolower(static_cast<unsigned char>(body[1])));
        if (p == 'x')
          base = 16, body.erase(0, 2);
        else if (p == 'o')
          base = 8, body.erase(0, 2);
        else if (p == 'b')
          base = 2, body.erase(0, 2);
        else
          base = 8, body.erase(0, 1);
      }
      uint64_t v = std::strtoull(body.c_str(), nullptr, base);
      if (neg) return -static_cast<int64_t>(v);
      if (v <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(v);
      return v;
    }
    case YamlScalarKind::kFloat: {
      if (s.find("inf") != std::string::npos || s.find("Inf") != std::string::npos ||
          s.find("INF") != std::string::npos || s.find("nan") != std::string::npos ||
          s.find("NaN") != std::string::npos || s.find("NAN") != std::string::npos) {
        return s;  // JSON has no infinities; keep the text
      }
      std::string plain;
      for (char c : s) {
        if (c != '_') plain.push_back(c);
      }
      return std::strtod(plain.c_str(), nullptr);
    }
    case YamlScalarKind::kTimestamp:
    case YamlScalarKind::kString:
      return s;
  }
  return s;
}

}  // namespace

StatusOr<json> ParseYaml(std::string_view text, bool resolve_scalars) {
  return YamlToJson(
      text, {.resolve_plain = resolve_scalars ? YamlPlainResolver(TypedPlain) : YamlPlainResolver(),
             .reject_duplicate_keys = true});
}

StatusOr<json> ParseJsonOrYaml(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  if (i < text.size() && text[i] == '{') {
    json v = json::parse(text.begin(), text.end(), nullptr, false);
    if (v.is_discarded()) return InvalidArgumentError("not valid JSON");
    return v;
  }
  return ParseYaml(text, true);
}

}  // namespace berth::ctl
