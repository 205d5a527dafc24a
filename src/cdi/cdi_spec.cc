#include "cdi/cdi_spec.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <regex>

#include "common/yaml.h"

namespace berth::cdi {

namespace {

using nlohmann::json;

// yaml.v2's resolution of a plain scalar.
json ResolvePlain(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  static const char* const kTrue[] = {"true", "True", "TRUE", "yes", "Yes",
                                      "YES",  "on",   "On",   "ON"};
  static const char* const kFalse[] = {"false", "False", "FALSE", "no", "No",
                                       "NO",    "off",   "Off",   "OFF"};
  for (const char* t : kTrue)
    if (s == t) return true;
  for (const char* f : kFalse)
    if (s == f) return false;
  // Integers as Go's strconv.ParseInt(s, 0, 64): sign, then 0x / 0o / 0b / 0 prefixes.
  {
    std::string_view v = s;
    bool negative = false;
    if (v[0] == '+' || v[0] == '-') {
      negative = v[0] == '-';
      v.remove_prefix(1);
    }
    int base = 10;
    if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
      base = 16;
      v.remove_prefix(2);
    } else if (v.size() > 2 && v[0] == '0' && (v[1] == 'o' || v[1] == 'O')) {
      base = 8;
      v.remove_prefix(2);
    } else if (v.size() > 2 && v[0] == '0' && (v[1] == 'b' || v[1] == 'B')) {
      base = 2;
      v.remove_prefix(2);
    } else if (v.size() > 1 && v[0] == '0') {
      base = 8;
      v.remove_prefix(1);
    }
    std::string digits(v);
    digits.erase(std::remove(digits.begin(), digits.end(), '_'), digits.end());
    if (!digits.empty() && digits.find_first_of("+- \t") == std::string::npos) {
      errno = 0;
      char* end = nullptr;
      long long n = std::strtoll(digits.c_str(), &end, base);
      if (errno == 0 && end != nullptr && *end == '\0') return negative ? -n : n;
    }
  }
  static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (std::regex_match(s, kFloat)) return std::strtod(s.c_str(), nullptr);
  return s;
}

// --- spec decoding ------------------------------------------------------------------------

// Reads typed fields of a JSON object, remembering the first error.
class Fields {
 public:
  Fields(const json& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

  bool Has(const char* key) const { return obj_.contains(key) && !obj_[key].is_null(); }

  std::string Str(const char* key, bool required = false) {
    if (!Has(key)) {
      if (required) Fail(StrCat(where_, ".", key, " is required"));
      return "";
    }
    if (!obj_[key].is_string()) {
      Fail(StrCat(where_, ".", key, " must be a string"));
      return "";
    }
    return obj_[key].get<std::string>();
  }

  std::vector<std::string> Strs(const char* key) {
    std::vector<std::string> out;
    if (!Has(key)) return out;
    if (!obj_[key].is_array()) {
      Fail(StrCat(where_, ".", key, " must be a list of strings"));
      return out;
    }
    for (const json& v : obj_[key]) {
      if (!v.is_string()) {
        Fail(StrCat(where_, ".", key, " must be a list of strings"));
        return {};
      }
      out.push_back(v.get<std::string>());
    }
    return out;
  }

  std::optional<int64_t> Int(const char* key, int64_t min, int64_t max) {
    if (!Has(key)) return std::nullopt;
    const json& v = obj_[key];
    if (!v.is_number_integer()) {
      Fail(StrCat(where_, ".", key, " must be an integer"));
      return std::nullopt;
    }
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(max)) {
      Fail(StrCat(where_, ".", key, " is out of range"));
      return std::nullopt;
    }
    int64_t n = v.get<int64_t>();
    if (n < min || n > max) {
      Fail(StrCat(where_, ".", key, " is out of range"));
      return std::nullopt;
    }
    return n;
  }

  const json* List(const char* key) {
    if (!Has(key)) return nullptr;
    if (!obj_[key].is_array()) {
      Fail(StrCat(where_, ".", key, " must be a list"));
      return nullptr;
    }
    return &obj_[key];
  }

