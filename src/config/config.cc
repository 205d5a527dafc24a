#include "config/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <toml++/toml.h>

#include <algorithm>
#include <limits>
#include <sstream>

#include "common/fs.h"

namespace berth::config {

namespace {

Status SetString(const toml::node& node, std::string_view key, std::string& out) {
  auto v = node.value<std::string>();
  if (!v) return InvalidArgumentError(StrCat("setting ", key, " must be a string"));
  out = *v;
  return OkStatus();
}

// value_exact, not value: toml++'s value<int64_t>() converts a float such as
// 5e30 with a cast that is undefined behaviour when out of range (found by the
// daemon_config fuzzer), and a 64-bit value would be truncated to int silently.
Status SetInt(const toml::node& node, std::string_view key, int& out) {
  auto v = node.value_exact<int64_t>();
  if (!v) return InvalidArgumentError(StrCat("setting ", key, " must be an integer"));
  if (*v < std::numeric_limits<int>::min() || *v > std::numeric_limits<int>::max()) {
    return InvalidArgumentError(StrCat("setting ", key, " = ", *v, " is out of range"));
  }
  out = static_cast<int>(*v);
  return OkStatus();
}

Status SetBool(const toml::node& node, std::string_view key, bool& out) {
  auto v = node.value<bool>();
  if (!v) return InvalidArgumentError(StrCat("setting ", key, " must be true or false"));
  out = *v;
  return OkStatus();
}

Status SetStringList(const toml::node& node, std::string_view key, std::vector<std::string>& out) {
  const toml::array* arr = node.as_array();
  if (arr == nullptr) return InvalidArgumentError(StrCat("setting ", key, " must be a list"));
  std::vector<std::string> values;
  for (const auto& el : *arr) {
    auto v = el.value<std::string>();
    if (!v) return InvalidArgumentError(StrCat("setting ", key, " must list strings"));
    values.push_back(*v);
  }
  out = std::move(values);
  return OkStatus();
}

// A table of name = "string" entries merged into `out`; an empty string
// removes the entry.
Status MergeStringMap(const toml::node& node, std::string_view key,
                      std::map<std::string, std::string>& out) {
  const toml::table* table = node.as_table();
  if (table == nullptr) return InvalidArgumentError(StrCat("setting ", key, " must be a table"));
  for (const auto& [k, v] : *table) {
    auto value = v.value<std::string>();
    if (!value)
      return InvalidArgumentError(StrCat("setting ", key, ".", k.str(), " must be a string"));
    if (value->empty()) {
      out.erase(std::string(k.str()));
    } else {
      out[std::string(k.str())] = *value;
    }
  }
  return OkStatus();
}

// RuntimeClass handlers are DNS-1123 labels.
bool IsHandlerName(const std::string& name) {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

}  // namespace

std::vector<std::string> SplitColonList(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(':', start);
    if (end == std::string_view::npos) end = s.size();
    if (end > start) out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Status MergeToml(std::string_view toml_text, std::string_view source_name, Config& cfg) {
  toml::table doc;
  try {
    doc = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << e.source().begin;
    return InvalidArgumentError(
        StrCat("config ", source_name, " ", where.str(), ": ", e.description()));
  }
  Config next = cfg;
  for (const auto& [section_key, section_node] : doc) {
    std::string section(section_key.str());
    const toml::table* table = section_node.as_table();
    if (table == nullptr) {
      return InvalidArgumentError(
          StrCat("config ", source_name, ": top-level key ", section, " must be a [section]"));
    }
    for (const auto& [k, node] : *table) {
      std::string key = StrCat(section, ".", k.str());
      Status s;
      if (key == "grpc.socket")
        s = SetString(node, key, next.socket);
      else if (key == "grpc.image_socket")
        s = SetString(node, key, next.image_socket);
      else if (key == "paths.root")
        s = SetString(node, key, next.root);
      else if (key == "paths.state")
        s = SetString(node, key, next.state);
      else if (key == "registry.config_dir")
        s = SetString(node, key, next.registry_config_dir);
      else if (key == "registry.auth_files")
        s = SetStringList(node, key, next.registry_auth_files);
      else if (key == "registry.max_concurrent_downloads")
        s = SetInt(node, key, next.max_concurrent_downloads);
      else if (key == "registry.pull_progress_timeout_seconds")
        s = SetInt(node, key, next.pull_progress_timeout_seconds);
      else if (key == "cni.conf_dir")
        s = SetString(node, key, next.cni_conf_dir);
      else if (key == "cni.bin_dirs")
        s = SetStringList(node, key, next.cni_bin_dirs);
      else if (key == "cni.default_network")
        s = SetBool(node, key, next.cni_default_network);
      else if (key == "cni.default_network_template")
        s = SetString(node, key, next.cni_default_network_template);
      else if (key == "stream.address")
        s = SetString(node, key, next.stream_address);
      else if (key == "stream.tls_cert_file")
        s = SetString(node, key, next.stream_tls_cert_file);
      else if (key == "stream.tls_key_file")
        s = SetString(node, key, next.stream_tls_key_file);
      else if (key == "metrics.address")
        s = SetString(node, key, next.metrics_address);
      else if (key == "stats.collect_period_ms")
        s = SetInt(node, key, next.stats_collect_period_ms);
      else if (key == "stats.min_sample_interval_ms")
        s = SetInt(node, key, next.stats_min_sample_interval_ms);
      else if (key == "log.level")
        s = SetString(node, key, next.log_level);
      else if (key == "runtime.cgroup_driver")
        s = SetString(node, key, next.cgroup_driver);
      else if (key == "runtime.default_handler")
        s = SetString(node, key, next.default_handler);
      else if (key == "runtime.handlers")
        s = MergeStringMap(node, key, next.handlers);
      else if (key == "runtime.exec_mode")
        s = SetString(node, key, next.exec_mode);
      // metrics endpoint and lifecycle events
      else if (key == "metrics.allow_non_loopback")
        s = SetBool(node, key, next.metrics_allow_non_loopback);
      else if (key == "events.queue_length")
        s = SetInt(node, key, next.events_queue_length);
      else if (key == "images.pinned_images")
        s = SetStringList(node, key, next.pinned_images);
      // CDI devices
      else if (key == "cdi.spec_dirs")
        s = SetStringList(node, key, next.cdi_spec_dirs);
      else
        s = InvalidArgumentError(StrCat("unknown setting ", key));
      if (!s.ok()) return Annotate(s, StrCat("config ", source_name));
    }
  }
  cfg = std::move(next);
  return OkStatus();
}

Status LoadFiles(const std::filesystem::path& file, bool file_required,
                 const std::filesystem::path& dropin_dir, Config& cfg) {
  std::error_code ec;
  if (std::filesystem::exists(file, ec)) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(file));
    RETURN_IF_ERROR(MergeToml(text, file.string(), cfg));
  } else if (file_required) {
    return NotFoundError(StrCat("config file ", file.string(), " does not exist"));
  }
  if (!dropin_dir.empty() && std::filesystem::is_directory(dropin_dir, ec)) {
    std::vector<std::filesystem::path> dropins;
    for (const auto& entry : std::filesystem::directory_iterator(dropin_dir, ec)) {
      if (entry.path().extension() == ".toml") dropins.push_back(entry.path());
    }
    std::sort(dropins.begin(), dropins.end());
    for (const auto& p : dropins) {
      ASSIGN_OR_RETURN(std::string text, ReadFile(p));
      RETURN_IF_ERROR(MergeToml(text, p.string(), cfg));
    }
  }
  return OkStatus();
}

Status Config::Validate() const {
  auto require_abs = [](std::string_view key, const std::string& path) -> Status {
    if (path.empty() || path[0] != '/') {
      return InvalidArgumentError(StrCat(key, " must be an absolute path, got \"", path, "\""));
    }
    return OkStatus();
  };
  RETURN_IF_ERROR(require_abs("grpc.socket", socket));
  RETURN_IF_ERROR(require_abs("paths.root", root));
  RETURN_IF_ERROR(require_abs("paths.state", state));
  RETURN_IF_ERROR(require_abs("registry.config_dir", registry_config_dir));
  RETURN_IF_ERROR(require_abs("cni.conf_dir", cni_conf_dir));
  if (!cni_default_network_template.empty()) {
    RETURN_IF_ERROR(require_abs("cni.default_network_template", cni_default_network_template));
  }
  if (socket.size() >= 108) {
    return InvalidArgumentError(
        StrCat("grpc.socket path is too long for a Unix socket (", socket.size(), " >= 108)"));
  }
  if (!image_socket.empty()) {
    RETURN_IF_ERROR(require_abs("grpc.image_socket", image_socket));
    if (image_socket.size() >= 108) {
      return InvalidArgumentError(StrCat("grpc.image_socket path is too long for a Unix socket (",
                                         image_socket.size(), " >= 108)"));
    }
    if (image_socket == socket) {
      return InvalidArgumentError(
          "grpc.image_socket must differ from grpc.socket (which serves images too)");
    }
  }
  if (max_concurrent_downloads < 1 || max_concurrent_downloads > 64) {
    return InvalidArgumentError("registry.max_concurrent_downloads must be between 1 and 64");
  }
  if (pull_progress_timeout_seconds < 1) {
    return InvalidArgumentError("registry.pull_progress_timeout_seconds must be at least 1");
  }
  if (stats_collect_period_ms < 0 || stats_collect_period_ms > 3'600'000) {
    return InvalidArgumentError("stats.collect_period_ms must be between 0 (off) and 3600000");
  }
  if (stats_min_sample_interval_ms < 0 || stats_min_sample_interval_ms > 60'000) {
    return InvalidArgumentError("stats.min_sample_interval_ms must be between 0 and 60000");
  }
  static constexpr std::string_view kLevels[] = {"trace", "debug", "info", "warn", "error"};
  if (std::find(std::begin(kLevels), std::end(kLevels), log_level) == std::end(kLevels)) {
    return InvalidArgumentError(
        StrCat("log.level \"", log_level, "\" is not one of trace, debug, info, warn, error"));
  }
  if (cgroup_driver != "cgroupfs" && cgroup_driver != "systemd") {
    return InvalidArgumentError(
        StrCat("runtime.cgroup_driver \"", cgroup_driver, "\" is not cgroupfs or systemd"));
  }
  for (const auto& [name, binary] : handlers) {
    if (!IsHandlerName(name)) {
      return InvalidArgumentError(StrCat("runtime.handlers: \"", name,
                                         "\" is not a valid handler name (lower-case letters, "
                                         "digits and '-', at most 63)"));
    }
    if (binary.empty()) {
      return InvalidArgumentError(StrCat("runtime.handlers.", name, " names no binary"));
    }
  }
  if (exec_mode != "native" && exec_mode != "runc") {
    return InvalidArgumentError(
        StrCat("runtime.exec_mode \"", exec_mode, "\" is not native or runc"));
  }
  if (!default_handler.empty() && !handlers.contains(default_handler)) {
    return InvalidArgumentError(
        StrCat("runtime.default_handler \"", default_handler, "\" is not one of runtime.handlers"));
  }
  if (root == state) return InvalidArgumentError("paths.root and paths.state must differ");
  for (const std::string& d : cdi_spec_dirs) RETURN_IF_ERROR(require_abs("cdi.spec_dirs", d));
  if (stream_address.empty()) {
    return InvalidArgumentError("stream.address must be host:port (e.g. 127.0.0.1:0)");
  }
  if (stream_tls_cert_file.empty() != stream_tls_key_file.empty()) {
    return InvalidArgumentError(
        "stream.tls_cert_file and stream.tls_key_file must be set together (HTTPS) or both "
        "left empty (HTTP)");
  }
  if (!stream_tls_cert_file.empty()) {
    RETURN_IF_ERROR(require_abs("stream.tls_cert_file", stream_tls_cert_file));
    RETURN_IF_ERROR(require_abs("stream.tls_key_file", stream_tls_key_file));
  }
  if (!metrics_address.empty()) {
    StatusOr<ListenAddress> a = ParseListenAddress(metrics_address);
    if (!a.ok()) return Annotate(a.status(), "metrics.address");
    if (!a->loopback && !metrics_allow_non_loopback) {
      return InvalidArgumentError(
          StrCat("metrics.address \"", metrics_address,
                 "\" is not a loopback address; the metrics endpoint has no authentication, so "
                 "serving it beyond this host needs metrics.allow_non_loopback = true "
                 "(--metrics-allow-non-loopback)"));
    }
  }
  if (events_queue_length < 1 || events_queue_length > 1000000) {
    return InvalidArgumentError("events.queue_length must be between 1 and 1000000");
  }
  return OkStatus();
}

StatusOr<ListenAddress> ParseListenAddress(std::string_view address) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError(StrCat("address \"", address, "\" ", why,
                                       " (expected host:port, e.g. 127.0.0.1:9153 or [::1]:9153)"));
  };
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return bad("has no port");
  std::string_view host = address.substr(0, colon), port = address.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string_view::npos) {
    return bad("has no valid port");
  }
  ListenAddress out;
  out.port = std::stoi(std::string(port));
  if (out.port > 65535) return bad("has a port above 65535");
  if (host.starts_with('[')) {
    if (!host.ends_with(']')) return bad("has an unclosed [");
    host = host.substr(1, host.size() - 2);
    in6_addr a6{};
    if (::inet_pton(AF_INET6, std::string(host).c_str(), &a6) != 1)
      return bad("has a bad IPv6 host");
    out.ip = std::string(host);
    out.loopback = IN6_IS_ADDR_LOOPBACK(&a6);
    return out;
  }
  if (host.empty()) {
    out.ip = "0.0.0.0";  // as in Go: ":port" listens on every interface
    return out;
  }
  if (host == "localhost") {
    out.ip = "127.0.0.1";
    out.loopback = true;
    return out;
  }
  in_addr a4{};
  if (::inet_pton(AF_INET, std::string(host).c_str(), &a4) != 1) {
    return bad("needs an IP address or localhost as host (names are not looked up)");
  }
  out.ip = std::string(host);
  out.loopback = (ntohl(a4.s_addr) >> 24) == 127;
  return out;
}

