#include "ctl/yaml_reader.h"

#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "ctl/go_json.h"
#include "ctl/go_yaml.h"

namespace berth::ctl {
namespace {

using nlohmann::json;

struct Line {
  int number = 0;       // 1-based, for error messages
  int indent = 0;       // leading spaces
  std::string content;  // without indentation, trailing comment and trailing blanks
  std::string raw;      // the line as written
};

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// Drops a trailing "# comment" (a '#' at the start or after a blank, outside
// a quoted scalar) and trailing blanks.
std::string StripComment(std::string_view s) {
  char quote = 0;
  size_t end = s.size();
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote != 0) {
      if (quote == '"' && c == '\\') {
        ++i;
      } else if (c == quote) {
        if (quote == '\'' && i + 1 < s.size() && s[i + 1] == '\'') {
          ++i;
        } else {
          quote = 0;
        }
      }
      continue;
    }
    bool token_start =
        i == 0 || IsBlank(s[i - 1]) || s[i - 1] == '[' || s[i - 1] == '{' || s[i - 1] == ',';
    if ((c == '"' || c == '\'') && token_start) {
      quote = c;
    } else if (c == '#' && (i == 0 || IsBlank(s[i - 1]))) {
      end = i;
      break;
    }
  }
  while (end > 0 && IsBlank(s[end - 1])) --end;
  return std::string(s.substr(0, end));
}

void AppendUtf8(uint32_t r, std::string& out) {
  if (r < 0x80) {
    out.push_back(static_cast<char>(r));
  } else if (r < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (r >> 6)));
    out.push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else if (r < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (r >> 12)));
    out.push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (r >> 18)));
    out.push_back(static_cast<char>(0x80 | ((r >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (r & 0x3F)));
  }
}

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

