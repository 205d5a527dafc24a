// `berthd config default`: the configuration as TOML with a comment on every
// section and setting, as `containerd config default` and `crio config` print
// theirs. The values come from ToToml(), so the two never disagree; this file
// adds the order and the words.
#include <toml++/toml.h>

#include <cstdio>
#include <set>
#include <sstream>

#include "config/config.h"

namespace berth::config {

namespace {

struct SectionDoc {
  std::string_view name;
  std::string_view comment;
};

struct SettingDoc {
  std::string_view key;  // section.name
  std::string_view comment;
};

// In the order they are printed. A section that ToToml() prints and this list
// lacks is printed last, without comments (config_test requires a comment for
// every setting, so that does not last).
constexpr SectionDoc kSections[] = {
    {"grpc",
     "The CRI endpoint: the kubelet's --container-runtime-endpoint and crictl's\n"
     "runtime-endpoint are unix://<socket>."},
    {"paths", "Where berthd keeps its data."},
    {"registry", "Image pulls."},
    {"cni", "Pod networking through CNI plugins."},
    {"stream",
     "The streaming server of exec, attach and port-forward: the kubelet proxies\n"
     "clients to it."},
    {"metrics", "Prometheus metrics of berthd itself (pulls, RPCs, containers)."},
    {"stats",
     "Container and pod statistics (ContainerStats, PodSandboxStats, cAdvisor-style\n"
     "metrics)."},
    {"events",
     "Container lifecycle events (GetContainerEvents), which the kubelet's evented\n"
     "PLEG consumes."},
    {"log", "berthd logs one line per event to stderr (journald under systemd)."},
    {"images", "Images that the kubelet's image garbage collection must keep."},
    {"cdi", "Container Device Interface specs (devices from DRA drivers and device plugins)."},
    {"runtime", "OCI runtimes (runc, crun) and cgroups."},
};

constexpr SettingDoc kSettings[] = {
    {"grpc.socket",
     "Unix socket of the CRI gRPC API (mode 0660; its directory is created). A stale\n"
     "socket is replaced; a live one (another berthd) is not. Flag: --socket."},
    {"grpc.image_socket",
     "A second Unix socket serving only the ImageService (both API versions), for a\n"
     "kubelet started with --image-service-endpoint; empty: off. Flag: --image-socket."},
    {"paths.root",
     "Persistent data: metadata (meta.db), image content and layers, writable layers of\n"
     "containers, CNI results. Flag: --root."},
    {"paths.state",
     "Runtime state, gone at reboot: pod directories, pinned namespaces, OCI bundles,\n"
     "runtime state. Flag: --state."},
    {"registry.config_dir",
     "Registry hosts in containerd's layout: <config_dir>/<host>/hosts.toml names the\n"
     "mirrors and the upstream of <host>, with TLS settings. Flag: --registry-config-dir."},
    {"registry.auth_files",
     "Docker-style config.json files with registry credentials; the first with an entry\n"
     "for the host wins. A PullImage request's own credentials win over them all.\n"
     "Flag: --registry-auth-file (repeatable)."},
    {"registry.max_concurrent_downloads",
     "Layers downloaded at once, across all pulls (1 to 64). Flag: --max-concurrent-downloads."},
    {"registry.pull_progress_timeout_seconds",
     "A pull that receives nothing for this many seconds fails. Flag: --pull-progress-timeout."},
    {"cni.conf_dir",
     "CNI network configurations: the first loadable *.conflist, *.conf or *.json (in\n"
     "file name order) whose plugins all exist is the pod network. Flag: --cni-conf-dir."},
    {"cni.bin_dirs",
     "Directories searched for CNI plugins, in order (Debian installs them in\n"
     "/usr/lib/cni). Flag: --cni-bin-dir (colon-separated)."},
    {"cni.default_network",
     "When the kubelet sends its node's pod CIDR (UpdateRuntimeConfig) and conf_dir holds\n"
     "no network config, write 99-berth-default.conflist for that CIDR from\n"
     "default_network_template, so a single-node cluster needs no CNI add-on. A directory\n"
     "with a config of its own is never touched. Flag: --cni-default-network."},
    {"cni.default_network_template",
     "Template of that config; empty: the built-in one (a bridge \"berth0\" with host-local\n"
     "addresses from the pod CIDR, IP masquerading, then portmap and loopback). Placeholders:\n"
     "{{.PodCIDR}} (first CIDR), {{.PodCIDRRanges}} (host-local \"ranges\", JSON),\n"
     "{{.Routes}} (default routes, JSON), {{.IPAMDataDir}} (<paths.state>/cni/networks).\n"
     "Flag: --cni-default-network-template."},
    {"stream.address",
     "host:port of the streaming server; port 0 picks a free port. Flag: --stream-address."},
    {"stream.tls_cert_file",
     "PEM certificate (chain) of the streaming server: with tls_key_file, it serves HTTPS;\n"
     "both empty: plain HTTP (keep stream.address on loopback then). Flag: --stream-tls-cert."},
    {"stream.tls_key_file", "PEM private key of tls_cert_file. Flag: --stream-tls-key."},
    {"metrics.address",
     "host:port of the Prometheus endpoint (GET /metrics); empty: off. Flag: --metrics-address."},
    {"metrics.allow_non_loopback",
     "The endpoint has no authentication: an address other than loopback is refused\n"
     "unless this is true. Flag: --metrics-allow-non-loopback."},
    {"stats.collect_period_ms",
     "Period of the background sweep of cgroup samples and writable-layer sizes, in\n"
     "milliseconds; 0: none (stats calls then sample on demand). Flag: --stats-collect-period-ms."},
    {"stats.min_sample_interval_ms",
     "Stats calls reuse a cgroup sample younger than this many milliseconds.\n"
     "Flag: --stats-min-sample-interval-ms."},
    {"events.queue_length",
     "Events a GetContainerEvents client may fall behind by before its oldest are\n"
     "dropped (1 to 1000000). Flag: --events-queue-length."},
    {"images.pinned_images",
     "Images reported pinned (image GC skips them): references, image IDs, or name\n"
     "prefixes ending in '*'. Flag: --pinned-image (repeatable)."},
    {"cdi.spec_dirs",
     "CDI spec directories, later ones taking priority; read again at each create that\n"
     "asks for a device. Flag: --cdi-spec-dir (colon-separated)."},
    {"log.level", "trace, debug, info, warn or error. Flag: --log-level."},
    {"runtime.cgroup_driver",
     "cgroupfs, or systemd (the kubelet's cgroupDriver must match; systemd passes\n"
     "--systemd-cgroup to every runtime call). Flag: --cgroup-driver."},
    {"runtime.default_handler",
     "Handler of pods that name no RuntimeClass handler; empty: crun where a test\n"
     "container runs with it on this host (not on hybrid cgroup v1/v2 hosts), else runc.\n"
     "Flag: --default-runtime-handler."},
    {"runtime.handlers",
     "RuntimeClass handler name = OCI runtime binary (a path, or a name looked up in\n"
     "PATH). A handler whose binary is missing is left out; each is probed with a test\n"
     "container at start-up. In a drop-in, NAME = \"\" removes one.\n"
     "Flag: --runtime-handler NAME=BINARY (repeatable)."},
};

void PrintComment(std::ostream& out, std::string_view text) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    out << "# " << text.substr(start, end - start) << "\n";
    start = end + 1;
  }
}

