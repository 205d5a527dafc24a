#include "cdi/cdi_registry.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "common/fs.h"

namespace berth::cdi {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::string_view kAnnotationPrefix = "cdi.k8s.io/";
// CDI spec files are small; a larger file is not read.
constexpr uintmax_t kMaxSpecBytes = 4 << 20;

struct LoadedSpec {
  std::string path;
  size_t priority = 0;  // index of its directory
  Spec spec;
};

// Every readable spec of `dirs`, and the errors of those that are not.
void LoadSpecs(const std::vector<std::string>& dirs, std::vector<LoadedSpec>* specs,
               std::vector<std::string>* errors) {
  for (size_t i = 0; i < dirs.size(); ++i) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dirs[i], ec)) {
      const std::string ext = e.path().extension().string();
      if (ext == ".json" || ext == ".yaml" || ext == ".yml") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& p : files) {
      std::error_code size_ec;
      if (fs::file_size(p, size_ec) > kMaxSpecBytes && !size_ec) {
        errors->push_back(StrCat(p.string(), ": larger than 4 MiB"));
        continue;
      }
      auto text = ReadFile(p);
      if (!text.ok()) {
        errors->push_back(text.status().message());
        continue;
      }
      auto spec = ParseSpec(*text, p.string());
      if (!spec.ok()) {
        errors->push_back(spec.status().message());
        continue;
      }
      specs->push_back({p.string(), i, std::move(*spec)});
    }
  }
}

}  // namespace

