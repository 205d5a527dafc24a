#include "common/yaml.h"

#include <yaml.h>

#include <optional>
#include <set>
#include <vector>

namespace berth {
namespace {

using nlohmann::json;

constexpr size_t kMaxDepth = 64;

Status YamlError(const yaml_mark_t& mark, std::string_view what) {
  return InvalidArgumentError(
      StrCat("YAML line ", mark.line + 1, ", column ", mark.column + 1, ": ", what));
}

// Owns a libyaml parser reading `text` (which must outlive it).
class Parser {
 public:
  explicit Parser(std::string_view text) {
    yaml_parser_initialize(&parser_);
    yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
  }
  ~Parser() { yaml_parser_delete(&parser_); }
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  StatusOr<json> Parse(const YamlReadOptions& options) {
    const YamlPlainResolver& resolve = options.resolve_plain;
    // Collections being filled, innermost last; a mapping's pending key is
    // kept beside it.
    struct Open {
      json value;
      std::optional<std::string> key;
      // Keys as written, for duplicates: typing may map two different
      // keys onto one ("0" and "000"), and whether a text parses must not
      // depend on how scalars are typed.
      std::set<std::string> written_keys;
    };
    std::vector<Open> stack;
    std::optional<json> root;
    int documents = 0;
    yaml_mark_t at{};
    auto add = [&](json v, const std::string& written) -> Status {
      if (stack.empty()) {
        root = std::move(v);
        return OkStatus();
      }
      Open& top = stack.back();
      if (top.value.is_array()) {
        top.value.push_back(std::move(v));
      } else if (!top.key) {
        if (v.is_array() || v.is_object()) return YamlError(at, "a mapping key must be a scalar");
        top.key = v.is_string() ? v.get<std::string>() : v.is_null() ? "null" : v.dump();
        if (options.reject_duplicate_keys && !top.written_keys.insert(written).second) {
          return YamlError(at, StrCat("duplicate mapping key \"", *top.key, "\""));
        }
      } else {
        top.value[*top.key] = std::move(v);
        top.key.reset();
      }
      return OkStatus();
    };
    for (;;) {
      yaml_event_t event;
      if (yaml_parser_parse(&parser_, &event) == 0) {
        const char* problem = parser_.problem != nullptr ? parser_.problem : "syntax error";
        std::string what = problem;
        if (parser_.context != nullptr) what = StrCat(parser_.context, ": ", problem);
        return YamlError(parser_.problem_mark, what);
      }
      struct Deleter {
        yaml_event_t* e;
        ~Deleter() { yaml_event_delete(e); }
      } deleter{&event};
      at = event.start_mark;
      switch (event.type) {
        case YAML_STREAM_END_EVENT:
          if (!root) return json(nullptr);
          return *root;
        case YAML_DOCUMENT_START_EVENT:
          if (++documents > 1) return YamlError(at, "more than one YAML document");
          break;
        case YAML_ALIAS_EVENT:
          return YamlError(at, "YAML aliases are not supported");
        case YAML_SCALAR_EVENT: {
          if (event.data.scalar.anchor != nullptr) {
            return YamlError(at, "YAML anchors are not supported");
          }
          std::string s(reinterpret_cast<const char*>(event.data.scalar.value),
                        event.data.scalar.length);
          const bool plain = event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
          json v = plain && resolve ? resolve(s) : json(s);
          RETURN_IF_ERROR(add(std::move(v), s));
          break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
          const bool seq = event.type == YAML_SEQUENCE_START_EVENT;
          if ((seq ? event.data.sequence_start.anchor : event.data.mapping_start.anchor) !=
              nullptr) {
            return YamlError(at, "YAML anchors are not supported");
          }
          if (stack.size() >= kMaxDepth) return YamlError(at, "YAML nested too deeply");
          if (!stack.empty() && stack.back().value.is_object() && !stack.back().key) {
            return YamlError(at, "a mapping key must be a scalar");
          }
          stack.push_back({seq ? json::array() : json::object(), std::nullopt, {}});
          break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
          if (stack.empty()) return YamlError(at, "unbalanced YAML collection");
          json done = std::move(stack.back().value);
          stack.pop_back();
          RETURN_IF_ERROR(add(std::move(done), ""));
          break;
        }
        default:
          break;
      }
    }
  }

 private:
  yaml_parser_t parser_;
};

}  // namespace

StatusOr<json> YamlToJson(std::string_view text, const YamlReadOptions& options) {
  return Parser(text).Parse(options);
}

}  // namespace berth
