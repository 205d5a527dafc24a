#include "ctl/go_yaml.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "ctl/go_json.h"

namespace berth::ctl {
namespace {

using nlohmann::json;

constexpr int kBestIndent = 2;
constexpr int kBestWidth = 80;

bool IsDigit(char32_t r) { return r >= '0' && r <= '9'; }

// unicode.IsLetter for ASCII; other runes from U+00AA on are mostly letters
// in the keys CRI runtimes use, so they are treated as such.
bool IsLetter(char32_t r) {
  if (r < 0x80) return std::isalpha(static_cast<int>(r)) != 0;
  return r >= 0xAA;
}

std::vector<char32_t> Runes(std::string_view s) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < s.size();) {
    auto [r, n] = DecodeUtf8(s, i);
    out.push_back(r);
    i += n;
  }
  return out;
}

bool AllOf(std::string_view s, int (*pred)(int)) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [pred](char c) {
    return pred(static_cast<unsigned char>(c)) != 0;
  });
}

int IsOctal(int c) { return c >= '0' && c <= '7'; }
int IsBinary(int c) { return c == '0' || c == '1'; }

// Digits of `s` in `base` fit in a uint64.
bool FitsUint64(std::string_view s, int base) {
  uint64_t v = 0;
  for (char c : s) {
    int d = std::isdigit(static_cast<unsigned char>(c))
                ? c - '0'
                : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
    if (v > (UINT64_MAX - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) return false;
    v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  return true;
}

// strconv.ParseInt(s, 0, 64) or strconv.ParseUint(s, 0, 64) succeeds.
bool IsGoInteger(std::string_view s) {
  bool neg = false;
  bool signed_ = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    signed_ = true;
    s.remove_prefix(1);
  }
  std::string_view digits;
  int base = 10;
  if (s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    digits = s.substr(2), base = 16;
    if (!AllOf(digits, isxdigit)) return false;
  } else if (s.size() >= 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'O')) {
    digits = s.substr(2), base = 8;
    if (!AllOf(digits, IsOctal)) return false;
  } else if (s.size() >= 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
    digits = s.substr(2), base = 2;
    if (!AllOf(digits, IsBinary)) return false;
  } else if (s.size() >= 2 && s[0] == '0') {
    digits = s.substr(1), base = 8;
    if (!AllOf(digits, IsOctal)) return false;
  } else {
    digits = s;
    if (!AllOf(digits, isdigit)) return false;
  }
  if (!FitsUint64(digits, base)) return false;
  if (!signed_) return true;  // ParseUint takes what ParseInt rejects
  // Signed values must fit int64 (ParseUint does not accept a sign).
  uint64_t v = 0;
  for (char c : digits) {
    int d = std::isdigit(static_cast<unsigned char>(c))
                ? c - '0'
                : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
    v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  return neg ? v <= (uint64_t{1} << 63) : v < (uint64_t{1} << 63);
}

// ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
bool IsYamlStyleFloat(std::string_view s) {
  size_t i = 0;
  auto digits = [&]() {
    size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    return i - start;
  };
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  } else {
    if (digits() == 0) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      digits();
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

// ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
bool IsBase60Float(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  ++i;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '_')) ++i;
  int groups = 0;
  while (i < s.size() && s[i] == ':') {
    ++i;
    size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && i - start < 2) ++i;
    size_t n = i - start;
    if (n == 0) return false;
    if (n == 2 && s[start] > '5') return false;
    ++groups;
  }
  if (groups == 0) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '_')) ++i;
  }
  return i == s.size();
}