  void Fail(std::string message) {
    if (error_.ok()) error_ = InvalidArgumentError(std::move(message));
  }
  const Status& error() const { return error_; }

 private:
  const json& obj_;
  std::string where_;
  Status error_;
};

const std::regex& VendorRe() {
  static const std::regex re(R"([A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?)");
  return re;
}
const std::regex& ClassRe() {
  static const std::regex re(R"([A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?)");
  return re;
}
const std::regex& NameRe() {
  static const std::regex re(R"([A-Za-z0-9]([A-Za-z0-9_.:-]*[A-Za-z0-9])?)");
  return re;
}

bool AbsoluteClean(const std::string& p) {
  return p.starts_with("/") && p.find('\0') == std::string::npos;
}

StatusOr<ContainerEdits> DecodeEdits(const json& j, const std::string& where) {
  ContainerEdits out;
  if (j.is_null()) return out;
  if (!j.is_object()) return InvalidArgumentError(StrCat(where, " must be a mapping"));
  Fields f(j, where);
  out.env = f.Strs("env");
  for (const std::string& e : out.env) {
    if (e.empty() || e[0] == '=') f.Fail(StrCat(where, ".env entry \"", e, "\" has no name"));
  }
  if (const json* nodes = f.List("deviceNodes")) {
    for (size_t i = 0; i < nodes->size(); ++i) {
      const std::string at = StrCat(where, ".deviceNodes[", i, "]");
      const json& n = (*nodes)[i];
      if (!n.is_object()) return InvalidArgumentError(StrCat(at, " must be a mapping"));
      Fields nf(n, at);
      DeviceNode d;
      d.path = nf.Str("path", true);
      d.host_path = nf.Str("hostPath");
      d.type = nf.Str("type");
      d.major = nf.Int("major", 0, 0xFFFFFFFFLL);
      d.minor = nf.Int("minor", 0, 0xFFFFFFFFLL);
      if (auto m = nf.Int("fileMode", 0, 07777)) d.file_mode = static_cast<uint32_t>(*m);
      d.permissions = nf.Str("permissions");
      if (auto u = nf.Int("uid", 0, 0xFFFFFFFELL)) d.uid = static_cast<uint32_t>(*u);
      if (auto g = nf.Int("gid", 0, 0xFFFFFFFELL)) d.gid = static_cast<uint32_t>(*g);
      RETURN_IF_ERROR(nf.error());
      if (!AbsoluteClean(d.path)) {
        return InvalidArgumentError(StrCat(at, ".path \"", d.path, "\" is not absolute"));
      }
      if (!d.host_path.empty() && !AbsoluteClean(d.host_path)) {
        return InvalidArgumentError(StrCat(at, ".hostPath \"", d.host_path, "\" is not absolute"));
      }
      if (!d.type.empty() && d.type != "c" && d.type != "b" && d.type != "u" && d.type != "p") {
        return InvalidArgumentError(StrCat(at, ".type \"", d.type, "\" is not c, b, u or p"));
      }
      if (d.permissions.find_first_not_of("rwm") != std::string::npos) {
        return InvalidArgumentError(
            StrCat(at, ".permissions \"", d.permissions, "\" is not a subset of rwm"));
      }
      out.device_nodes.push_back(std::move(d));
    }
  }
  if (const json* mounts = f.List("mounts")) {
    for (size_t i = 0; i < mounts->size(); ++i) {
      const std::string at = StrCat(where, ".mounts[", i, "]");
      const json& m = (*mounts)[i];
      if (!m.is_object()) return InvalidArgumentError(StrCat(at, " must be a mapping"));
      Fields mf(m, at);
      MountEdit e;
      e.host_path = mf.Str("hostPath", true);
      e.container_path = mf.Str("containerPath", true);
      e.type = mf.Str("type");
      e.options = mf.Strs("options");
      RETURN_IF_ERROR(mf.error());
      if (!AbsoluteClean(e.container_path)) {
        return InvalidArgumentError(
            StrCat(at, ".containerPath \"", e.container_path, "\" is not absolute"));
      }
      out.mounts.push_back(std::move(e));
    }
  }
  if (const json* hooks = f.List("hooks")) {
    static const char* const kHookNames[] = {"prestart",       "createRuntime", "createContainer",
                                             "startContainer", "poststart",     "poststop"};
    for (size_t i = 0; i < hooks->size(); ++i) {
      const std::string at = StrCat(where, ".hooks[", i, "]");
      const json& h = (*hooks)[i];
      if (!h.is_object()) return InvalidArgumentError(StrCat(at, " must be a mapping"));
      Fields hf(h, at);
      HookEdit e;
      e.hook_name = hf.Str("hookName", true);
      e.path = hf.Str("path", true);
      e.args = hf.Strs("args");
      e.env = hf.Strs("env");
      e.timeout = hf.Int("timeout", 1, 1LL << 31);
      RETURN_IF_ERROR(hf.error());
      if (std::none_of(std::begin(kHookNames), std::end(kHookNames),
                       [&](const char* n) { return e.hook_name == n; })) {
        return InvalidArgumentError(
            StrCat(at, ".hookName \"", e.hook_name,
                   "\" is not an OCI hook (prestart, createRuntime, "
                   "createContainer, startContainer, poststart, poststop)"));
      }
      if (!AbsoluteClean(e.path)) {
        return InvalidArgumentError(StrCat(at, ".path \"", e.path, "\" is not absolute"));
      }
      out.hooks.push_back(std::move(e));
    }
  }
  if (const json* gids = f.List("additionalGids")) {
    for (const json& g : *gids) {
      if (!g.is_number_integer() || g.get<int64_t>() < 0 || g.get<int64_t>() > 0xFFFFFFFELL) {
        return InvalidArgumentError(StrCat(where, ".additionalGids must be a list of gids"));
      }
      out.additional_gids.push_back(static_cast<uint32_t>(g.get<int64_t>()));
    }
  }
  RETURN_IF_ERROR(f.error());
  return out;
}

// "0.3.0" -> {0,3,0}; nullopt when malformed.
std::optional<std::array<int, 3>> ParseVersion(const std::string& v) {
  static const std::regex re(R"(v?([0-9]{1,4})\.([0-9]{1,4})\.([0-9]{1,4}))");
  std::smatch m;
  if (!std::regex_match(v, m, re)) return std::nullopt;
  return std::array<int, 3>{std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3])};
}

}  // namespace

