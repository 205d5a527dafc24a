#include "network/cni.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/fs.h"
#include "network/netns.h"
#include "network/plugin_exec.h"

namespace berth::network {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr std::string_view kLoopbackConfig =
    R"({"cniVersion":"1.0.0","name":"cni-loopback","plugins":[{"type":"loopback"}]})";
constexpr std::string_view kLoopbackNetwork = "cni-loopback";
constexpr std::string_view kLoopbackIfname = "lo";
constexpr std::string_view kCacheKind = "cniCacheV1";
constexpr std::string_view kDefaultPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// A string member, or "" when it is missing or not a string: cache files and
// plugin output are data from outside, and json::value() throws on a type
// mismatch.
std::string StringField(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// dump() that cannot throw on invalid UTF-8 (it is replaced).
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// One network list attached (or to be attached) to one interface of a pod.
struct Attachment {
  json conflist;
  std::string name;
  std::string version;
  std::string ifname;
};

// Everything besides the config that a plugin run needs.
struct Invocation {
  std::string container_id;
  std::string netns;
  json cni_args;         // [[key, value], ...], kept in order for CNI_ARGS and the cache
  json capability_args;  // {"portMappings": [...]}
};

std::array<int, 3> ParseVersion(std::string_view v) {
  std::array<int, 3> out{0, 0, 0};
  size_t part = 0;
  for (char c : v) {
    if (c == '.') {
      if (++part == out.size()) break;
    } else if (c >= '0' && c <= '9') {
      out[part] = out[part] * 10 + (c - '0');
    } else {
      break;
    }
  }
  return out;
}

bool VersionAtLeast(std::string_view v, std::array<int, 3> min) { return ParseVersion(v) >= min; }

bool IsSafeId(std::string_view id) {
  if (id.empty() || id == "." || id == "..") return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

std::string StripPrefixLength(const std::string& cidr) { return cidr.substr(0, cidr.find('/')); }

bool IsIpv4(const std::string& ip) {
  in_addr a;
  return ::inet_pton(AF_INET, ip.c_str(), &a) == 1;
}

StatusOr<Attachment> MakeAttachment(std::string_view raw, std::string ifname,
                                    const std::string& what) {
  json j = json::parse(raw, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("plugins") || !j["plugins"].is_array()) {
    return InvalidArgumentError(StrCat("CNI network config ", what, " is not a network list"));
  }
  Attachment a;
  a.name = StringField(j, "name");
  a.version = StringField(j, "cniVersion");
  if (!IsSafeId(a.name)) {
    return InvalidArgumentError(StrCat("CNI network name \"", a.name, "\" in ", what,
                                       " is empty or has characters other than [A-Za-z0-9_.-]"));
  }
  for (const auto& p : j["plugins"]) {
    if (!p.is_object() || !p.contains("type") || !p["type"].is_string()) {
      return InvalidArgumentError(
          StrCat("CNI network config ", what, " has a plugin without a type"));
    }
  }
  a.conflist = std::move(j);
  a.ifname = std::move(ifname);
  return a;
}

std::string CniArgsString(const json& args) {
  std::string out;
  for (const auto& kv : args) {
    // Pairs of strings; anything else (a damaged cache entry) is left out.
    if (!kv.is_array() || kv.size() != 2 || !kv[0].is_string() || !kv[1].is_string()) continue;
    if (!out.empty()) out += ';';
    out += StrCat(kv[0].get<std::string>(), "=", kv[1].get<std::string>());
  }
  return out;
}

json PortMappingsJson(const std::vector<PortMapping>& mappings) {
  json out = json::array();
  for (const auto& m : mappings) {
    if (m.host_port <= 0) continue;
    std::string protocol = m.protocol.empty() ? "tcp" : m.protocol;
    std::transform(protocol.begin(), protocol.end(), protocol.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out.push_back({{"hostPort", m.host_port},
                   {"containerPort", m.container_port},
                   {"protocol", protocol},
                   {"hostIP", m.host_ip}});
  }
  return out;
}

// The plugin's error, as the person reading the pod's events needs it.
Status PluginError(std::string_view command, const std::string& type, const Attachment& att,
                   const Invocation& inv, const ExecOutput& out) {
  std::string prefix = StrCat("CNI plugin \"", type, "\" ", command, " of network \"", att.name,
                              "\" for container ", inv.container_id, " failed: ");
  json j = json::parse(out.out, nullptr, false);
  if (j.is_object() && j.contains("msg") && j["msg"].is_string()) {
    std::string msg = j["msg"].get<std::string>();
    if (j.contains("details") && j["details"].is_string() &&
        !j["details"].get<std::string>().empty()) {
      msg += StrCat(" (", j["details"].get<std::string>(), ")");
    }
    if (j.contains("code") && j["code"].is_number_integer()) {
      msg += StrCat(" [CNI error code ", j["code"].get<int64_t>(), "]");
    }
    return UnknownError(prefix + msg);
  }
  std::string how = out.signaled ? StrCat("killed by signal ", out.signal)
                                 : StrCat("exited with status ", out.exit_code);
  auto tail = [](std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    if (s.size() > 2048) s = "..." + s.substr(s.size() - 2048);
    return s;
  };
  std::string msg = how;
  if (!out.err.empty()) msg += StrCat("; stderr: ", tail(out.err));
  if (!out.out.empty()) msg += StrCat("; stdout: ", tail(out.out));
  return UnknownError(prefix + msg);
}

}  // namespace

// Per-container-id mutexes; entries exist only while someone holds or waits.

namespace {

// The plugin-running half of CniManager, free of its locking.
class Runner {
 public:
  explicit Runner(const CniOptions& options) : options_(options) {}

  StatusOr<fs::path> FindPlugin(const std::string& type) const {
    if (!IsSafeId(type)) {
      return InvalidArgumentError(
          StrCat("CNI plugin type \"", type, "\" is not a plain file name"));
    }
    for (const auto& dir : options_.bin_dirs) {
      fs::path p = fs::path(dir) / type;
      if (::access(p.c_str(), X_OK) == 0 && !fs::is_directory(p)) return p;
    }
    return FailedPreconditionError(StrCat("CNI plugin \"", type, "\" not found in ", CniPath()));
  }

  // Runs one plugin; for ADD returns its result, for DEL an empty object.
  StatusOr<json> Run(std::string_view command, const Attachment& att, const json& plugin,
                     const json* prev_result, const Invocation& inv) const {
    const std::string type = plugin["type"].get<std::string>();
    ASSIGN_OR_RETURN(fs::path binary, FindPlugin(type));
    json conf = plugin;
    conf["name"] = att.name;
    conf["cniVersion"] = att.version;
    if (prev_result != nullptr) {
      conf["prevResult"] = *prev_result;
    } else {
      conf.erase("prevResult");
    }
    // Only the capabilities the plugin declares, as libcni does.
    if (plugin.contains("capabilities") && plugin["capabilities"].is_object()) {
      for (const auto& [cap, enabled] : plugin["capabilities"].items()) {
        if (enabled != true || !inv.capability_args.contains(cap)) continue;
        if (!conf.contains("runtimeConfig") || !conf["runtimeConfig"].is_object()) {
          conf["runtimeConfig"] = json::object();
        }
        conf["runtimeConfig"][cap] = inv.capability_args[cap];
      }
    }
    ASSIGN_OR_RETURN(ExecOutput out, ExecWithTimeout(binary, Environment(command, att, inv),
                                                     Dump(conf), options_.plugin_timeout));
    if (out.signaled || out.exit_code != 0) return PluginError(command, type, att, inv, out);
    if (command != "ADD") return json::object();
    json result = json::parse(out.out, nullptr, false);
    if (result.is_discarded() || !result.is_object()) {
      return UnknownError(StrCat("CNI plugin \"", type, "\" ADD of network \"", att.name,
                                 "\" for container ", inv.container_id,
                                 " printed no JSON result: \"", out.out.substr(0, 512), "\""));
    }
    return result;
  }

  // ADD of every plugin in order; the last plugin's result is the list's.
  StatusOr<json> AddList(const Attachment& att, const Invocation& inv) const {
    json prev;
    bool have_prev = false;
    for (const auto& plugin : att.conflist["plugins"]) {
      ASSIGN_OR_RETURN(json result, Run("ADD", att, plugin, have_prev ? &prev : nullptr, inv));
      prev = std::move(result);
      have_prev = true;
    }
    return prev;
  }

  // DEL of every plugin in reverse order. prevResult (the cached result) is
  // part of DEL only since spec 0.4.0.
  Status DelList(const Attachment& att, const Invocation& inv, const json* cached_result) const {
    const json* prev = cached_result != nullptr && VersionAtLeast(att.version, {0, 4, 0})
                           ? cached_result
                           : nullptr;
    const auto& plugins = att.conflist["plugins"];
    for (auto it = plugins.rbegin(); it != plugins.rend(); ++it) {
      auto r = Run("DEL", att, *it, prev, inv);
      if (!r.ok()) return r.status();
    }
    return OkStatus();
  }

  fs::path CachePath(const std::string& network, const std::string& container_id,
                     const std::string& ifname) const {
    return options_.cache_dir / "results" / StrCat(network, "-", container_id, "-", ifname);
  }

  Status WriteCache(const Attachment& att, const Invocation& inv, const json& result) const {
    json entry = {{"kind", kCacheKind},
                  {"containerId", inv.container_id},
                  {"ifName", att.ifname},
                  {"networkName", att.name},
                  {"config", att.conflist},
                  {"cniArgs", inv.cni_args},
                  {"capabilityArgs", inv.capability_args},
                  {"result", result}};
    fs::path path = CachePath(att.name, inv.container_id, att.ifname);
    RETURN_IF_ERROR(MakeDirs(path.parent_path(), 0700));
    return Annotate(WriteFileAtomic(path, Dump(entry), 0600), "write CNI result cache");
  }

  struct CacheEntry {
    fs::path path;
    json data;
    Attachment attachment;  // from data["config"] and data["ifName"]
  };
  struct CacheScan {
    std::vector<CacheEntry> entries;
    // This container's files that cannot be used: unparsable entries and
    // temporary files of an interrupted write. Teardown falls back to the
    // current config for them and then deletes them; failing on them instead
    // would block the pod's removal forever.
    std::vector<fs::path> unusable;
  };

  StatusOr<CacheScan> FindCache(const std::string& container_id) const {
    CacheScan out;
    fs::path dir = options_.cache_dir / "results";
    std::error_code ec;
    if (!fs::exists(dir, ec)) return out;
    const std::string needle = StrCat("-", container_id, "-");
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.find(needle) == std::string::npos) continue;
      if (name.find(".tmp-") != std::string::npos) {
        out.unusable.push_back(it->path());
        continue;
      }
      auto content = ReadFile(it->path());
      if (!content.ok()) {
        if (content.status().code() == StatusCode::kNotFound) continue;  // removed meanwhile
        return content.status();
      }
      json j = json::parse(*content, nullptr, false);
      if (!j.is_object()) {
        out.unusable.push_back(it->path());
        continue;
      }
      if (StringField(j, "containerId") != container_id) continue;  // another id containing ours
      auto att = MakeAttachment(j.contains("config") ? Dump(j["config"]) : "",
                                StringField(j, "ifName"), it->path().string());
      if (!att.ok() || att->ifname.empty()) {
        out.unusable.push_back(it->path());
        continue;
      }
      out.entries.push_back({it->path(), std::move(j), std::move(att).value()});
    }
    if (ec) return ErrnoStatus(ec.value(), StrCat("list CNI result cache ", dir.string()));
    return out;
  }

 private:
  std::string CniPath() const {
    std::string out;
    for (const auto& d : options_.bin_dirs) out += StrCat(out.empty() ? "" : ":", d);
    return out;
  }

  std::vector<std::string> Environment(std::string_view command, const Attachment& att,
                                       const Invocation& inv) const {
    std::vector<std::string> env;
    bool have_path = false;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string_view kv(*e);
      if (kv.starts_with("CNI_")) continue;
      if (kv.starts_with("PATH=")) have_path = true;
      env.emplace_back(kv);
    }
    if (!have_path) env.push_back(StrCat("PATH=", kDefaultPath));
    env.push_back(StrCat("CNI_COMMAND=", command));
    env.push_back(StrCat("CNI_CONTAINERID=", inv.container_id));
    env.push_back(StrCat("CNI_NETNS=", inv.netns));
    env.push_back(StrCat("CNI_IFNAME=", att.ifname));
    env.push_back(StrCat("CNI_ARGS=", CniArgsString(inv.cni_args)));
    env.push_back(StrCat("CNI_PATH=", CniPath()));
    return env;
  }

  const CniOptions& options_;
};

Attachment LoopbackAttachment() {
  auto a = MakeAttachment(kLoopbackConfig, std::string(kLoopbackIfname), "cni-loopback");
  return std::move(a).value();
}

bool IsLoopbackEntry(const json& entry) {
  return StringField(entry, "networkName") == kLoopbackNetwork &&
         StringField(entry, "ifName") == kLoopbackIfname;
}

Invocation MakeInvocation(const PodNetworkRequest& r, std::string netns) {
  Invocation inv;
  inv.container_id = r.container_id;
  inv.netns = std::move(netns);
  inv.cni_args =
      json::array({json::array({"K8S_POD_NAMESPACE", r.pod_namespace}),
                   json::array({"K8S_POD_NAME", r.pod_name}),
                   json::array({"K8S_POD_INFRA_CONTAINER_ID", r.container_id}),
                   json::array({"K8S_POD_UID", r.pod_uid}), json::array({"IgnoreUnknown", "1"})});
  inv.capability_args = {{"portMappings", PortMappingsJson(r.port_mappings)}};
  return inv;
}

}  // namespace