int DaysIn(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// Reads 1..max_digits decimal digits at s[i].
bool ReadNum(std::string_view s, size_t& i, size_t max_digits, int& v) {
  size_t start = i;
  v = 0;
  while (i < s.size() && i - start < max_digits && std::isdigit(static_cast<unsigned char>(s[i]))) {
    v = v * 10 + (s[i] - '0');
    ++i;
  }
  return i > start;
}

// The timestamp forms yaml.v2 recognises in unquoted scalars:
// 2006-1-2, 2006-1-2 15:4:5[.frac], 2006-1-2T15:4:5[.frac](Z|+07:00).
bool IsYamlTimestamp(std::string_view s) {
  if (s.size() < 5) return false;
  for (int k = 0; k < 4; ++k) {
    if (!std::isdigit(static_cast<unsigned char>(s[k]))) return false;
  }
  if (s[4] != '-') return false;
  int year = std::stoi(std::string(s.substr(0, 4)));
  size_t i = 5;
  int month, day;
  if (!ReadNum(s, i, 2, month) || i >= s.size() || s[i] != '-') return false;
  ++i;
  if (!ReadNum(s, i, 2, day)) return false;
  if (month < 1 || month > 12 || day < 1 || day > DaysIn(year, month)) return false;
  if (i == s.size()) return true;
  char sep = s[i];
  if (sep != 'T' && sep != 't' && sep != ' ') return false;
  ++i;
  int h, m, sec;
  if (!ReadNum(s, i, 2, h) || i >= s.size() || s[i] != ':') return false;
  ++i;
  if (!ReadNum(s, i, 2, m) || i >= s.size() || s[i] != ':') return false;
  ++i;
  if (!ReadNum(s, i, 2, sec)) return false;
  if (h > 23 || m > 59 || sec > 59) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == start) return false;
  }
  if (sep == ' ') return i == s.size();
  if (i < s.size() && s[i] == 'Z') return i + 1 == s.size();
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    ++i;
    int zh, zm;
    size_t start = i;
    if (!ReadNum(s, i, 2, zh) || i - start != 2 || i >= s.size() || s[i] != ':') return false;
    ++i;
    start = i;
    if (!ReadNum(s, i, 2, zm) || i - start != 2) return false;
    return i == s.size();
  }
  return false;
}

bool ResolvesToString(std::string_view s) {
  return ResolvePlainScalar(s) == YamlScalarKind::kString;
}

bool IsBreakAt(std::string_view v, size_t i) {
  auto b = [&](size_t k) { return k < v.size() ? static_cast<uint8_t>(v[k]) : 0; };
  return b(i) == '\r' || b(i) == '\n' || (b(i) == 0xC2 && b(i + 1) == 0x85) ||
         (b(i) == 0xE2 && b(i + 1) == 0x80 && (b(i + 2) == 0xA8 || b(i + 2) == 0xA9));
}

bool IsPrintableAt(std::string_view v, size_t i) {
  auto b = [&](size_t k) { return k < v.size() ? static_cast<uint8_t>(v[k]) : 0; };
  uint8_t c = b(i);
  return c == 0x0A || (c >= 0x20 && c <= 0x7E) || (c == 0xC2 && b(i + 1) >= 0xA0) ||
         (c > 0xC2 && c < 0xED) || (c == 0xED && b(i + 1) < 0xA0) || c == 0xEE ||
         (c == 0xEF && (b(i + 1) != 0xBB || b(i + 2) != 0xBF) &&
          (b(i + 1) != 0xBF || (b(i + 2) != 0xBE && b(i + 2) != 0xBF)));
}

size_t CharWidth(uint8_t c) {
  if ((c & 0x80) == 0) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return 4;
  return 1;
}

bool IsBlankAt(std::string_view v, size_t i) {
  return i < v.size() && (v[i] == ' ' || v[i] == '\t');
}

bool IsSpaceAt(std::string_view v, size_t i) { return i < v.size() && v[i] == ' '; }

struct ScalarAnalysis {
  bool multiline = false;
  bool block_plain_allowed = true;
  bool single_quoted_allowed = true;
  bool block_allowed = true;
};