// TOML basic strings accept JSON's escapes for everything below.
std::string QuoteString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string FormatValue(const toml::node& node) {
  if (auto s = node.value_exact<std::string>()) return QuoteString(*s);
  if (auto b = node.value_exact<bool>()) return *b ? "true" : "false";
  if (auto i = node.value_exact<int64_t>()) return std::to_string(*i);
  if (const toml::array* a = node.as_array()) {
    std::string out = "[";
    for (size_t i = 0; i < a->size(); ++i) {
      if (i > 0) out += ", ";
      out += FormatValue(*a->get(i));
    }
    return out + "]";
  }
  // Not used by Config today: let toml++ format it as the value of a one-key table.
  toml::table wrapper;
  node.visit([&](const auto& n) { wrapper.insert("v", n); });
  std::ostringstream other;
  other << wrapper;
  std::string text = other.str();
  return text.starts_with("v = ") ? text.substr(4) : text;
}

// Prints `table` (a sub-table such as [runtime.handlers]) under its header.
void PrintTable(std::ostream& out, std::string_view header, const toml::table& table) {
  out << "[" << header << "]\n";
  for (const auto& [k, v] : table) {
    out << QuoteString(k.str()) << " = " << FormatValue(v) << "\n";
  }
}

}  // namespace

std::string Config::ToCommentedToml() const {
  toml::table doc = toml::parse(ToToml());
  std::ostringstream out;
  PrintComment(out,
               "berthd configuration. berthd reads, in increasing precedence: its built-in\n"
               "defaults, /etc/berth/config.toml (or --config FILE), every *.toml in\n"
               "/etc/berth/berth.d/ (or --config-dropin-dir) in file name order, and its\n"
               "command-line flags. Unknown keys are errors. `berthd config` prints the\n"
               "effective configuration, `berthd config default` this file with the defaults.");
  std::set<std::string> printed;
  auto print_section = [&](std::string_view name, std::string_view comment) {
    const toml::table* section = doc[name].as_table();
    if (section == nullptr) return;
    out << "\n";
    if (!comment.empty()) PrintComment(out, comment);
    out << "[" << name << "]\n";
    std::vector<std::pair<std::string, const toml::table*>> subtables;
    std::set<std::string> done;
    // Documented settings first, in the documented order, then any others.
    for (const SettingDoc& s : kSettings) {
      std::string_view key = s.key;
      if (key.substr(0, key.find('.')) != name) continue;
      std::string leaf(key.substr(key.find('.') + 1));
      const toml::node* node = section->get(leaf);
      if (node == nullptr) continue;
      done.insert(leaf);
      if (const toml::table* t = node->as_table()) {
        subtables.emplace_back(leaf, t);
        continue;
      }
      PrintComment(out, s.comment);
      out << leaf << " = " << FormatValue(*node) << "\n";
    }
    for (const auto& [k, v] : *section) {
      std::string leaf(k.str());
      if (done.contains(leaf)) continue;
      if (const toml::table* t = v.as_table()) {
        subtables.emplace_back(leaf, t);
      } else {
        out << leaf << " = " << FormatValue(v) << "\n";
      }
    }
    for (const auto& [leaf, t] : subtables) {
      out << "\n";
      for (const SettingDoc& s : kSettings) {
        if (s.key == StrCat(name, ".", leaf)) PrintComment(out, s.comment);
      }
      PrintTable(out, StrCat(name, ".", leaf), *t);
    }
    printed.insert(std::string(name));
  };
  for (const SectionDoc& s : kSections) print_section(s.name, s.comment);
  for (const auto& [k, v] : doc) {
    if (!printed.contains(std::string(k.str()))) print_section(k.str(), "");
  }
  return out.str();
}

std::vector<std::string> UndocumentedSettings() {
  toml::table doc = toml::parse(Config::Defaults().ToToml());
  std::set<std::string> documented;
  for (const SettingDoc& s : kSettings) documented.insert(std::string(s.key));
  std::set<std::string> sections;
  for (const SectionDoc& s : kSections) sections.insert(std::string(s.name));
  std::vector<std::string> missing;
  for (const auto& [section, node] : doc) {
    if (!sections.contains(std::string(section.str()))) {
      missing.push_back(StrCat("[", section.str(), "]"));
    }
    const toml::table* t = node.as_table();
    if (t == nullptr) continue;
    for (const auto& [k, v] : *t) {
      std::string key = StrCat(section.str(), ".", k.str());
      if (!documented.contains(key)) missing.push_back(key);
    }
  }
  for (const SettingDoc& s : kSettings) {
    std::string_view key = s.key;
    const toml::node* n = doc.at_path(key).node();
    if (n == nullptr) missing.push_back(StrCat("documented but not a setting: ", key));
  }
  return missing;
}

}  // namespace berth::config