void ContainerEdits::Append(const ContainerEdits& o) {
  env.insert(env.end(), o.env.begin(), o.env.end());
  device_nodes.insert(device_nodes.end(), o.device_nodes.begin(), o.device_nodes.end());
  mounts.insert(mounts.end(), o.mounts.begin(), o.mounts.end());
  hooks.insert(hooks.end(), o.hooks.begin(), o.hooks.end());
  additional_gids.insert(additional_gids.end(), o.additional_gids.begin(), o.additional_gids.end());
}

bool ContainerEdits::empty() const {
  return env.empty() && device_nodes.empty() && mounts.empty() && hooks.empty() &&
         additional_gids.empty();
}

std::string QualifiedName::str() const { return StrCat(vendor, "/", device_class, "=", name); }

StatusOr<QualifiedName> ParseQualifiedName(std::string_view name) {
  const std::string s(name);
  const size_t slash = s.find('/');
  const size_t eq = s.find('=');
  if (slash == std::string::npos || eq == std::string::npos || eq < slash) {
    return InvalidArgumentError(
        StrCat("CDI device name \"", s, "\" is not of the form vendor.com/class=name"));
  }
  QualifiedName q{s.substr(0, slash), s.substr(slash + 1, eq - slash - 1), s.substr(eq + 1)};
  if (!std::regex_match(q.vendor, VendorRe())) {
    return InvalidArgumentError(
        StrCat("CDI device name \"", s, "\": bad vendor \"", q.vendor, "\""));
  }
  if (!std::regex_match(q.device_class, ClassRe())) {
    return InvalidArgumentError(
        StrCat("CDI device name \"", s, "\": bad class \"", q.device_class, "\""));
  }
  if (!std::regex_match(q.name, NameRe())) {
    return InvalidArgumentError(StrCat("CDI device name \"", s, "\": bad name \"", q.name, "\""));
  }
  return q;
}