ScalarAnalysis Analyze(std::string_view v) {
  ScalarAnalysis a;
  if (v.empty()) {
    a.block_allowed = false;
    return a;
  }
  bool block_indicators = false, line_breaks = false, special = false;
  bool leading_space = false, leading_break = false, trailing_space = false, trailing_break = false,
       break_space = false, space_break = false;
  bool previous_space = false, previous_break = false;
  if (v.size() >= 3 && (v.substr(0, 3) == "---" || v.substr(0, 3) == "...")) {
    block_indicators = true;
  }
  bool preceded_by_whitespace = true;
  for (size_t i = 0; i < v.size();) {
    size_t w = CharWidth(static_cast<uint8_t>(v[i]));
    bool followed_by_whitespace = i + w >= v.size() || IsBlankAt(v, i + w);
    char c = v[i];
    if (i == 0) {
      switch (c) {
        case '#':
        case ',':
        case '[':
        case ']':
        case '{':
        case '}':
        case '&':
        case '*':
        case '!':
        case '|':
        case '>':
        case '\'':
        case '"':
        case '%':
        case '@':
        case '`':
          block_indicators = true;
          break;
        case '?':
        case ':':
        case '-':
          if (followed_by_whitespace) block_indicators = true;
          break;
        default:
          break;
      }
    } else {
      if (c == ':' && followed_by_whitespace) block_indicators = true;
      if (c == '#' && preceded_by_whitespace) block_indicators = true;
    }
    if (!IsPrintableAt(v, i)) special = true;
    if (c == ' ') {
      if (i == 0) leading_space = true;
      if (i + w == v.size()) trailing_space = true;
      if (previous_break) break_space = true;
      previous_space = true;
      previous_break = false;
    } else if (IsBreakAt(v, i)) {
      line_breaks = true;
      if (i == 0) leading_break = true;
      if (i + w == v.size()) trailing_break = true;
      if (previous_space) space_break = true;
      previous_space = false;
      previous_break = true;
    } else {
      previous_space = false;
      previous_break = false;
    }
    preceded_by_whitespace = IsBlankAt(v, i) || IsBreakAt(v, i) || v[i] == '\0';
    i += w;
  }
  a.multiline = line_breaks;
  if (leading_space || leading_break || trailing_space || trailing_break) {
    a.block_plain_allowed = false;
  }
  if (trailing_space) a.block_allowed = false;
  if (break_space) {
    a.block_plain_allowed = false;
    a.single_quoted_allowed = false;
  }
  if (space_break || special) {
    a.block_plain_allowed = false;
    a.single_quoted_allowed = false;
    a.block_allowed = false;
  }
  if (line_breaks) a.block_plain_allowed = false;
  if (block_indicators) a.block_plain_allowed = false;
  return a;
}

enum class Style { kPlain, kSingle, kDouble, kLiteral };

// The block-context emitter: column/indent bookkeeping as libyaml does it.
class Emitter {
 public:
  std::string out;

  void Document(const json& root) {
    EmitNode(root, /*mapping_ctx=*/false, /*simple_key=*/false);
    WriteIndentAtEnd();
  }

 private:
  int indent_ = -1;
  std::vector<int> indents_;
  int column_ = 0;
  bool whitespace_ = true;
  bool indention_ = true;

  void IncreaseIndent(bool flow, bool indentless) {
    indents_.push_back(indent_);
    if (indent_ < 0) {
      indent_ = flow ? kBestIndent : 0;
    } else if (!indentless) {
      indent_ += kBestIndent;
    }
  }
  void PopIndent() {
    indent_ = indents_.back();
    indents_.pop_back();
  }

  void PutBreak() {
    out.push_back('\n');
    column_ = 0;
  }
  void Put(char c) {
    out.push_back(c);
    ++column_;
  }
  // Copies the character at v[i] and advances i.
  void WriteChar(std::string_view v, size_t& i) {
    size_t w = std::min(CharWidth(static_cast<uint8_t>(v[i])), v.size() - i);
    out.append(v.substr(i, w));
    ++column_;
    i += w;
  }
  void WriteBreak(std::string_view v, size_t& i) {
    if (v[i] == '\n') {
      PutBreak();
      ++i;
    } else {
      WriteChar(v, i);
      column_ = 0;
    }
  }
  void WriteIndent() {
    int indent = std::max(indent_, 0);
    if (!indention_ || column_ > indent || (column_ == indent && !whitespace_)) PutBreak();
    while (column_ < indent) Put(' ');
    whitespace_ = true;
    indention_ = true;
  }
  void WriteIndentAtEnd() {
    indent_ = -1;
    WriteIndent();
  }
  void WriteIndicator(std::string_view ind, bool need_whitespace, bool is_whitespace,
                      bool is_indention) {
    if (need_whitespace && !whitespace_) Put(' ');
    for (char c : ind) Put(c);
    whitespace_ = is_whitespace;
    indention_ = indention_ && is_indention;
  }

  void EmitNode(const json& v, bool mapping_ctx, bool simple_key) {
    if (v.is_object()) {
      EmitMapping(v);
    } else if (v.is_array()) {
      EmitSequence(v, mapping_ctx);
    } else {
      EmitScalar(v, simple_key);
    }
  }

  void EmitSequence(const json& v, bool mapping_ctx) {
    if (v.empty()) {
      WriteIndicator("[", true, true, false);
      WriteIndicator("]", false, false, false);
      return;
    }
    IncreaseIndent(false, mapping_ctx && !indention_);
    for (const json& item : v) {
      WriteIndent();
      WriteIndicator("-", true, false, true);
      EmitNode(item, false, false);
    }
    PopIndent();
  }

