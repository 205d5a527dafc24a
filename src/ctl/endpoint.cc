#include "ctl/endpoint.h"

#include <cctype>
#include <cmath>
#include <filesystem>
#include <system_error>

#include "common/fs.h"
#include "ctl/table.h"
#include "ctl/yaml_reader.h"

namespace berth::ctl {
namespace {

StatusOr<bool> ParseGoBool(const std::string& v) {
  if (v == "1" || v == "t" || v == "T" || v == "TRUE" || v == "true" || v == "True") return true;
  if (v == "0" || v == "f" || v == "F" || v == "FALSE" || v == "false" || v == "False") {
    return false;
  }
  return InvalidArgumentError(
      StrCat("strconv.ParseBool: parsing ", GoQuote(v), ": invalid syntax"));
}

StatusOr<int> ParseGoInt(const std::string& v) {
  size_t i = 0;
  if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
  bool ok = i < v.size();
  for (size_t k = i; k < v.size(); ++k) ok = ok && std::isdigit(static_cast<unsigned char>(v[k]));
  if (!ok) {
    return InvalidArgumentError(StrCat("strconv.Atoi: parsing ", GoQuote(v), ": invalid syntax"));
  }
  long long n = std::strtoll(v.c_str(), nullptr, 10);
  if (n > INT32_MAX || n < INT32_MIN) {
    return InvalidArgumentError(
        StrCat("strconv.Atoi: parsing ", GoQuote(v), ": value out of range"));
  }
  return static_cast<int>(n);
}

}  // namespace

StatusOr<ConfigFile> ParseConfigFile(std::string_view text) {
  ASSIGN_OR_RETURN(nlohmann::json doc, ParseYaml(text, /*resolve_scalars=*/false));
  ConfigFile cfg;
  if (!doc.is_object()) return cfg;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& name = it.key();
    std::string value = it.value().is_string() ? it.value().get<std::string>() : "";
    auto wrap = [&name](const Status& s) {
      return Annotate(s, StrCat("parsing config option '", name, "'"));
    };
    if (name == "runtime-endpoint") {
      cfg.runtime_endpoint = value;
    } else if (name == "image-endpoint") {
      cfg.image_endpoint = value;
    } else if (name == "timeout") {
      StatusOr<int> t = ParseGoInt(value);
      if (!t.ok()) return wrap(t.status());
      cfg.timeout_seconds = *t;
    } else if (name == "debug" || name == "pull-image-on-create" || name == "disable-pull-on-run") {
      StatusOr<bool> b = ParseGoBool(value);
      if (!b.ok()) return wrap(b.status());
      if (name == "debug") cfg.debug = *b;
      if (name == "pull-image-on-create") cfg.pull_image_on_create = *b;
      if (name == "disable-pull-on-run") cfg.disable_pull_on_run = *b;
    } else {
      return InvalidArgumentError(StrCat("Config option '", name, "' is not valid"));
    }
  }
  return cfg;
}

StatusOr<ConfigFile> LoadConfigFile(const std::string& path, const std::string& exe_dir) {
  std::string chosen = path;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    chosen = (std::filesystem::path(exe_dir) / "crictl.yaml").string();
    if (!std::filesystem::exists(chosen, ec)) {
      return NotFoundError(StrCat("load config file: stat ", path, ": no such file or directory"));
    }
  }
  StatusOr<std::string> text = ReadFile(chosen);
  if (!text.ok()) return Annotate(text.status(), "load config file");
  StatusOr<ConfigFile> cfg = ParseConfigFile(*text);
  if (!cfg.ok()) return Annotate(cfg.status(), StrCat("load config file ", chosen));
  return cfg;
}

