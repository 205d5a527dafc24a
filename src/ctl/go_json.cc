#include "ctl/go_json.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "common/base64.h"

namespace berth::ctl {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr std::string_view kIndent = "  ";

// Writes a proto message the way jsonpb's jsonWriter does; `indent` is the
// indentation of the line holding the opening brace.
class JsonpbWriter {
 public:
  explicit JsonpbWriter(std::string& out) : out_(out) {}

  void WriteMessage(const Message& m, const std::string& indent) {
    const Descriptor* d = m.GetDescriptor();
    const Reflection* r = m.GetReflection();
    out_ += "{\n";
    bool first = true;
    std::set<const google::protobuf::OneofDescriptor*> seen_oneofs;
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* fd = d->field(i);
      const google::protobuf::OneofDescriptor* oneof = fd->containing_oneof();
      if (oneof != nullptr) {
        // A oneof is printed once, at the position of its first member, and
        // only when one member is set (defaults are not emitted for it).
        if (!seen_oneofs.insert(oneof).second) continue;
        fd = r->GetOneofFieldDescriptor(m, oneof);
        if (fd == nullptr) continue;
      }
      bool has = fd->is_repeated() ? r->FieldSize(m, fd) > 0 : r->HasField(m, fd);
      bool null_value = false;
      if (!has && !fd->is_repeated() &&
          (fd->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ||
           fd->file()->syntax() == google::protobuf::FileDescriptor::SYNTAX_PROTO2)) {
        null_value = true;
      }
      if (!first) out_ += ",\n";
      first = false;
      out_ += indent;
      out_ += kIndent;
      out_ += '"';
      out_ += fd->json_name();
      out_ += "\": ";
      if (null_value) {
        out_ += "null";
      } else {
        WriteFieldValue(m, fd, indent);
      }
    }
    out_ += '\n';
    out_ += indent;
    out_ += '}';
  }

 private:
  void WriteFieldValue(const Message& m, const FieldDescriptor* fd, const std::string& indent) {
    const Reflection* r = m.GetReflection();
    if (fd->is_map()) {
      WriteMap(m, fd, indent);
      return;
    }
    if (fd->is_repeated()) {
      out_ += '[';
      int n = r->FieldSize(m, fd);
      for (int i = 0; i < n; ++i) {
        if (i > 0) out_ += ',';
        out_ += '\n';
        out_ += indent;
        out_ += kIndent;
        out_ += kIndent;
        WriteRepeatedElement(m, fd, i, indent + std::string(kIndent));
      }
      out_ += '\n';
      out_ += indent;
      out_ += kIndent;
      out_ += ']';
      return;
    }
    WriteSingular(m, fd, indent);
  }

  void WriteMap(const Message& m, const FieldDescriptor* fd, const std::string& indent) {
    const Reflection* r = m.GetReflection();
    const FieldDescriptor* key_fd = fd->message_type()->map_key();
    const FieldDescriptor* value_fd = fd->message_type()->map_value();
    std::vector<const Message*> entries;
    for (int i = 0; i < r->FieldSize(m, fd); ++i)
      entries.push_back(&r->GetRepeatedMessage(m, fd, i));
    auto key_less = [key_fd](const Message* a, const Message* b) {
      const Reflection* ra = a->GetReflection();
      const Reflection* rb = b->GetReflection();
      switch (key_fd->cpp_type()) {
        case FieldDescriptor::CPPTYPE_BOOL:
          return !ra->GetBool(*a, key_fd) && rb->GetBool(*b, key_fd);
        case FieldDescriptor::CPPTYPE_INT32:
          return ra->GetInt32(*a, key_fd) < rb->GetInt32(*b, key_fd);
        case FieldDescriptor::CPPTYPE_INT64:
          return ra->GetInt64(*a, key_fd) < rb->GetInt64(*b, key_fd);
        case FieldDescriptor::CPPTYPE_UINT32:
          return ra->GetUInt32(*a, key_fd) < rb->GetUInt32(*b, key_fd);
        case FieldDescriptor::CPPTYPE_UINT64:
          return ra->GetUInt64(*a, key_fd) < rb->GetUInt64(*b, key_fd);
        default:
          return ra->GetString(*a, key_fd) < rb->GetString(*b, key_fd);
      }
    };
    std::stable_sort(entries.begin(), entries.end(), key_less);
    out_ += '{';
    bool first = true;
    for (const Message* e : entries) {
      if (!first) out_ += ',';
      first = false;
      out_ += '\n';
      out_ += indent;
      out_ += kIndent;
      out_ += kIndent;
      out_ += GoJsonQuote(KeyText(*e, key_fd));
      out_ += ": ";
      WriteSingular(*e, value_fd, indent + std::string(kIndent));
    }
    out_ += '\n';
    out_ += indent;
    out_ += kIndent;
    out_ += '}';
  }