  void EmitMapping(const json& v) {
    if (v.empty()) {
      WriteIndicator("{", true, true, false);
      WriteIndicator("}", false, false, false);
      return;
    }
    std::vector<std::string> keys;
    for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(it.key());
    std::stable_sort(keys.begin(), keys.end(),
                     [](const std::string& a, const std::string& b) { return YamlKeyLess(a, b); });
    IncreaseIndent(false, false);
    for (const std::string& key : keys) {
      WriteIndent();
      bool multiline = false;
      for (size_t i = 0; i < key.size(); ++i) multiline = multiline || IsBreakAt(key, i);
      if (!multiline && key.size() <= 128) {
        EmitString(key, /*simple_key=*/true);
        WriteIndicator(":", false, false, false);
        EmitNode(v.at(key), true, false);
      } else {
        WriteIndicator("?", true, false, true);
        EmitString(key, false);
        WriteIndent();
        WriteIndicator(":", true, false, true);
        EmitNode(v.at(key), true, false);
      }
    }
    PopIndent();
  }

  void EmitScalar(const json& v, bool simple_key) {
    if (v.is_string()) {
      EmitString(v.get_ref<const std::string&>(), simple_key);
      return;
    }
    std::string text;
    if (v.is_null()) {
      text = "null";
    } else if (v.is_boolean()) {
      text = v.get<bool>() ? "true" : "false";
    } else if (v.is_number_unsigned()) {
      text = std::to_string(v.get<uint64_t>());
    } else if (v.is_number_integer()) {
      text = std::to_string(v.get<int64_t>());
    } else {
      text = GoFormatFloat(v.get<double>(), 'g', 64);
      if (text == "+Inf") text = ".inf";
      if (text == "-Inf") text = "-.inf";
      if (text == "NaN") text = ".nan";
    }
    WriteScalar(text, Style::kPlain, simple_key);
  }

  void EmitString(const std::string& s, bool simple_key) {
    bool can_plain = ResolvesToString(s) && !IsBase60Float(s);
    Style style = s.find('\n') != std::string::npos ? Style::kLiteral
                  : can_plain                       ? Style::kPlain
                                                    : Style::kDouble;
    WriteScalar(s, style, simple_key);
  }

  void WriteScalar(std::string_view v, Style style, bool simple_key) {
    ScalarAnalysis a = Analyze(v);
    if (simple_key && a.multiline) style = Style::kDouble;
    if (style == Style::kPlain) {
      if (!a.block_plain_allowed) style = Style::kSingle;
      if (v.empty() && simple_key) style = Style::kSingle;
    }
    if (style == Style::kSingle && !a.single_quoted_allowed) style = Style::kDouble;
    if (style == Style::kLiteral && (!a.block_allowed || simple_key)) style = Style::kDouble;
    IncreaseIndent(true, false);
    switch (style) {
      case Style::kPlain:
        WritePlain(v, !simple_key);
        break;
      case Style::kSingle:
        WriteSingle(v, !simple_key);
        break;
      case Style::kDouble:
        WriteDouble(v, !simple_key);
        break;
      case Style::kLiteral:
        WriteLiteral(v);
        break;
    }
    PopIndent();
  }

  void WritePlain(std::string_view v, bool allow_breaks) {
    if (!whitespace_) Put(' ');
    bool spaces = false, breaks = false;
    for (size_t i = 0; i < v.size();) {
      if (v[i] == ' ') {
        if (allow_breaks && !spaces && column_ > kBestWidth && !IsSpaceAt(v, i + 1)) {
          WriteIndent();
          ++i;
        } else {
          WriteChar(v, i);
        }
        spaces = true;
      } else if (IsBreakAt(v, i)) {
        if (!breaks && v[i] == '\n') PutBreak();
        WriteBreak(v, i);
        indention_ = true;
        breaks = true;
      } else {
        if (breaks) WriteIndent();
        WriteChar(v, i);
        indention_ = false;
        spaces = false;
        breaks = false;
      }
    }
    whitespace_ = false;
    indention_ = false;
  }