StatusOr<json> ParseYaml(std::string_view text) {
  return YamlToJson(text, {.resolve_plain = ResolvePlain});
}

StatusOr<Spec> ParseSpec(std::string_view text, std::string_view origin) {
  const std::string where(origin);
  json doc;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return InvalidArgumentError(StrCat(where, ": not valid JSON"));
  } else {
    auto parsed = ParseYaml(text);
    if (!parsed.ok()) return Annotate(parsed.status(), where);
    doc = std::move(*parsed);
  }
  if (!doc.is_object()) return InvalidArgumentError(StrCat(where, ": not a CDI spec (a mapping)"));
  Fields f(doc, where);
  Spec spec;
  spec.version = f.Str("cdiVersion", true);
  const std::string kind = f.Str("kind", true);
  RETURN_IF_ERROR(f.error());
  auto version = ParseVersion(spec.version);
  if (!version || *version < std::array<int, 3>{0, 3, 0} ||
      *version > std::array<int, 3>{1, 0, 0}) {
    return InvalidArgumentError(
        StrCat(where, ": cdiVersion \"", spec.version, "\" is not supported (0.3.0 to 1.0.0 are)"));
  }
  const size_t slash = kind.find('/');
  if (slash == std::string::npos) {
    return InvalidArgumentError(StrCat(where, ": kind \"", kind, "\" is not vendor/class"));
  }
  spec.vendor = kind.substr(0, slash);
  spec.device_class = kind.substr(slash + 1);
  if (!std::regex_match(spec.vendor, VendorRe()) ||
      !std::regex_match(spec.device_class, ClassRe())) {
    return InvalidArgumentError(StrCat(where, ": kind \"", kind, "\" is not vendor/class"));
  }
  if (doc.contains("containerEdits")) {
    ASSIGN_OR_RETURN(spec.edits,
                     DecodeEdits(doc["containerEdits"], StrCat(where, ": containerEdits")));
  }
  const json* devices = f.List("devices");
  RETURN_IF_ERROR(f.error());
  if (devices == nullptr || devices->empty()) {
    return InvalidArgumentError(StrCat(where, ": the spec lists no devices"));
  }
  for (size_t i = 0; i < devices->size(); ++i) {
    const json& d = (*devices)[i];
    const std::string at = StrCat(where, ": devices[", i, "]");
    if (!d.is_object()) return InvalidArgumentError(StrCat(at, " must be a mapping"));
    Fields df(d, at);
    Device dev;
    dev.name = df.Str("name", true);
    RETURN_IF_ERROR(df.error());
    if (!std::regex_match(dev.name, NameRe())) {
      return InvalidArgumentError(StrCat(at, ": bad device name \"", dev.name, "\""));
    }
    for (const Device& other : spec.devices) {
      if (other.name == dev.name) {
        return InvalidArgumentError(StrCat(at, ": device \"", dev.name, "\" is listed twice"));
      }
    }
    ASSIGN_OR_RETURN(dev.edits,
                     DecodeEdits(d.contains("containerEdits") ? d["containerEdits"] : json(nullptr),
                                 StrCat(at, ".containerEdits")));
    if (dev.edits.empty() && !d.contains("containerEdits")) {
      return InvalidArgumentError(StrCat(at, ": device \"", dev.name, "\" has no containerEdits"));
    }
    spec.devices.push_back(std::move(dev));
  }
  return spec;
}

}  // namespace berth::cdi