StatusOr<NetworkResult> ParseCniResult(std::string_view result_json, std::string_view ifname) {
  json j = json::parse(result_json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgumentError("CNI result is not a JSON object");
  }
  if (j.contains("code") && j.contains("msg") && !j.contains("ips") && !j.contains("ip4")) {
    return InvalidArgumentError(StrCat("CNI result is an error: ", Dump(j["msg"])));
  }
  NetworkResult res;
  res.cni_version = StringField(j, "cniVersion");
  res.raw = Dump(j);
  std::vector<std::string> addrs;
  if (j.contains("ips") && j["ips"].is_array()) {
    const json interfaces =
        j.contains("interfaces") && j["interfaces"].is_array() ? j["interfaces"] : json::array();
    for (const auto& ip : j["ips"]) {
      if (!ip.is_object() || !ip.contains("address") || !ip["address"].is_string()) continue;
      if (ip.contains("interface") && ip["interface"].is_number_integer()) {
        auto idx = ip["interface"].get<int64_t>();
        if (idx >= 0 && static_cast<size_t>(idx) < interfaces.size()) {
          const json& iface = interfaces[static_cast<size_t>(idx)];
          if (!iface.is_object() || StringField(iface, "name") != ifname ||
              StringField(iface, "sandbox").empty()) {
            continue;
          }
        }
      }
      addrs.push_back(StripPrefixLength(ip["address"].get<std::string>()));
    }
  } else {
    for (const char* key : {"ip4", "ip6"}) {
      if (j.contains(key) && j[key].is_object() && j[key].contains("ip") &&
          j[key]["ip"].is_string()) {
        addrs.push_back(StripPrefixLength(j[key]["ip"].get<std::string>()));
      }
    }
  }
  auto primary = std::find_if(addrs.begin(), addrs.end(), IsIpv4);
  if (primary == addrs.end()) primary = addrs.begin();
  for (auto it = addrs.begin(); it != addrs.end(); ++it) {
    if (it == primary) {
      res.ip = *it;
    } else {
      res.additional_ips.push_back(*it);
    }
  }
  return res;
}