std::string Config::ToToml() const {
  auto list = [](const std::vector<std::string>& v) {
    toml::array a;
    for (const auto& s : v) a.push_back(s);
    return a;
  };
  toml::table handler_table;
  for (const auto& [name, binary] : handlers) handler_table.insert(name, binary);
  // A removed default is printed as removed, so that the output loads back
  // to the same configuration.
  for (const auto& [name, binary] : Config().handlers) {
    if (!handlers.contains(name)) handler_table.insert(name, "");
  }
  toml::table doc{
      {"grpc", toml::table{{"socket", socket}, {"image_socket", image_socket}}},
      {"paths", toml::table{{"root", root}, {"state", state}}},
      {"registry", toml::table{{"config_dir", registry_config_dir},
                               {"auth_files", list(registry_auth_files)},
                               {"max_concurrent_downloads", max_concurrent_downloads},
                               {"pull_progress_timeout_seconds", pull_progress_timeout_seconds}}},
      {"cni", toml::table{{"conf_dir", cni_conf_dir},
                          {"bin_dirs", list(cni_bin_dirs)},
                          {"default_network", cni_default_network},
                          {"default_network_template", cni_default_network_template}}},
      {"stream", toml::table{{"address", stream_address},
                             {"tls_cert_file", stream_tls_cert_file},
                             {"tls_key_file", stream_tls_key_file}}},
      {"metrics", toml::table{{"address", metrics_address}}},
      {"stats", toml::table{{"collect_period_ms", stats_collect_period_ms},
                            {"min_sample_interval_ms", stats_min_sample_interval_ms}}},
      {"log", toml::table{{"level", log_level}}},
      {"runtime", toml::table{{"cgroup_driver", cgroup_driver},
                              {"default_handler", default_handler},
                              {"exec_mode", exec_mode},
                              {"handlers", handler_table}}},
  };
  // Metrics endpoint and lifecycle events.
  doc["metrics"].as_table()->insert("allow_non_loopback", metrics_allow_non_loopback);
  doc.insert("events", toml::table{{"queue_length", events_queue_length}});
  doc.insert("images", toml::table{{"pinned_images", list(pinned_images)}});
  doc.insert("cdi", toml::table{{"spec_dirs", list(cdi_spec_dirs)}});
  // Basic strings only ("...", with escapes): toml++ 3.3 prints a value that
  // starts with a newline as a multi-line literal, where TOML drops the first
  // newline, and without multi-line strings as a literal with a raw newline,
  // which does not parse; either way the value would not load back (found by
  // the daemon_config fuzzer).
  constexpr auto kFlags = toml::toml_formatter::default_flags &
                          ~toml::format_flags::allow_multi_line_strings &
                          ~toml::format_flags::allow_literal_strings;
  std::ostringstream out;
  out << toml::toml_formatter(doc, kFlags) << "\n";
  return out.str();
}

}  // namespace berth::config