  static std::string KeyText(const Message& e, const FieldDescriptor* key_fd) {
    const Reflection* r = e.GetReflection();
    switch (key_fd->cpp_type()) {
      case FieldDescriptor::CPPTYPE_BOOL:
        return r->GetBool(e, key_fd) ? "true" : "false";
      case FieldDescriptor::CPPTYPE_INT32:
        return std::to_string(r->GetInt32(e, key_fd));
      case FieldDescriptor::CPPTYPE_INT64:
        return std::to_string(r->GetInt64(e, key_fd));
      case FieldDescriptor::CPPTYPE_UINT32:
        return std::to_string(r->GetUInt32(e, key_fd));
      case FieldDescriptor::CPPTYPE_UINT64:
        return std::to_string(r->GetUInt64(e, key_fd));
      default:
        return r->GetString(e, key_fd);
    }
  }

  // Scalars and messages of a singular field; `indent` as for the field line.
  void WriteSingular(const Message& m, const FieldDescriptor* fd, const std::string& indent) {
    const Reflection* r = m.GetReflection();
    switch (fd->cpp_type()) {
      case FieldDescriptor::CPPTYPE_MESSAGE:
        WriteMessage(r->GetMessage(m, fd), indent + std::string(kIndent));
        return;
      case FieldDescriptor::CPPTYPE_INT32:
        out_ += std::to_string(r->GetInt32(m, fd));
        return;
      case FieldDescriptor::CPPTYPE_UINT32:
        out_ += std::to_string(r->GetUInt32(m, fd));
        return;
      case FieldDescriptor::CPPTYPE_INT64:
        out_ += '"' + std::to_string(r->GetInt64(m, fd)) + '"';
        return;
      case FieldDescriptor::CPPTYPE_UINT64:
        out_ += '"' + std::to_string(r->GetUInt64(m, fd)) + '"';
        return;
      case FieldDescriptor::CPPTYPE_BOOL:
        out_ += r->GetBool(m, fd) ? "true" : "false";
        return;
      case FieldDescriptor::CPPTYPE_FLOAT:
        WriteFloat(r->GetFloat(m, fd), 32);
        return;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        WriteFloat(r->GetDouble(m, fd), 64);
        return;
      case FieldDescriptor::CPPTYPE_ENUM:
        WriteEnum(fd, r->GetEnumValue(m, fd));
        return;
      case FieldDescriptor::CPPTYPE_STRING:
        WriteString(fd, r->GetString(m, fd));
        return;
    }
  }

  void WriteRepeatedElement(const Message& m, const FieldDescriptor* fd, int i,
                            const std::string& indent) {
    const Reflection* r = m.GetReflection();
    switch (fd->cpp_type()) {
      case FieldDescriptor::CPPTYPE_MESSAGE:
        WriteMessage(r->GetRepeatedMessage(m, fd, i), indent + std::string(kIndent));
        return;
      case FieldDescriptor::CPPTYPE_INT32:
        out_ += std::to_string(r->GetRepeatedInt32(m, fd, i));
        return;
      case FieldDescriptor::CPPTYPE_UINT32:
        out_ += std::to_string(r->GetRepeatedUInt32(m, fd, i));
        return;
      case FieldDescriptor::CPPTYPE_INT64:
        out_ += '"' + std::to_string(r->GetRepeatedInt64(m, fd, i)) + '"';
        return;
      case FieldDescriptor::CPPTYPE_UINT64:
        out_ += '"' + std::to_string(r->GetRepeatedUInt64(m, fd, i)) + '"';
        return;
      case FieldDescriptor::CPPTYPE_BOOL:
        out_ += r->GetRepeatedBool(m, fd, i) ? "true" : "false";
        return;
      case FieldDescriptor::CPPTYPE_FLOAT:
        WriteFloat(r->GetRepeatedFloat(m, fd, i), 32);
        return;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        WriteFloat(r->GetRepeatedDouble(m, fd, i), 64);
        return;
      case FieldDescriptor::CPPTYPE_ENUM:
        WriteEnum(fd, r->GetRepeatedEnumValue(m, fd, i));
        return;
      case FieldDescriptor::CPPTYPE_STRING:
        WriteString(fd, r->GetRepeatedString(m, fd, i));
        return;
    }
  }