CniManager::CniManager(CniOptions options)
    : options_(std::move(options)), locks_(std::make_unique<KeyedMutex>()) {}

CniManager::~CniManager() = default;

Status CniManager::Ready() const {
  return LoadDefaultNetwork(options_.conf_dir, options_.bin_dirs).status();
}

StatusOr<NetworkResult> CniManager::SetUpPod(const PodNetworkRequest& request) {
  if (!IsSafeId(request.container_id)) {
    return InvalidArgumentError(StrCat("container id \"", request.container_id,
                                       "\" is empty or has characters other than [A-Za-z0-9_.-]"));
  }
  if (request.netns_path.empty()) {
    return InvalidArgumentError(
        StrCat("no network namespace path to set up pod network of ", request.container_id));
  }
  auto held = locks_->Acquire(request.container_id);
  Runner runner(options_);

  ASSIGN_OR_RETURN(NetworkConfigList config,
                   LoadDefaultNetwork(options_.conf_dir, options_.bin_dirs));
  ASSIGN_OR_RETURN(Attachment main,
                   MakeAttachment(config.raw, options_.ifname, config.file.string()));
  Attachment loopback = LoopbackAttachment();
  std::error_code ec;
  if (fs::exists(runner.CachePath(main.name, request.container_id, main.ifname), ec)) {
    return AlreadyExistsError(StrCat("network \"", main.name, "\" is already set up for container ",
                                     request.container_id, "; tear it down first"));
  }
  const Invocation inv = MakeInvocation(request, request.netns_path);

  // Undo is DEL of both lists without prevResult (nothing was cached yet),
  // as the spec asks after a failed ADD. Its own failures are appended to
  // the error so that a person knows what may be left.
  bool main_attempted = false;
  auto fail = [&](const Status& cause) -> Status {
    std::string undo_errors;
    for (const Attachment* att : {&main, &loopback}) {
      if (att == &main && !main_attempted) continue;
      Status s = runner.DelList(*att, inv, nullptr);
      if (!s.ok()) undo_errors += StrCat("; and undoing it failed: ", s.message());
      std::error_code rm_ec;
      fs::remove(runner.CachePath(att->name, inv.container_id, att->ifname), rm_ec);
    }
    return Status(cause.code(), cause.message() + undo_errors);
  };

  auto lo_result = runner.AddList(loopback, inv);
  if (!lo_result.ok()) return fail(lo_result.status());
  if (Status s = runner.WriteCache(loopback, inv, *lo_result); !s.ok()) return fail(s);

  main_attempted = true;
  auto main_result = runner.AddList(main, inv);
  if (!main_result.ok()) return fail(main_result.status());
  auto parsed = ParseCniResult(Dump(*main_result), main.ifname);
  if (!parsed.ok()) {
    return fail(Annotate(parsed.status(), StrCat("result of network \"", main.name, "\"")));
  }
  if (Status s = runner.WriteCache(main, inv, *main_result); !s.ok()) return fail(s);
  parsed->network_name = main.name;
  return parsed;
}