  void WriteSingle(std::string_view v, bool allow_breaks) {
    WriteIndicator("'", true, false, false);
    bool spaces = false, breaks = false;
    for (size_t i = 0; i < v.size();) {
      if (v[i] == ' ') {
        if (allow_breaks && !spaces && column_ > kBestWidth && i > 0 && i < v.size() - 1 &&
            !IsSpaceAt(v, i + 1)) {
          WriteIndent();
          ++i;
        } else {
          WriteChar(v, i);
        }
        spaces = true;
      } else if (IsBreakAt(v, i)) {
        if (!breaks && v[i] == '\n') PutBreak();
        WriteBreak(v, i);
        indention_ = true;
        breaks = true;
      } else {
        if (breaks) WriteIndent();
        if (v[i] == '\'') Put('\'');
        WriteChar(v, i);
        indention_ = false;
        spaces = false;
        breaks = false;
      }
    }
    WriteIndicator("'", false, false, false);
    whitespace_ = false;
    indention_ = false;
  }

  void WriteDouble(std::string_view v, bool allow_breaks) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    WriteIndicator("\"", true, false, false);
    bool bom = v.size() >= 3 && static_cast<uint8_t>(v[0]) == 0xEF &&
               static_cast<uint8_t>(v[1]) == 0xBB && static_cast<uint8_t>(v[2]) == 0xBF;
    bool spaces = false;
    for (size_t i = 0; i < v.size();) {
      if (!IsPrintableAt(v, i) || bom || IsBreakAt(v, i) || v[i] == '"' || v[i] == '\\') {
        size_t w = std::min(CharWidth(static_cast<uint8_t>(v[i])), v.size() - i);
        char32_t r = static_cast<uint8_t>(v[i]);
        if (w == 2) r &= 0x1F;
        if (w == 3) r &= 0x0F;
        if (w == 4) r &= 0x07;
        for (size_t k = 1; k < w; ++k) r = (r << 6) | (static_cast<uint8_t>(v[i + k]) & 0x3F);
        i += w;
        Put('\\');
        switch (r) {
          case 0x00:
            Put('0');
            break;
          case 0x07:
            Put('a');
            break;
          case 0x08:
            Put('b');
            break;
          case 0x09:
            Put('t');
            break;
          case 0x0A:
            Put('n');
            break;
          case 0x0B:
            Put('v');
            break;
          case 0x0C:
            Put('f');
            break;
          case 0x0D:
            Put('r');
            break;
          case 0x1B:
            Put('e');
            break;
          case 0x22:
            Put('"');
            break;
          case 0x5C:
            Put('\\');
            break;
          case 0x85:
            Put('N');
            break;
          case 0xA0:
            Put('_');
            break;
          case 0x2028:
            Put('L');
            break;
          case 0x2029:
            Put('P');
            break;
          default: {
            int digits;
            if (r <= 0xFF) {
              Put('x');
              digits = 2;
            } else if (r <= 0xFFFF) {
              Put('u');
              digits = 4;
            } else {
              Put('U');
              digits = 8;
            }
            for (int k = (digits - 1) * 4; k >= 0; k -= 4) Put(kHex[(r >> k) & 0x0F]);
          }
        }
        spaces = false;
      } else if (v[i] == ' ') {
        if (allow_breaks && !spaces && column_ > kBestWidth && i > 0 && i < v.size() - 1) {
          WriteIndent();
          if (IsSpaceAt(v, i + 1)) Put('\\');
          ++i;
        } else {
          WriteChar(v, i);
        }
        spaces = true;
      } else {
        WriteChar(v, i);
        spaces = false;
      }
    }
    WriteIndicator("\"", false, false, false);
    whitespace_ = false;
    indention_ = false;
  }

  void WriteLiteral(std::string_view v) {
    WriteIndicator("|", true, false, false);
    if (!v.empty() && (v[0] == ' ' || IsBreakAt(v, 0))) {
      WriteIndicator(std::string(1, static_cast<char>('0' + kBestIndent)), false, false, false);
    }
    // Chomping: '-' without a final break, '+' with more than one.
    std::string chomp;
    size_t last = v.size() - 1;
    while (last > 0 && (static_cast<uint8_t>(v[last]) & 0xC0) == 0x80) --last;
    if (!IsBreakAt(v, last)) {
      chomp = "-";
    } else if (last == 0) {
      chomp = "+";
    } else {
      size_t prev = last - 1;
      while (prev > 0 && (static_cast<uint8_t>(v[prev]) & 0xC0) == 0x80) --prev;
      if (IsBreakAt(v, prev)) chomp = "+";
    }
    if (!chomp.empty()) WriteIndicator(chomp, false, false, false);
    PutBreak();
    indention_ = true;
    whitespace_ = true;
    bool breaks = true;
    for (size_t i = 0; i < v.size();) {
      if (IsBreakAt(v, i)) {
        WriteBreak(v, i);
        indention_ = true;
        breaks = true;
      } else {
        if (breaks) WriteIndent();
        WriteChar(v, i);
        indention_ = false;
        breaks = false;
      }
    }
  }
};

}  // namespace