std::vector<std::string> RequestedDevices(const std::vector<std::string>& cdi_devices,
                                          const std::map<std::string, std::string>& annotations) {
  std::vector<std::string> out;
  auto add = [&](std::string name) {
    while (!name.empty() && name.front() == ' ') name.erase(name.begin());
    while (!name.empty() && name.back() == ' ') name.pop_back();
    if (!name.empty() && std::find(out.begin(), out.end(), name) == out.end()) {
      out.push_back(std::move(name));
    }
  };
  for (const std::string& d : cdi_devices) add(d);
  for (const auto& [key, value] : annotations) {
    if (!key.starts_with(kAnnotationPrefix)) continue;
    size_t start = 0;
    while (start <= value.size()) {
      size_t comma = value.find(',', start);
      add(value.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

StatusOr<ContainerEdits> Resolve(const std::vector<std::string>& spec_dirs,
                                 const std::vector<std::string>& names) {
  ContainerEdits out;
  if (names.empty()) return out;
  std::vector<QualifiedName> wanted;
  for (const std::string& n : names) {
    ASSIGN_OR_RETURN(QualifiedName q, ParseQualifiedName(n));
    wanted.push_back(std::move(q));
  }
  std::vector<LoadedSpec> specs;
  std::vector<std::string> errors;
  LoadSpecs(spec_dirs, &specs, &errors);

  std::vector<std::string> missing;
  std::set<size_t> specs_used;
  std::vector<std::pair<size_t, const Device*>> chosen;
  for (const QualifiedName& q : wanted) {
    std::optional<size_t> best;
    const Device* best_device = nullptr;
    for (size_t s = 0; s < specs.size(); ++s) {
      const Spec& spec = specs[s].spec;
      if (spec.vendor != q.vendor || spec.device_class != q.device_class) continue;
      for (const Device& d : spec.devices) {
        if (d.name != q.name) continue;
        if (best && specs[*best].priority == specs[s].priority) {
          return FailedPreconditionError(StrCat("CDI device \"", q.str(), "\" is defined by both ",
                                                specs[*best].path, " and ", specs[s].path));
        }
        if (!best || specs[s].priority > specs[*best].priority) {
          best = s;
          best_device = &d;
        }
      }
    }
    if (!best) {
      missing.push_back(q.str());
      continue;
    }
    specs_used.insert(*best);
    chosen.emplace_back(*best, best_device);
  }
  if (!missing.empty()) {
    std::string dirs, list;
    for (const auto& d : spec_dirs) dirs = StrCat(dirs, dirs.empty() ? "" : ", ", d);
    for (const auto& m : missing) list = StrCat(list, list.empty() ? "" : ", ", "\"", m, "\"");
    std::string msg = StrCat("CDI device", missing.size() > 1 ? "s " : " ", list,
                             " not found in the CDI specs of ", dirs.empty() ? "(none)" : dirs);
    if (!errors.empty()) {
      msg = StrCat(msg, "; spec files with errors:");
      for (const auto& e : errors) msg = StrCat(msg, " ", e, ";");
    }
    return NotFoundError(msg);
  }
  for (size_t s : specs_used) out.Append(specs[s].spec.edits);
  for (const auto& [s, device] : chosen) out.Append(device->edits);
  return out;
}

Status ApplyEdits(const ContainerEdits& edits, json& spec) {
  if (edits.empty()) return OkStatus();
  json& process = spec["process"];
  if (!edits.env.empty()) {
    json env = process.value("env", json::array());
    for (const std::string& e : edits.env) {
      const std::string key = e.substr(0, e.find('=') + 1);
      bool replaced = false;
      for (auto& existing : env) {
        if (existing.is_string() && existing.get<std::string>().starts_with(key)) {
          existing = e;
          replaced = true;
        }
      }
      if (!replaced) env.push_back(e);
    }
    process["env"] = env;
  }
  for (const DeviceNode& d : edits.device_nodes) {
    const std::string host = d.host_path.empty() ? d.path : d.host_path;
    std::string type = d.type;
    int64_t dev_major = d.major.value_or(0), dev_minor = d.minor.value_or(0);
    uint32_t mode = d.file_mode.value_or(0);
    if (type.empty() || (type != "p" && (!d.major || !d.minor)) || !d.file_mode) {
      struct stat st {};
      if (::stat(host.c_str(), &st) != 0) {
        return NotFoundError(StrCat("CDI device node ", host,
                                    " does not exist on the host: ", std::strerror(errno)));
      }
      const char host_type = S_ISCHR(st.st_mode)    ? 'c'
                             : S_ISBLK(st.st_mode)  ? 'b'
                             : S_ISFIFO(st.st_mode) ? 'p'
                                                    : '\0';
      if (host_type == '\0') {
        return InvalidArgumentError(StrCat("CDI device node ", host, " is not a device node"));
      }
      if (type.empty()) type = std::string(1, host_type);
      if (!d.major) dev_major = major(st.st_rdev);
      if (!d.minor) dev_minor = minor(st.st_rdev);
      if (!d.file_mode) mode = st.st_mode & 07777;
    }
    json node{{"path", d.path}, {"type", type}, {"fileMode", mode}};
    if (type != "p") {
      node["major"] = dev_major;
      node["minor"] = dev_minor;
    }
    if (d.uid) node["uid"] = *d.uid;
    if (d.gid) node["gid"] = *d.gid;
    json& devices = spec["linux"]["devices"];
    if (!devices.is_array()) devices = json::array();
    bool present = false;
    for (auto& existing : devices) {
      if (existing.value("path", "") == d.path) {
        existing = node;
        present = true;
      }
    }
    if (!present) devices.push_back(node);
    if (type != "p") {
      json& rules = spec["linux"]["resources"]["devices"];
      if (!rules.is_array()) rules = json::array();
      rules.push_back({{"allow", true},
                       {"type", type == "u" ? "c" : type},
                       {"major", dev_major},
                       {"minor", dev_minor},
                       {"access", d.permissions.empty() ? "rwm" : d.permissions}});
    }
  }
  for (const MountEdit& m : edits.mounts) {
    json mount{{"destination", m.container_path}, {"source", m.host_path}};
    std::vector<std::string> options = m.options;
    const std::string type = m.type.empty() ? "bind" : m.type;
    if (type == "bind" && std::none_of(options.begin(), options.end(), [](const std::string& o) {
          return o == "bind" || o == "rbind";
        })) {
      options.insert(options.begin(), "rbind");
    }
    mount["type"] = type;
    mount["options"] = options;
    json& mounts = spec["mounts"];
    if (!mounts.is_array()) mounts = json::array();
    mounts.push_back(mount);
  }
  for (const HookEdit& h : edits.hooks) {
    json hook{{"path", h.path}};
    if (!h.args.empty()) hook["args"] = h.args;
    if (!h.env.empty()) hook["env"] = h.env;
    if (h.timeout) hook["timeout"] = *h.timeout;
    json& list = spec["hooks"][h.hook_name];
    if (!list.is_array()) list = json::array();
    list.push_back(hook);
  }
  if (!edits.additional_gids.empty()) {
    json& gids = process["user"]["additionalGids"];
    if (!gids.is_array()) gids = json::array();
    for (uint32_t g : edits.additional_gids) {
      if (std::find(gids.begin(), gids.end(), json(g)) == gids.end()) gids.push_back(g);
    }
  }
  return OkStatus();
}

}  // namespace berth::cdi