  void WriteString(const FieldDescriptor* fd, const std::string& v) {
    if (fd->type() == FieldDescriptor::TYPE_BYTES) {
      out_ += '"' + Base64Encode(v) + '"';
    } else {
      out_ += GoJsonQuote(v);
    }
  }

  void WriteEnum(const FieldDescriptor* fd, int value) {
    const google::protobuf::EnumValueDescriptor* v = fd->enum_type()->FindValueByNumber(value);
    if (v == nullptr) {
      out_ += std::to_string(value);
    } else {
      out_ += '"' + v->name() + '"';
    }
  }

  void WriteFloat(double v, int bits) {
    if (std::isinf(v)) {
      out_ += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    } else if (std::isnan(v)) {
      out_ += "\"NaN\"";
    } else {
      out_ += GoJsonFloat(v, bits);
    }
  }

  std::string& out_;
};

// Shortest round-trip digits of v (v finite, >= 0) in scientific form:
// mantissa digits without the dot, and the decimal exponent of the first digit.
void ShortestDigits(double v, int bits, std::string& digits, int& exp10) {
  char buf[64];
  std::to_chars_result res =
      bits == 32 ? std::to_chars(buf, buf + sizeof(buf), static_cast<float>(v),
                                 std::chars_format::scientific)
                 : std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string_view s(buf, res.ptr - buf);
  size_t e = s.find('e');
  digits.clear();
  for (char c : s.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  exp10 = std::stoi(std::string(s.substr(e + 1)));
}

}  // namespace

std::pair<char32_t, size_t> DecodeUtf8(std::string_view s, size_t i) {
  constexpr std::pair<char32_t, size_t> kError{0xFFFD, 1};
  auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) return {b0, 1};
  size_t n;
  char32_t r;
  char32_t min;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2, r = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3, r = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4, r = b0 & 0x07, min = 0x10000;
  } else {
    return kError;
  }
  if (i + n > s.size()) return kError;
  for (size_t k = 1; k < n; ++k) {
    auto b = static_cast<uint8_t>(s[i + k]);
    if ((b & 0xC0) != 0x80) return kError;
    r = (r << 6) | (b & 0x3F);
  }
  if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) return kError;
  return {r, n};
}

size_t RuneCount(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) i += DecodeUtf8(s, i).second;
  return n;
}

std::string GoJsonQuote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    auto b = static_cast<uint8_t>(s[i]);
    if (b < 0x80) {
      ++i;
      if (b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&') {
        out.push_back(static_cast<char>(b));
        continue;
      }
      switch (b) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          out += "\\u00";
          out.push_back(kHex[b >> 4]);
          out.push_back(kHex[b & 0xF]);
      }
      continue;
    }
    auto [r, size] = DecodeUtf8(s, i);
    if (r == 0xFFFD && size == 1) {
      out += "\\ufffd";
    } else if (r == 0x2028) {
      out += "\\u2028";
    } else if (r == 0x2029) {
      out += "\\u2029";
    } else {
      out.append(s.substr(i, size));
    }
    i += size;
  }
  out.push_back('"');
  return out;
}