Status CniManager::TearDownPod(const PodNetworkRequest& request) {
  if (!IsSafeId(request.container_id)) {
    return InvalidArgumentError(StrCat("container id \"", request.container_id,
                                       "\" is empty or has characters other than [A-Za-z0-9_.-]"));
  }
  auto held = locks_->Acquire(request.container_id);
  Runner runner(options_);

  // The spec wants CNI_NETNS even for a namespace that is gone, and plugins
  // cope with a missing path. A file that exists but is no longer a
  // namespace (a crash between unmount and unlink) makes bridge fail DEL, so
  // then no path is passed: plugins DEL only their host-side state.
  std::string netns = request.netns_path;
  if (!netns.empty()) {
    auto is_ns = IsNetworkNamespace(netns);
    if (is_ns.ok() && !*is_ns) netns.clear();
  }

  ASSIGN_OR_RETURN(Runner::CacheScan cache, runner.FindCache(request.container_id));
  std::vector<std::string> errors;
  Status first_error;
  auto record = [&](const Status& s) {
    if (s.ok()) return;
    if (first_error.ok()) first_error = s;
    errors.push_back(s.message());
  };
  auto del_cached = [&](const Runner::CacheEntry& entry) {
    Invocation inv = MakeInvocation(request, netns);
    if (entry.data.contains("cniArgs") && entry.data["cniArgs"].is_array()) {
      inv.cni_args = entry.data["cniArgs"];
    }
    if (entry.data.contains("capabilityArgs") && entry.data["capabilityArgs"].is_object()) {
      inv.capability_args = entry.data["capabilityArgs"];
    }
    const json* result = entry.data.contains("result") ? &entry.data["result"] : nullptr;
    Status s = runner.DelList(entry.attachment, inv, result);
    if (s.ok()) {
      std::error_code ec;
      fs::remove(entry.path, ec);
      if (ec) s = ErrnoStatus(ec.value(), StrCat("remove CNI result cache ", entry.path.string()));
    }
    record(s);
  };

  bool main_cached = false;
  for (const auto& entry : cache.entries) {
    if (IsLoopbackEntry(entry.data)) continue;
    main_cached = true;
    del_cached(entry);
  }
  if (!main_cached) {
    // ADD may have happened without a usable cache (a crash before writing
    // it): DEL the current default network with what the request tells.
    // Without any usable config there is nothing that could be run.
    auto config = LoadDefaultNetwork(options_.conf_dir, options_.bin_dirs);
    if (config.ok()) {
      auto att = MakeAttachment(config->raw, options_.ifname, config->file.string());
      if (att.ok()) {
        record(runner.DelList(*att, MakeInvocation(request, netns), nullptr));
      } else {
        record(att.status());
      }
    }
  }

  bool loopback_cached = false;
  for (const auto& entry : cache.entries) {
    if (!IsLoopbackEntry(entry.data)) continue;
    loopback_cached = true;
    del_cached(entry);
  }
  if (!loopback_cached) {
    // Nothing recorded as added, so failures (say, no loopback binary on a
    // host that never set up this pod) do not block the teardown.
    (void)runner.DelList(LoopbackAttachment(), MakeInvocation(request, netns), nullptr);
  }
  if (first_error.ok()) {
    for (const auto& path : cache.unusable) {
      std::error_code ec;
      fs::remove(path, ec);
      if (ec) record(ErrnoStatus(ec.value(), StrCat("remove CNI result cache ", path.string())));
    }
  }

  if (first_error.ok()) return OkStatus();
  std::string msg =
      StrCat("tear down network of container ", request.container_id, ": ", errors[0]);
  for (size_t i = 1; i < errors.size(); ++i) msg += StrCat("; ", errors[i]);
  return Status(first_error.code(), msg);
}

StatusOr<NetworkResult> CniManager::CachedResult(const std::string& container_id) const {
  if (!IsSafeId(container_id)) {
    return InvalidArgumentError(StrCat("container id \"", container_id,
                                       "\" is empty or has characters other than [A-Za-z0-9_.-]"));
  }
  Runner runner(options_);
  ASSIGN_OR_RETURN(Runner::CacheScan cache, runner.FindCache(container_id));
  for (const auto& entry : cache.entries) {
    if (IsLoopbackEntry(entry.data) || !entry.data.contains("result")) continue;
    ASSIGN_OR_RETURN(NetworkResult r,
                     ParseCniResult(Dump(entry.data["result"]), StringField(entry.data, "ifName")));
    r.network_name = StringField(entry.data, "networkName");
    return r;
  }
  return NotFoundError(StrCat("no cached CNI result for container ", container_id, " in ",
                              (options_.cache_dir / "results").string()));
}

}  // namespace berth::network