class Parser {
 public:
  Parser(std::string_view text, bool resolve) : resolve_(resolve) {
    int number = 0;
    size_t start = 0;
    while (start <= text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string_view::npos) end = text.size();
      std::string_view raw = text.substr(start, end - start);
      if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
      Line line;
      line.number = ++number;
      line.raw = std::string(raw);
      size_t indent = 0;
      while (indent < raw.size() && raw[indent] == ' ') ++indent;
      line.indent = static_cast<int>(indent);
      line.content = StripComment(raw.substr(indent));
      lines_.push_back(std::move(line));
      if (end == text.size()) break;
      start = end + 1;
    }
  }

  StatusOr<json> ParseDocument() {
    SkipBlank();
    if (pos_ < lines_.size() && lines_[pos_].indent == 0 &&
        (lines_[pos_].content == "---" || lines_[pos_].content.rfind("--- ", 0) == 0)) {
      std::string rest = lines_[pos_].content.substr(3);
      size_t k = 0;
      while (k < rest.size() && IsBlank(rest[k])) ++k;
      if (k < rest.size()) {
        lines_[pos_].indent = 4;
        lines_[pos_].content = rest.substr(k);
      } else {
        ++pos_;
      }
    }
    json v = ParseNode(0);
    if (!error_.ok()) return error_;
    SkipBlank();
    if (pos_ < lines_.size() && lines_[pos_].content != "...") {
      if (lines_[pos_].content == "---") {
        return Error(lines_[pos_], "multiple YAML documents are not supported");
      }
      return Error(lines_[pos_], "unexpected content (check the indentation)");
    }
    return v;
  }

 private:
  Status Error(const Line& line, std::string_view what) {
    return InvalidArgumentError(StrCat("YAML line ", line.number, ": ", what, ": ", line.raw));
  }
  void Fail(const Line& line, std::string_view what) {
    if (error_.ok()) error_ = Error(line, what);
  }

  void SkipBlank() {
    while (pos_ < lines_.size() && lines_[pos_].content.empty()) ++pos_;
  }

  static bool IsSequenceItem(const std::string& c) {
    return c == "-" || (c.size() >= 2 && c[0] == '-' && IsBlank(c[1]));
  }

  // Finds the ':' that ends a mapping key on this line; npos when the line is
  // not "key: value".
  static size_t KeyEnd(const std::string& c) {
    if (c.empty() || c[0] == '[' || c[0] == '{' || IsSequenceItem(c)) return std::string::npos;
    size_t i = 0;
    if (c[0] == '"' || c[0] == '\'') {
      char q = c[0];
      for (i = 1; i < c.size(); ++i) {
        if (q == '"' && c[i] == '\\') {
          ++i;
        } else if (c[i] == q) {
          if (q == '\'' && i + 1 < c.size() && c[i + 1] == '\'') {
            ++i;
            continue;
          }
          break;
        }
      }
      ++i;
      while (i < c.size() && IsBlank(c[i])) ++i;
      if (i < c.size() && c[i] == ':' && (i + 1 == c.size() || IsBlank(c[i + 1]))) return i;
      return std::string::npos;
    }
    for (; i < c.size(); ++i) {
      if (c[i] == ':' && (i + 1 == c.size() || IsBlank(c[i + 1]))) return i;
    }
    return std::string::npos;
  }

  json ParseNode(int min_indent) {
    SkipBlank();
    if (pos_ >= lines_.size() || !error_.ok()) return nullptr;
    Line& line = lines_[pos_];
    if (line.indent < min_indent) return nullptr;
    if (IsSequenceItem(line.content)) return ParseSequence(line.indent);
    if (KeyEnd(line.content) != std::string::npos) return ParseMapping(line.indent);
    std::string text = line.content;
    int indent = line.indent;
    ++pos_;
    return ParseInlineValue(text, indent - 1, lines_[pos_ - 1]);
  }

  json ParseSequence(int indent) {
    json seq = json::array();
    while (error_.ok()) {
      SkipBlank();
      if (pos_ >= lines_.size()) break;
      Line& line = lines_[pos_];
      if (line.indent < indent) break;
      if (line.indent > indent) {
        Fail(line, "bad indentation of a sequence item");
        break;
      }
      if (!IsSequenceItem(line.content)) break;
      size_t k = 1;
      while (k < line.content.size() && IsBlank(line.content[k])) ++k;
      if (k >= line.content.size()) {
        ++pos_;
        seq.push_back(ParseNode(indent + 1));
        continue;
      }
      // The item's content becomes a line of its own at its column, so that
      // "- key: v" continues with keys aligned under "key".
      line.indent = indent + static_cast<int>(k);
      line.content = line.content.substr(k);
      seq.push_back(ParseNode(line.indent));
    }
    return seq;
  }

  json ParseMapping(int indent) {
    json map = json::object();
    while (error_.ok()) {
      SkipBlank();
      if (pos_ >= lines_.size()) break;
      Line& line = lines_[pos_];
      if (line.indent < indent) break;
      if (line.indent > indent) {
        Fail(line, "bad indentation of a mapping entry");
        break;
      }
      size_t colon = KeyEnd(line.content);
      if (colon == std::string::npos) {
        if (IsSequenceItem(line.content)) break;  // a same-indent sequence of the parent
        Fail(line, "expected \"key: value\"");
        break;
      }
      std::string key_text = line.content.substr(0, colon);
      while (!key_text.empty() && IsBlank(key_text.back())) key_text.pop_back();
      std::string key;
      if (!key_text.empty() && (key_text[0] == '"' || key_text[0] == '\'')) {
        key = Unquote(key_text, line);
      } else {
        key = key_text;
      }
      std::string rest = line.content.substr(colon + 1);
      size_t k = 0;
      while (k < rest.size() && IsBlank(rest[k])) ++k;
      rest = rest.substr(k);
      const Line& key_line = line;
      ++pos_;
      json value;
      if (rest.empty()) {
        SkipBlank();
        if (pos_ < lines_.size() && lines_[pos_].indent > indent) {
          value = ParseNode(indent + 1);
        } else if (pos_ < lines_.size() && lines_[pos_].indent == indent &&
                   IsSequenceItem(lines_[pos_].content)) {
          value = ParseSequence(indent);
        } else {
          value = resolve_ ? json(nullptr) : json("");
        }
      } else {
        value = ParseInlineValue(rest, indent, key_line);
      }
      if (map.contains(key)) Fail(key_line, "duplicate mapping key");
      map[key] = std::move(value);
    }
    return map;
  }

  // A value that starts on the current line: a quoted or plain scalar, a
  // block scalar header, or a flow collection. `parent_indent` bounds the
  // lines a block scalar may take.
  json ParseInlineValue(const std::string& text, int parent_indent, const Line& line) {
    if (text[0] == '&' || text[0] == '*' || text[0] == '!') {
      Fail(line, "anchors, aliases and tags are not supported");
      return nullptr;
    }
    if (text[0] == '|' || text[0] == '>') return ParseBlockScalar(text, parent_indent, line);
    if (text[0] == '[' || text[0] == '{') {
      std::string flow = text;
      // A flow collection may continue on the following lines.
      while (!Balanced(flow) && pos_ < lines_.size()) {
        flow += ' ';
        flow += StripComment(lines_[pos_].raw);
        ++pos_;
      }
      size_t i = 0;
      json v = ParseFlow(flow, i, line);
      SkipSpaces(flow, i);
      if (i != flow.size()) Fail(line, "unexpected text after a flow collection");
      return v;
    }
    if (text[0] == '"' || text[0] == '\'') {
      std::string v = Unquote(text, line);
      return v;
    }
    // A plain scalar may continue on more indented lines (folded by spaces).
    std::string v = text;
    while (pos_ < lines_.size() && !lines_[pos_].content.empty() &&
           lines_[pos_].indent > parent_indent &&
           KeyEnd(lines_[pos_].content) == std::string::npos &&
           !IsSequenceItem(lines_[pos_].content)) {
      v += ' ';
      v += lines_[pos_].content;
      ++pos_;
    }
    return resolve_ ? TypedPlain(v) : json(v);
  }

  static bool Balanced(const std::string& s) {
    int depth = 0;
    char quote = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      char c = s[i];
      if (quote != 0) {
        if (quote == '"' && c == '\\')
          ++i;
        else if (c == quote)
          quote = 0;
        continue;
      }
      if (c == '"' || c == '\'')
        quote = c;
      else if (c == '[' || c == '{')
        ++depth;
      else if (c == ']' || c == '}')
        --depth;
    }
    return depth <= 0;
  }

  static void SkipSpaces(const std::string& s, size_t& i) {
    while (i < s.size() && IsBlank(s[i])) ++i;
  }

  json ParseFlow(const std::string& s, size_t& i, const Line& line) {
    SkipSpaces(s, i);
    if (i >= s.size()) {
      Fail(line, "unterminated flow collection");
      return nullptr;
    }
    if (s[i] == '[') {
      ++i;
      json arr = json::array();
      SkipSpaces(s, i);
      if (i < s.size() && s[i] == ']') {
        ++i;
        return arr;
      }
      while (error_.ok()) {
        arr.push_back(ParseFlow(s, i, line));
        SkipSpaces(s, i);
        if (i < s.size() && s[i] == ',') {
          ++i;
          SkipSpaces(s, i);
          if (i < s.size() && s[i] == ']') {
            ++i;
            break;
          }
          continue;
        }
        if (i < s.size() && s[i] == ']') {
          ++i;
          break;
        }
        Fail(line, "expected ',' or ']' in a flow sequence");
      }
      return arr;
    }
    if (s[i] == '{') {
      ++i;
      json obj = json::object();
      SkipSpaces(s, i);
      if (i < s.size() && s[i] == '}') {
        ++i;
        return obj;
      }
      while (error_.ok()) {
        json key = ParseFlowScalar(s, i, line, /*in_map_key=*/true);
        SkipSpaces(s, i);
        json value = resolve_ ? json(nullptr) : json("");
        if (i < s.size() && s[i] == ':') {
          ++i;
          SkipSpaces(s, i);
          if (i < s.size() && s[i] != ',' && s[i] != '}') value = ParseFlow(s, i, line);
        }
        obj[key.is_string() ? key.get<std::string>() : key.dump()] = std::move(value);
        SkipSpaces(s, i);
        if (i < s.size() && s[i] == ',') {
          ++i;
          SkipSpaces(s, i);
          if (i < s.size() && s[i] == '}') {
            ++i;
            break;
          }
          continue;
        }
        if (i < s.size() && s[i] == '}') {
          ++i;
          break;
        }
        Fail(line, "expected ',' or '}' in a flow mapping");
      }
      return obj;
    }
    return ParseFlowScalar(s, i, line, false);
  }

  json ParseFlowScalar(const std::string& s, size_t& i, const Line& line, bool in_map_key) {
    if (i < s.size() && (s[i] == '"' || s[i] == '\'')) {
      char q = s[i];
      size_t start = i;
      for (++i; i < s.size(); ++i) {
        if (q == '"' && s[i] == '\\') {
          ++i;
        } else if (s[i] == q) {
          if (q == '\'' && i + 1 < s.size() && s[i + 1] == '\'') {
            ++i;
            continue;
          }
          break;
        }
      }
      ++i;
      return Unquote(s.substr(start, i - start), line);
    }
    size_t start = i;
    while (i < s.size() && s[i] != ',' && s[i] != ']' && s[i] != '}' &&
           !(s[i] == ':' && (in_map_key || i + 1 == s.size() || IsBlank(s[i + 1])))) {
      ++i;
    }
    std::string text = s.substr(start, i - start);
    while (!text.empty() && IsBlank(text.back())) text.pop_back();
    if (in_map_key || !resolve_) return text;
    return TypedPlain(text);
  }

  std::string Unquote(const std::string& text, const Line& line) {
    char q = text[0];
    std::string out;
    size_t i = 1;
    for (; i < text.size(); ++i) {
      char c = text[i];
      if (c == q) {
        if (q == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
          out.push_back('\'');
          ++i;
          continue;
        }
        break;
      }
      if (q == '"' && c == '\\' && i + 1 < text.size()) {
        char e = text[++i];
        switch (e) {
          case 'n':
            out.push_back('\n');
            break;
          case 't':
          case '\t':
            out.push_back('\t');
            break;
          case 'r':
            out.push_back('\r');
            break;
          case '0':
            out.push_back('\0');
            break;
          case 'a':
            out.push_back('\a');
            break;
          case 'b':
            out.push_back('\b');
            break;
          case 'e':
            out.push_back('\x1b');
            break;
          case 'f':
            out.push_back('\f');
            break;
          case 'v':
            out.push_back('\v');
            break;
          case ' ':
            out.push_back(' ');
            break;
          case '"':
            out.push_back('"');
            break;
          case '/':
            out.push_back('/');
            break;
          case '\\':
            out.push_back('\\');
            break;
          case 'N':
            AppendUtf8(0x85, out);
            break;
          case '_':
            AppendUtf8(0xA0, out);
            break;
          case 'L':
            AppendUtf8(0x2028, out);
            break;
          case 'P':
            AppendUtf8(0x2029, out);
            break;
          case 'x':
          case 'u':
          case 'U': {
            size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            if (i + n >= text.size()) {
              Fail(line, "short escape sequence");
              return out;
            }
            std::string hex = text.substr(i + 1, n);
            AppendUtf8(static_cast<uint32_t>(std::strtoul(hex.c_str(), nullptr, 16)), out);
            i += n;
            break;
          }
          default:
            Fail(line, "unknown escape sequence");
        }
        continue;
      }
      out.push_back(c);
    }
    if (i >= text.size()) {
      Fail(line, "unterminated quoted scalar (multi-line quoted scalars are not supported)");
    } else {
      size_t k = i + 1;
      while (k < text.size() && IsBlank(text[k])) ++k;
      if (k != text.size()) Fail(line, "unexpected text after a quoted scalar");
    }
    return out;
  }

  json ParseBlockScalar(const std::string& header, int parent_indent, const Line& line) {
    bool literal = header[0] == '|';
    char chomp = 0;
    int explicit_indent = 0;
    for (size_t i = 1; i < header.size(); ++i) {
      char c = header[i];
      if (c == '-' || c == '+')
        chomp = c;
      else if (c >= '1' && c <= '9')
        explicit_indent = c - '0';
      else if (!IsBlank(c))
        Fail(line, "bad block scalar header");
    }
    int block_indent = explicit_indent > 0 ? std::max(parent_indent, 0) + explicit_indent : -1;
    std::vector<std::string> body;
    while (pos_ < lines_.size()) {
      const std::string& raw = lines_[pos_].raw;
      size_t ind = 0;
      while (ind < raw.size() && raw[ind] == ' ') ++ind;
      bool empty = ind == raw.size();
      if (!empty) {
        if (static_cast<int>(ind) <= parent_indent) break;
        if (block_indent < 0) block_indent = static_cast<int>(ind);
        if (static_cast<int>(ind) < block_indent) break;
      }
      body.push_back(empty ? std::string()
                           : raw.substr(std::min(raw.size(), static_cast<size_t>(block_indent))));
      ++pos_;
    }
    size_t trailing_empty = 0;
    while (!body.empty() && body.back().empty()) {
      body.pop_back();
      ++trailing_empty;
    }
    std::string out;
    for (size_t i = 0; i < body.size(); ++i) {
      if (i > 0) {
        bool fold = !literal && !body[i - 1].empty() && !body[i].empty() && !IsBlank(body[i][0]) &&
                    !IsBlank(body[i - 1][0]);
        out += fold ? " " : "\n";
      }
      out += body[i];
    }
    if (chomp == '-' || body.empty()) {
      if (chomp == '+') out.append(trailing_empty, '\n');
      return out;
    }
    out += '\n';
    if (chomp == '+') out.append(trailing_empty, '\n');
    return out;
  }

  std::vector<Line> lines_;
  size_t pos_ = 0;
  bool resolve_;
  Status error_;
};

}  // namespace

StatusOr<json> ParseYaml(std::string_view text, bool resolve_scalars) {
  Parser p(text, resolve_scalars);
  return p.ParseDocument();
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