std::string GoFormatFloat(double v, char fmt, int bits) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::string sign = std::signbit(v) ? "-" : "";
  double a = std::fabs(v);
  std::string digits;
  int exp10 = 0;
  ShortestDigits(a, bits, digits, exp10);
  if (a == 0) {
    digits = "0";
    exp10 = 0;
  }
  // Shortest %g uses the exponent form below 1e-4 and from 1e6 on.
  if (fmt == 'g') fmt = (exp10 < -4 || exp10 >= 6) ? 'e' : 'f';
  if (fmt == 'e') {
    std::string out = sign;
    out.push_back(digits[0]);
    if (digits.size() > 1) {
      out.push_back('.');
      out.append(digits, 1, std::string::npos);
    }
    out.push_back('e');
    out.push_back(exp10 < 0 ? '-' : '+');
    int e = std::abs(exp10);
    if (e < 10) out.push_back('0');
    out += std::to_string(e);
    return out;
  }
  // Fixed notation with exactly the shortest digits.
  std::string out = sign;
  int dp = exp10 + 1;  // digits before the decimal point
  if (dp <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-dp), '0');
    out += digits;
  } else if (static_cast<size_t>(dp) >= digits.size()) {
    out += digits;
    out.append(static_cast<size_t>(dp) - digits.size(), '0');
  } else {
    out.append(digits, 0, static_cast<size_t>(dp));
    out.push_back('.');
    out.append(digits, static_cast<size_t>(dp), std::string::npos);
  }
  return out;
}

std::string GoJsonFloat(double v, int bits) {
  double a = std::fabs(v);
  if (bits == 32) a = static_cast<float>(a);
  char fmt = 'f';
  if (a != 0 && (a < 1e-6 || a >= 1e21)) fmt = 'e';
  std::string s = GoFormatFloat(v, fmt, bits);
  if (fmt == 'e') {
    // Go writes e-07 as e-7.
    size_t n = s.size();
    if (n >= 4 && s[n - 4] == 'e' && s[n - 3] == '-' && s[n - 2] == '0') {
      s.erase(n - 2, 1);
    }
  }
  return s;
}

std::string MarshalProtoJson(const google::protobuf::Message& msg) {
  std::string out;
  JsonpbWriter(out).WriteMessage(msg, "");
  return out;
}

bool IsValidJson(std::string_view text) { return nlohmann::json::accept(text.begin(), text.end()); }

StatusOr<std::string> IndentJson(std::string_view json) {
  if (!IsValidJson(json)) {
    return InvalidArgumentError(StrCat("not valid JSON: ", json.substr(0, 200)));
  }
  std::string out;
  size_t i = 0;
  while (i < json.size() &&
         (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' || json[i] == '\r')) {
    ++i;
  }
  int depth = 0;
  bool need_indent = false;
  bool done = false;  // the top-level value is complete
  auto newline = [&](int d) {
    out.push_back('\n');
    for (int k = 0; k < d; ++k) out += kIndent;
  };
  for (; i < json.size(); ++i) {
    char c = json[i];
    bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (done) {
      out.push_back(c);  // trailing whitespace is kept, like Go
      continue;
    }
    if (space) continue;
    if (need_indent && c != '}' && c != ']') {
      need_indent = false;
      ++depth;
      newline(depth);
    }
    switch (c) {
      case '"': {
        size_t j = i + 1;
        while (json[j] != '"') j += json[j] == '\\' ? 2 : 1;
        out.append(json.substr(i, j - i + 1));
        i = j;
        break;
      }
      case '{':
      case '[':
        need_indent = true;
        out.push_back(c);
        break;
      case ',':
        out.push_back(c);
        newline(depth);
        break;
      case ':':
        out += ": ";
        break;
      case '}':
      case ']':
        if (need_indent) {
          need_indent = false;
        } else {
          --depth;
          newline(depth);
        }
        out.push_back(c);
        break;
      default:
        out.push_back(c);
    }
    if (depth == 0 && !need_indent) {
      // A scalar or a closed composite at the top level ends the value; a
      // number only ends at the next non-number byte.
      bool number_continues = i + 1 < json.size() && json[i + 1] != ' ' && json[i + 1] != '\t' &&
                              json[i + 1] != '\n' && json[i + 1] != '\r';
      if (c == '}' || c == ']' || c == '"' || !number_continues) done = true;
    }
  }
  return out;
}

std::string StatusInfoJson(std::string_view status_json,
                           const std::map<std::string, std::string>& info) {
  std::string out = "{\"status\":";
  out += status_json;
  for (const auto& [key, value] : info) {
    out += ',';
    out += GoJsonQuote(key);
    out += ':';
    if (IsValidJson(value)) {
      out += value;
    } else {
      out += GoJsonQuote(value);
    }
  }
  out += '}';
  return out;
}

}  // namespace berth::ctl