StatusOr<std::chrono::milliseconds> ParseGoDuration(std::string_view text) {
  auto invalid = [text]() {
    return InvalidArgumentError(StrCat("time: invalid duration ", GoQuote(text)));
  };
  std::string_view s = text;
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return std::chrono::milliseconds(0);
  if (s.empty()) return invalid();
  double total_ns = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    size_t int_digits = i;
    size_t frac_digits = 0;
    if (i < s.size() && s[i] == '.') {
      ++i;
      size_t start = i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      frac_digits = i - start;
    }
    if (int_digits == 0 && frac_digits == 0) return invalid();
    double number =
        std::stod(std::string(s.substr(0, i)) == "." ? "0" : std::string(s.substr(0, i)));
    s.remove_prefix(i);
    size_t u = 0;
    while (u < s.size() && !std::isdigit(static_cast<unsigned char>(s[u])) && s[u] != '.') ++u;
    std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    double scale;
    if (unit.empty()) {
      return InvalidArgumentError(StrCat("time: missing unit in duration ", GoQuote(text)));
    } else if (unit == "ns") {
      scale = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      scale = 1e3;
    } else if (unit == "ms") {
      scale = 1e6;
    } else if (unit == "s") {
      scale = 1e9;
    } else if (unit == "m") {
      scale = 60e9;
    } else if (unit == "h") {
      scale = 3600e9;
    } else {
      return InvalidArgumentError(
          StrCat("time: unknown unit ", GoQuote(unit), " in duration ", GoQuote(text)));
    }
    total_ns += number * scale;
  }
  if (total_ns > 9.2e18) return invalid();
  auto ms = static_cast<int64_t>(std::floor(total_ns / 1e6));
  return std::chrono::milliseconds(neg ? -ms : ms);
}

StatusOr<Settings> ResolveSettings(const GlobalFlags& flags,
                                   const std::optional<ConfigFile>& file) {
  Settings s;
  auto pick = [&](const std::optional<std::string>& flag, const std::string* from_file,
                  std::string_view what) -> StatusOr<std::string> {
    if (flag.has_value()) {
      if (flag->empty()) return InvalidArgumentError(StrCat("--", what, " is not set"));
      return *flag;
    }
    if (from_file != nullptr && !from_file->empty()) return *from_file;
    return std::string();
  };
  ASSIGN_OR_RETURN(
      s.runtime_endpoint,
      pick(flags.runtime_endpoint, file ? &file->runtime_endpoint : nullptr, "runtime-endpoint"));
  ASSIGN_OR_RETURN(
      s.image_endpoint,
      pick(flags.image_endpoint, file ? &file->image_endpoint : nullptr, "image-endpoint"));
  if (s.runtime_endpoint.empty()) s.runtime_endpoint = std::string(kDefaultEndpoint);
  if (s.image_endpoint.empty()) s.image_endpoint = s.runtime_endpoint;

  if (flags.timeout.has_value()) {
    StatusOr<std::chrono::milliseconds> t = ParseGoDuration(*flags.timeout);
    if (!t.ok()) {
      return InvalidArgumentError(StrCat("invalid value ", GoQuote(*flags.timeout),
                                         " for flag -t: ", t.status().message()));
    }
    s.timeout = t->count() > 0 ? *t : kDefaultTimeout;
  } else if (file && file->timeout_seconds > 0) {
    s.timeout = std::chrono::seconds(file->timeout_seconds);
  }
  if (flags.debug.has_value()) {
    s.debug = *flags.debug;
  } else if (file) {
    s.debug = file->debug;
  }
  if (file) {
    s.pull_image_on_create = file->pull_image_on_create;
    s.disable_pull_on_run = file->disable_pull_on_run;
  }
  return s;
}

StatusOr<std::string> EndpointToGrpcTarget(std::string_view endpoint) {
  // Go's url.Parse: a scheme is letters, digits, '+', '-', '.' after a letter.
  size_t colon = endpoint.find(':');
  bool has_scheme = colon != std::string_view::npos && colon > 0 &&
                    std::isalpha(static_cast<unsigned char>(endpoint[0]));
  for (size_t i = 0; has_scheme && i < colon; ++i) {
    char c = endpoint[i];
    has_scheme = std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  }
  if (!has_scheme) {
    if (endpoint.empty()) return InvalidArgumentError("endpoint is empty");
    return StrCat("unix:", endpoint);  // a bare socket path
  }
  std::string scheme(endpoint.substr(0, colon));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view rest = endpoint.substr(colon + 1);
  if (scheme == "tcp") return InvalidArgumentError("only support unix socket endpoint");
  if (scheme != "unix") {
    return InvalidArgumentError(StrCat("protocol ", GoQuote(scheme), " not supported"));
  }
  std::string_view path = rest;
  if (rest.substr(0, 2) == "//") {
    // unix://host/path: like crictl, the host part is not part of the path.
    std::string_view after = rest.substr(2);
    size_t slash = after.find('/');
    path = slash == std::string_view::npos ? std::string_view() : after.substr(slash);
  }
  size_t cut = path.find_first_of("?#");
  if (cut != std::string_view::npos) path = path.substr(0, cut);
  if (path.empty()) {
    return InvalidArgumentError(StrCat("endpoint ", GoQuote(endpoint), " names no socket path"));
  }
  return StrCat("unix:", path);
}

}  // namespace berth::ctl