YamlScalarKind ResolvePlainScalar(std::string_view s) {
  static const std::set<std::string_view> kTrue = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                                   "True", "TRUE", "on",  "On",  "ON"};
  static const std::set<std::string_view> kFalse = {"n",     "N",     "no",  "No",  "NO", "false",
                                                    "False", "FALSE", "off", "Off", "OFF"};
  static const std::set<std::string_view> kNull = {"", "~", "null", "Null", "NULL"};
  static const std::set<std::string_view> kSpecialFloat = {".nan",  ".NaN",  ".NAN",  ".inf",
                                                           ".Inf",  ".INF",  "+.inf", "+.Inf",
                                                           "+.INF", "-.inf", "-.Inf", "-.INF"};
  if (s.empty()) return YamlScalarKind::kNull;
  char c = s[0];
  bool sign = c == '+' || c == '-';
  bool digit = std::isdigit(static_cast<unsigned char>(c)) != 0;
  bool in_map = std::string_view("yYnNtTfFoO~").find(c) != std::string_view::npos;
  // Only these first characters can start a non-string scalar.
  if (!sign && !digit && !in_map && c != '.') return YamlScalarKind::kString;
  if (kTrue.count(s) > 0 || kFalse.count(s) > 0) return YamlScalarKind::kBool;
  if (kNull.count(s) > 0) return YamlScalarKind::kNull;
  if (kSpecialFloat.count(s) > 0) return YamlScalarKind::kFloat;
  if (c == '.') return IsYamlStyleFloat(s) ? YamlScalarKind::kFloat : YamlScalarKind::kString;
  if (sign || digit) {
    if (IsYamlTimestamp(s)) return YamlScalarKind::kTimestamp;
    std::string plain;
    for (char ch : s) {
      if (ch != '_') plain.push_back(ch);
    }
    if (IsGoInteger(plain)) return YamlScalarKind::kInt;
    if (IsYamlStyleFloat(plain)) return YamlScalarKind::kFloat;
  }
  return YamlScalarKind::kString;
}

bool YamlKeyLess(std::string_view a_text, std::string_view b_text) {
  std::vector<char32_t> ar = Runes(a_text), br = Runes(b_text);
  for (size_t i = 0; i < ar.size() && i < br.size(); ++i) {
    if (ar[i] == br[i]) continue;
    bool al = IsLetter(ar[i]);
    bool bl = IsLetter(br[i]);
    if (al && bl) return ar[i] < br[i];
    if (al || bl) return bl;
    int64_t an = 0, bn = 0;
    if (ar[i] == '0' || br[i] == '0') {
      for (size_t j = i; j > 0 && IsDigit(ar[j - 1]); --j) {
        if (ar[j - 1] != '0') {
          an = 1;
          bn = 1;
          break;
        }
      }
    }
    size_t ai = i, bi = i;
    for (; ai < ar.size() && IsDigit(ar[ai]); ++ai) an = an * 10 + (ar[ai] - '0');
    for (; bi < br.size() && IsDigit(br[bi]); ++bi) bn = bn * 10 + (br[bi] - '0');
    if (an != bn) return an < bn;
    if (ai != bi) return ai < bi;
    return ar[i] < br[i];
  }
  return ar.size() < br.size();
}

bool YamlPlainAllowed(std::string_view s) {
  return s.find('\n') == std::string_view::npos && ResolvesToString(s) && !IsBase60Float(s) &&
         Analyze(s).block_plain_allowed;
}

StatusOr<std::string> JsonToYaml(std::string_view text) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return InvalidArgumentError(
        StrCat("cannot convert to YAML, not valid JSON: ", text.substr(0, 200)));
  }
  Emitter e;
  e.Document(doc);
  return std::move(e.out);
}

}  // namespace berth::ctl
