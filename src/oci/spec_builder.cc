#include "oci/spec_builder.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <set>
#include <string>
#include <utility>

#include "oci/capabilities.h"

namespace berth::oci {
namespace {

using nlohmann::json;

constexpr std::string_view kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr std::string_view kCgroupSystemdPrefix = "berth";

std::string ToUpper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool IsAll(std::string_view cap) { return ToUpper(cap) == "ALL"; }

StatusOr<std::string> NormalizeCap(std::string_view name) {
  std::string upper = ToUpper(name);
  if (!upper.starts_with("CAP_")) upper = "CAP_" + upper;
  if (std::find(kCapabilityNames.begin(), kCapabilityNames.end(), upper) ==
      kCapabilityNames.end()) {
    return InvalidArgumentError(StrCat("unknown capability \"", name, "\""));
  }
  return upper;
}

std::vector<std::string> AllCaps(const HostCaps& host) {
  std::vector<std::string> out;
  int last = std::min<int>(host.last_cap, static_cast<int>(kCapabilityNames.size()) - 1);
  for (int i = 0; i <= last; ++i) {
    if (host.current_caps && !(*host.current_caps & (uint64_t{1} << i))) continue;
    out.emplace_back(kCapabilityNames[i]);
  }
  return out;
}

// containerd's order: "ALL" adds, then "ALL" drops, then single adds, then
// single drops, so add ALL + drop X means everything but X, and drop ALL +
// add X means only X.
StatusOr<std::vector<std::string>> ComputeCaps(const SecurityContext& sc, const HostCaps& host) {
  if (sc.privileged) return AllCaps(host);
  std::vector<std::string> caps = DefaultCapabilities();
  const auto& add = sc.capabilities.add_capabilities;
  const auto& drop = sc.capabilities.drop_capabilities;
  if (std::any_of(add.begin(), add.end(), IsAll)) caps = AllCaps(host);
  if (std::any_of(drop.begin(), drop.end(), IsAll)) caps.clear();
  for (const auto& a : add) {
    if (IsAll(a)) continue;
    ASSIGN_OR_RETURN(std::string name, NormalizeCap(a));
    if (std::find(caps.begin(), caps.end(), name) == caps.end()) caps.push_back(std::move(name));
  }
  for (const auto& d : drop) {
    if (IsAll(d)) continue;
    ASSIGN_OR_RETURN(std::string name, NormalizeCap(d));
    caps.erase(std::remove(caps.begin(), caps.end(), name), caps.end());
  }
  return caps;
}

// filepath.Clean for absolute paths: lexical, no trailing slash but for "/".
std::string CleanPath(std::string_view p) {
  std::string s = std::filesystem::path(p).lexically_normal().generic_string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

size_t PathDepth(std::string_view p) {
  std::string clean = CleanPath(p);
  if (clean == "/") return 0;
  return static_cast<size_t>(std::count(clean.begin(), clean.end(), '/'));
}

void SetEnv(std::vector<std::string>& env, std::string entry) {
  std::string_view key = std::string_view(entry).substr(0, entry.find('='));
  for (auto& e : env) {
    if (std::string_view(e).substr(0, e.find('=')) == key) {
      e = std::move(entry);
      return;
    }
  }
  env.push_back(std::move(entry));
}

struct MountEntry {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

json MountJson(const MountEntry& m) {
  return {{"destination", m.destination},
          {"type", m.type},
          {"source", m.source},
          {"options", m.options}};
}

MountEntry BindMount(std::string source, std::string dest, bool readonly,
                     MountPropagation propagation) {
  std::vector<std::string> options = {"rbind"};
  switch (propagation) {
    case MountPropagation::kPrivate:
      options.push_back("rprivate");
      break;
    case MountPropagation::kHostToContainer:
      options.push_back("rslave");
      break;
    case MountPropagation::kBidirectional:
      options.push_back("rshared");
      break;
  }
  options.push_back(readonly ? "ro" : "rw");
  return {std::move(dest), "bind", std::move(source), std::move(options)};
}

std::vector<MountEntry> DefaultMounts() {
  return {
      {"/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}},
      {"/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}},
      {"/dev/pts",
       "devpts",
       "devpts",
       {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
      {"/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
      {"/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}},
      {"/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}},
  };
}

struct MountsResult {
  std::vector<MountEntry> mounts;
  std::string rootfs_propagation;
};

StatusOr<MountsResult> BuildMounts(const SpecInputs& in) {
  const ContainerConfig& c = in.container;
  const SecurityContext& sc = c.security_context;
  const SandboxInfo& sb = in.sandbox;

  std::set<std::string> cri_dests;
  for (const Mount& m : c.mounts) {
    if (!m.container_path.starts_with("/")) {
      return InvalidArgumentError(
          StrCat("mount container_path \"", m.container_path, "\" is not absolute"));
    }
    if (!m.host_path.starts_with("/")) {
      return InvalidArgumentError(StrCat("mount host_path \"", m.host_path, "\" for \"",
                                         m.container_path, "\" is not absolute"));
    }
    if (m.recursive_read_only) {
      if (!m.readonly) {
        return InvalidArgumentError(
            StrCat("mount \"", m.container_path, "\": recursive_read_only needs readonly"));
      }
      if (m.propagation != MountPropagation::kPrivate) {
        return InvalidArgumentError(StrCat("mount \"", m.container_path,
                                           "\": recursive_read_only needs private propagation"));
      }
      if (!in.runtime_supports_rro) {
        return InvalidArgumentError(
            StrCat("mount \"", m.container_path,
                   "\": recursive_read_only is not supported by this runtime handler (it needs "
                   "a runtime with the \"rro\" mount option and Linux 5.12 or later)"));
      }
    }
    cri_dests.insert(CleanPath(m.container_path));
  }

  // The pod's files first, each unless the CRI mounts something there itself.
  std::vector<MountEntry> binds;
  auto add_pod_file = [&](const std::string& source, const char* dest, bool readonly) {
    if (source.empty() || cri_dests.count(dest)) return;
    binds.push_back(BindMount(source, dest, readonly, MountPropagation::kPrivate));
  };
  add_pod_file(sb.hostname_path, "/etc/hostname", sc.readonly_rootfs);
  add_pod_file(sb.hosts_path, "/etc/hosts", sc.readonly_rootfs);
  add_pod_file(sb.resolv_conf_path, "/etc/resolv.conf", sc.readonly_rootfs);
  // Like containerd, a container in the node's IPC namespace gets the node's
  // /dev/shm; otherwise the pod's (or a private tmpfs when the pod has none).
  add_pod_file(
      sc.namespace_options.ipc == NamespaceMode::kNode ? std::string("/dev/shm") : sb.shm_path,
      "/dev/shm", false);

  MountsResult result;
  for (const Mount& m : c.mounts) {
    binds.push_back(BindMount(m.host_path, m.container_path, m.readonly, m.propagation));
    if (m.recursive_read_only) binds.back().options.push_back("rro");
    // An image volume: berthd mounted it nosuid,nodev (containerd and CRI-O
    // do the same); the runtime's read-only remount of the bind must repeat
    // those flags, which a user namespace locks.
    if (!m.image.empty())
      binds.back().options.insert(binds.back().options.end(), {"nosuid", "nodev"});
    if (m.propagation == MountPropagation::kBidirectional) {
      result.rootfs_propagation = "rshared";
    } else if (m.propagation == MountPropagation::kHostToContainer &&
               result.rootfs_propagation != "rshared") {
      result.rootfs_propagation = "rslave";
    }
  }

  std::set<std::string> overridden;
  for (const MountEntry& b : binds) overridden.insert(CleanPath(b.destination));
  const bool dev_overridden = overridden.count("/dev") > 0;
  for (MountEntry& m : DefaultMounts()) {
    if (overridden.count(m.destination)) continue;
    if (dev_overridden && m.destination.starts_with("/dev/")) continue;
    result.mounts.push_back(std::move(m));
  }
  if (!overridden.count("/sys/fs/cgroup")) {
    result.mounts.push_back(
        {"/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}});
  }
  if (sc.privileged) {
    for (MountEntry& m : result.mounts) {
      if (m.type != "sysfs" && m.type != "cgroup") continue;
      m.options.erase(std::remove(m.options.begin(), m.options.end(), "ro"), m.options.end());
      m.options.push_back("rw");
    }
  }
  for (MountEntry& b : binds) result.mounts.push_back(std::move(b));
  // Parents before children: containerd sorts the CRI mounts by depth; sorting
  // the whole list (stably) also keeps a CRI mount of /sys from hiding the
  // cgroup mount below it.
  std::stable_sort(result.mounts.begin(), result.mounts.end(),
                   [](const MountEntry& a, const MountEntry& b) {
                     return PathDepth(a.destination) < PathDepth(b.destination);
                   });
  return result;
}

json Namespace(std::string_view type, std::string_view path = {}) {
  json ns = {{"type", type}};
  if (!path.empty()) ns["path"] = path;
  return ns;
}

StatusOr<json> BuildNamespaces(const SpecInputs& in) {
  const NamespaceOptions& o = in.container.security_context.namespace_options;
  const SandboxInfo& sb = in.sandbox;
  auto need = [&](const std::string& path, std::string_view what) -> Status {
    if (path.empty()) {
      return FailedPreconditionError(StrCat("pod sandbox ", sb.id, " has no ", what,
                                            " namespace path for container ", in.container.name));
    }
    return OkStatus();
  };
  json ns = json::array();
  switch (o.pid) {
    case NamespaceMode::kPod:
      RETURN_IF_ERROR(need(sb.pid_ns_path, "pid"));
      ns.push_back(Namespace("pid", sb.pid_ns_path));
      break;
    case NamespaceMode::kContainer:
      ns.push_back(Namespace("pid"));
      break;
    case NamespaceMode::kNode:
      break;
    case NamespaceMode::kTarget: {
      auto it = sb.target_pid_ns_paths.find(o.target_id);
      if (o.target_id.empty() || it == sb.target_pid_ns_paths.end() || it->second.empty()) {
        return FailedPreconditionError(
            StrCat("pid namespace target container \"", o.target_id, "\" of container ",
                   in.container.name, " is not a running container of pod sandbox ", sb.id));
      }
      ns.push_back(Namespace("pid", it->second));
      break;
    }
  }
  switch (o.ipc) {
    case NamespaceMode::kPod:
      RETURN_IF_ERROR(need(sb.ipc_ns_path, "ipc"));
      ns.push_back(Namespace("ipc", sb.ipc_ns_path));
      break;
    case NamespaceMode::kNode:
      break;
    default:
      return InvalidArgumentError(
          StrCat("ipc namespace mode of container ", in.container.name, " must be POD or NODE"));
  }
  switch (o.network) {
    case NamespaceMode::kPod:
      RETURN_IF_ERROR(need(sb.uts_ns_path, "uts"));
      ns.push_back(Namespace("uts", sb.uts_ns_path));
      break;
    case NamespaceMode::kNode:
      break;
    default:
      return InvalidArgumentError(StrCat("network namespace mode of container ", in.container.name,
                                         " must be POD or NODE"));
  }
  ns.push_back(Namespace("mount"));
  // A pod with a user namespace of its own: every container joins it.
  if (!sb.userns_path.empty()) ns.push_back(Namespace("user", sb.userns_path));
  if (o.network == NamespaceMode::kPod) {
    RETURN_IF_ERROR(need(sb.netns_path, "network"));
    ns.push_back(Namespace("network", sb.netns_path));
  }
  if (in.host.cgroup_v2) ns.push_back(Namespace("cgroup"));
  return ns;
}

bool IsIpcSysctl(std::string_view key) {
  static constexpr std::array<std::string_view, 8> kIpc = {
      "kernel.sem",    "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
      "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.shm_rmid_forced"};
  return std::find(kIpc.begin(), kIpc.end(), key) != kIpc.end() || key.starts_with("fs.mqueue.");
}

StatusOr<json> BuildSysctls(const SpecInputs& in) {
  const NamespaceOptions& o = in.container.security_context.namespace_options;
  json out = json::object();
  for (const auto& [key, value] : in.sandbox.sysctls) {
    if (o.network == NamespaceMode::kNode && key.starts_with("net.")) {
      return InvalidArgumentError(StrCat("sysctl \"", key, "\" of pod sandbox ", in.sandbox.id,
                                         " is not allowed with the host network namespace"));
    }
    if (o.ipc == NamespaceMode::kNode && IsIpcSysctl(key)) {
      return InvalidArgumentError(StrCat("sysctl \"", key, "\" of pod sandbox ", in.sandbox.id,
                                         " is not allowed with the host IPC namespace"));
    }
    out[key] = value;
  }
  return out;
}

json DeviceRule(bool allow, std::string_view type, int64_t major, int64_t minor,
                std::string_view access) {
  json rule = {{"allow", allow}, {"access", access}};
  if (!type.empty()) rule["type"] = type;
  if (major >= 0) rule["major"] = major;
  if (minor >= 0) rule["minor"] = minor;
  return rule;
}

json DefaultDeviceRules() {
  json rules = json::array();
  rules.push_back(DeviceRule(false, "", -1, -1, "rwm"));
  rules.push_back(DeviceRule(true, "c", -1, -1, "m"));     // mknod of any char device
  rules.push_back(DeviceRule(true, "b", -1, -1, "m"));     // mknod of any block device
  rules.push_back(DeviceRule(true, "c", 1, 3, "rwm"));     // /dev/null
  rules.push_back(DeviceRule(true, "c", 1, 5, "rwm"));     // /dev/zero
  rules.push_back(DeviceRule(true, "c", 1, 7, "rwm"));     // /dev/full
  rules.push_back(DeviceRule(true, "c", 1, 8, "rwm"));     // /dev/random
  rules.push_back(DeviceRule(true, "c", 1, 9, "rwm"));     // /dev/urandom
  rules.push_back(DeviceRule(true, "c", 5, 0, "rwm"));     // /dev/tty
  rules.push_back(DeviceRule(true, "c", 5, 2, "rwm"));     // /dev/ptmx
  rules.push_back(DeviceRule(true, "c", 136, -1, "rwm"));  // /dev/pts/*
  return rules;
}

StatusOr<json> DeviceNode(const Device& d) {
  if (!d.container_path.starts_with("/")) {
    return InvalidArgumentError(
        StrCat("device container_path \"", d.container_path, "\" is not absolute"));
  }
  if (d.type != 'c' && d.type != 'b') {
    return InvalidArgumentError(
        StrCat("device ", d.host_path, " is neither a char nor a block device"));
  }
  return json{{"path", d.container_path},
              {"type", std::string(1, d.type)},
              {"major", d.major},
              {"minor", d.minor},
              {"fileMode", d.file_mode},
              {"uid", d.uid},
              {"gid", d.gid}};
}

StatusOr<std::string> DevicePermissions(const Device& d) {
  std::string perms = d.permissions.empty() ? "rwm" : d.permissions;
  for (char ch : perms) {
    if (ch != 'r' && ch != 'w' && ch != 'm') {
      return InvalidArgumentError(StrCat("device ", d.host_path, " has invalid permissions \"",
                                         d.permissions, "\" (want a subset of \"rwm\")"));
    }
  }
  return perms;
}

Status BuildDevices(const SpecInputs& in, json& linux_devices, json& rules) {
  const ContainerConfig& c = in.container;
  if (c.security_context.privileged) {
    rules = json::array({DeviceRule(true, "", -1, -1, "rwm")});
    std::set<std::string> paths;
    for (const Device& d : in.host_devices) {
      ASSIGN_OR_RETURN(json node, DeviceNode(d));
      paths.insert(d.container_path);
      linux_devices.push_back(std::move(node));
    }
    for (const Device& d : c.devices) {
      if (paths.count(d.container_path)) continue;
      ASSIGN_OR_RETURN(json node, DeviceNode(d));
      linux_devices.push_back(std::move(node));
    }
    return OkStatus();
  }
  rules = DefaultDeviceRules();
  for (const Device& d : c.devices) {
    ASSIGN_OR_RETURN(json node, DeviceNode(d));
    ASSIGN_OR_RETURN(std::string perms, DevicePermissions(d));
    linux_devices.push_back(std::move(node));
    rules.push_back(DeviceRule(true, std::string(1, d.type), d.major, d.minor, perms));
  }
  return OkStatus();
}

Status BuildResources(const Resources& r, const std::string& container_name, const HostCaps& host,
                      json& resources) {
  const std::string who = StrCat("container ", container_name);
  if (r.cpu_period < 0 || r.cpu_shares < 0 || r.memory_limit_in_bytes < 0) {
    return InvalidArgumentError(
        StrCat(who, ": cpu_period, cpu_shares and memory_limit_in_bytes ", "must not be negative"));
  }
  json cpu = json::object();
  if (r.cpu_shares != 0) cpu["shares"] = static_cast<uint64_t>(r.cpu_shares);
  if (r.cpu_quota != 0) cpu["quota"] = r.cpu_quota;
  if (r.cpu_period != 0) cpu["period"] = static_cast<uint64_t>(r.cpu_period);
  if (!r.cpuset_cpus.empty()) cpu["cpus"] = r.cpuset_cpus;
  if (!r.cpuset_mems.empty()) cpu["mems"] = r.cpuset_mems;
  if (!cpu.empty()) resources["cpu"] = std::move(cpu);

  json memory = json::object();
  if (r.memory_limit_in_bytes != 0) {
    memory["limit"] = r.memory_limit_in_bytes;
    // Equal swap and memory limits: no swap unless asked for.
    if (host.swap_controller_available) memory["swap"] = r.memory_limit_in_bytes;
  }
  if (r.memory_swap_limit_in_bytes != 0 && host.swap_controller_available) {
    memory["swap"] = r.memory_swap_limit_in_bytes;
  }
  if (!memory.empty()) resources["memory"] = std::move(memory);

  if (host.hugetlb_available && !r.hugepage_limits.empty()) {
    json limits = json::array();
    for (const HugepageLimit& h : r.hugepage_limits) {
      if (h.page_size.empty()) {
        return InvalidArgumentError(StrCat(who, ": hugepage limit without a page size"));
      }
      limits.push_back({{"pageSize", h.page_size}, {"limit", h.limit}});
    }
    resources["hugepageLimits"] = std::move(limits);
  }
  if (!r.unified.empty()) {
    // runc rejects "unified" outside pure cgroup v2; say so with the container's name.
    if (!host.cgroup_v2) {
      return InvalidArgumentError(StrCat(who, ": unified cgroup resources need a cgroup v2 host"));
    }
    resources["unified"] = r.unified;
  }
  return OkStatus();
}

// "a-b-c.slice" → "/a.slice/a-b.slice/a-b-c.slice" (systemd's nesting rule).
StatusOr<std::string> ExpandSlice(const std::string& slice) {
  std::string stem = slice.substr(0, slice.size() - 6);
  if (stem.empty() || stem.front() == '-' || stem.back() == '-' ||
      stem.find("--") != std::string::npos) {
    return InvalidArgumentError(StrCat("cgroup parent \"", slice, "\" is not a valid slice name"));
  }
  std::string path, prefix;
  size_t start = 0;
  for (;;) {
    size_t dash = stem.find('-', start);
    prefix = stem.substr(0, dash);
    path += "/" + prefix + ".slice";
    if (dash == std::string::npos) break;
    start = dash + 1;
  }
  return path;
}

}  // namespace

Status ValidateCgroupParent(const std::string& parent, CgroupDriver driver) {
  if (parent.empty()) return OkStatus();
  for (char c : parent) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgumentError("cgroup parent contains a control character");
    }
  }
  size_t start = 0;
  while (start <= parent.size()) {
    size_t end = parent.find('/', start);
    if (end == std::string::npos) end = parent.size();
    std::string_view part(parent.data() + start, end - start);
    if (part == "..") {
      return InvalidArgumentError(StrCat("cgroup parent \"", parent, "\" must not contain \"..\""));
    }
    if (part.size() > 255) {
      return InvalidArgumentError(StrCat("cgroup parent \"", parent.substr(0, 64),
                                         "...\" has a component longer than 255 bytes"));
    }
    start = end + 1;
  }
  std::string lone = CleanPath(parent);
  if (lone.starts_with("/")) lone = lone.substr(1);
  if (lone.ends_with(".slice") && lone.find('/') == std::string::npos) {
    RETURN_IF_ERROR(ExpandSlice(lone).status());
  }
  if (driver == CgroupDriver::kSystemd &&
      !std::filesystem::path(CleanPath(parent)).filename().string().ends_with(".slice")) {
    return InvalidArgumentError(StrCat("cgroup parent \"", parent,
                                       "\" is not a systemd slice (the cgroup driver is systemd)"));
  }
  return OkStatus();
}

namespace {

StatusOr<std::string> CgroupsPath(const SpecInputs& in) {
  const std::string& parent = in.sandbox.cgroup_parent;
  if (in.cgroup_driver == CgroupDriver::kSystemd) {
    std::string slice = parent.empty()
                            ? std::string("system.slice")
                            : std::filesystem::path(CleanPath(parent)).filename().string();
    if (!slice.ends_with(".slice")) {
      return InvalidArgumentError(StrCat("cgroup parent \"", parent, "\" of pod sandbox ",
                                         in.sandbox.id, " is not a systemd slice"));
    }
    return StrCat(slice, ":", kCgroupSystemdPrefix, ":", in.container_id);
  }
  return ContainerCgroupDir(parent, CgroupDriver::kCgroupfs, in.container_id);
}

}  // namespace

StatusOr<std::string> PodCgroupDir(const std::string& cgroup_parent, CgroupDriver driver) {
  if (cgroup_parent.empty()) return std::string();
  std::string base = CleanPath(cgroup_parent);
  std::string name = base.starts_with("/") ? base.substr(1) : base;
  if (driver == CgroupDriver::kSystemd) {
    // runc's systemd driver places units below the slice's expanded path.
    std::string slice = std::filesystem::path(base).filename().string();
    if (!slice.ends_with(".slice")) {
      return InvalidArgumentError(
          StrCat("cgroup parent \"", cgroup_parent, "\" is not a systemd slice"));
    }
    return ExpandSlice(slice);
  }
  // A lone systemd slice name ("kubepods-burstable-pod1.slice", what a
  // kubelet configured for systemd sends) becomes the directory path systemd
  // would give it, so both drivers put the pod in the same place.
  if (name.ends_with(".slice") && name.find('/') == std::string::npos) return ExpandSlice(name);
  if (!base.starts_with("/")) base = "/" + base;
  while (base.size() > 1 && base.ends_with("/")) base.pop_back();
  return base;
}

StatusOr<std::string> ContainerCgroupDir(const std::string& cgroup_parent, CgroupDriver driver,
                                         const std::string& container_id) {
  if (driver == CgroupDriver::kSystemd) {
    ASSIGN_OR_RETURN(std::string slice_dir,
                     PodCgroupDir(cgroup_parent.empty() ? "system.slice" : cgroup_parent, driver));
    return StrCat(slice_dir, "/", kCgroupSystemdPrefix, "-", container_id, ".scope");
  }
  ASSIGN_OR_RETURN(std::string base, PodCgroupDir(cgroup_parent, driver));
  if (base == "/") base.clear();
  return StrCat(base, "/", container_id);
}

namespace {

enum class SeccompKind { kUnconfined, kRuntimeDefault, kLocalhost };

struct SeccompChoice {
  SeccompKind kind = SeccompKind::kUnconfined;
  std::string path;
};

StatusOr<SeccompChoice> ChooseSeccomp(const SecurityContext& sc) {
  if (sc.privileged) return SeccompChoice{};
  if (sc.seccomp) {
    switch (sc.seccomp->profile_type) {
      case ProfileType::kUnconfined:
        return SeccompChoice{};
      case ProfileType::kRuntimeDefault:
        return SeccompChoice{SeccompKind::kRuntimeDefault, ""};
      case ProfileType::kLocalhost:
        if (!sc.seccomp->localhost_ref.starts_with("/")) {
          return InvalidArgumentError(StrCat("seccomp localhost profile \"",
                                             sc.seccomp->localhost_ref,
                                             "\" is not an absolute path"));
        }
        return SeccompChoice{SeccompKind::kLocalhost, sc.seccomp->localhost_ref};
    }
  }
  const std::string& p = sc.seccomp_profile_path;
  // An unset profile means unconfined, as in containerd without unset_seccomp_profile.
  if (p.empty() || p == "unconfined") return SeccompChoice{};
  if (p == "runtime/default" || p == "docker/default") {
    return SeccompChoice{SeccompKind::kRuntimeDefault, ""};
  }
  if (p.starts_with("localhost/")) {
    std::string path = p.substr(std::string_view("localhost/").size());
    if (!path.starts_with("/")) {
      return InvalidArgumentError(
          StrCat("seccomp profile \"", p, "\" does not name an absolute path"));
    }
    return SeccompChoice{SeccompKind::kLocalhost, path};
  }
  return InvalidArgumentError(StrCat("unsupported seccomp profile \"", p, "\""));
}

// Keeps the fields of runtime-spec's LinuxSeccomp, as decoding into the Go
// struct would; anything else in the file is ignored.
StatusOr<json> LocalhostSeccomp(const std::string& path,
                                const std::optional<std::string>& content) {
  if (!content) {
    return InvalidArgumentError(StrCat("seccomp profile ", path, " was not read"));
  }
  json parsed = json::parse(*content, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return InvalidArgumentError(StrCat("seccomp profile ", path, " is not a JSON object"));
  }
  json out = json::object();
  for (const char* key : {"defaultAction", "defaultErrnoRet", "architectures", "flags",
                          "listenerPath", "listenerMetadata", "syscalls"}) {
    if (parsed.contains(key)) out[key] = parsed[key];
  }
  if (!out.contains("defaultAction") || !out["defaultAction"].is_string()) {
    return InvalidArgumentError(StrCat("seccomp profile ", path, " has no defaultAction"));
  }
  return out;
}

bool WantsAppArmor(const SecurityContext& sc) {
  if (sc.privileged) return false;
  if (sc.apparmor) return sc.apparmor->profile_type != ProfileType::kUnconfined;
  return !sc.apparmor_profile.empty() && sc.apparmor_profile != "unconfined";
}

std::vector<std::string> ParseFields(std::string_view line) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    size_t colon = line.find(':', start);
    fields.emplace_back(line.substr(start, colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return fields;
}

// Calls fn(fields) for each non-comment line of an /etc/passwd-like file.
template <typename F>
void ForEachEntry(std::string_view content, F fn) {
  size_t pos = 0;
  while (pos < content.size()) {
    size_t nl = content.find('\n', pos);
    std::string_view line = content.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? content.size() : nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    if (fn(ParseFields(line))) return;
  }
}

std::optional<uint32_t> ParseId(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v >= 0xFFFFFFFFULL) return std::nullopt;
  return static_cast<uint32_t>(v);
}

bool IsNumeric(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
};

std::optional<PasswdEntry> FindUser(std::string_view passwd, std::optional<std::string_view> name,
                                    std::optional<uint32_t> uid) {
  std::optional<PasswdEntry> found;
  ForEachEntry(passwd, [&](const std::vector<std::string>& f) {
    if (f.size() < 4) return false;
    auto u = ParseId(f[2]);
    auto g = ParseId(f[3]);
    if (!u || !g) return false;
    if ((name && f[0] == *name) || (uid && *u == *uid)) {
      found = PasswdEntry{f[0], *u, *g};
      return true;
    }
    return false;
  });
  return found;
}

}  // namespace

const std::vector<std::string>& DefaultCapabilities() {
  static const std::vector<std::string> kCaps = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE",
  };
  return kCaps;
}

const std::vector<std::string>& DefaultMaskedPaths() {
  static const std::vector<std::string> kPaths = {
      "/proc/acpi",
      "/proc/asound",
      "/proc/kcore",
      "/proc/keys",
      "/proc/latency_stats",
      "/proc/timer_list",
      "/proc/timer_stats",
      "/proc/sched_debug",
      "/proc/scsi",
      "/sys/firmware",
      "/sys/devices/virtual/powercap",
  };
  return kPaths;
}

const std::vector<std::string>& DefaultReadonlyPaths() {
  static const std::vector<std::string> kPaths = {
      "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
  };
  return kPaths;
}

StatusOr<std::vector<std::string>> ProcessArgs(const ContainerConfig& c, const ImageConfig& image) {
  std::vector<std::string> command = c.command;
  std::vector<std::string> args = c.args;
  if (command.empty()) {
    if (args.empty()) args = image.cmd;
    const bool blank_entrypoint = image.entrypoint.size() == 1 && image.entrypoint[0].empty();
    if (!blank_entrypoint) command = image.entrypoint;
  }
  command.insert(command.end(), args.begin(), args.end());
  if (command.empty()) {
    return InvalidArgumentError(StrCat("no command specified for container ", c.name));
  }
  return command;
}

StatusOr<std::string> EffectiveUserString(const SecurityContext& sc, const ImageConfig& image) {
  std::string user;
  if (sc.run_as_user) {
    if (*sc.run_as_user < 0) {
      return InvalidArgumentError(StrCat("run_as_user ", *sc.run_as_user, " is negative"));
    }
    user = std::to_string(*sc.run_as_user);
  }
  if (!sc.run_as_username.empty()) user = sc.run_as_username;
  std::string group;
  if (sc.run_as_group) {
    if (*sc.run_as_group < 0) {
      return InvalidArgumentError(StrCat("run_as_group ", *sc.run_as_group, " is negative"));
    }
    group = std::to_string(*sc.run_as_group);
  }
  if (user.empty()) {
    if (!group.empty()) {
      return InvalidArgumentError(
          StrCat("run_as_group ", group, " is specified without run_as_user or run_as_username"));
    }
    return image.user;
  }
  if (!group.empty()) user += ":" + group;
  return user;
}

StatusOr<ResolvedUser> ResolveUser(std::string_view passwd_content, std::string_view group_content,
                                   std::string_view user,
                                   const std::vector<int64_t>& supplemental_groups,
                                   bool merge_image_groups) {
  std::string_view user_part = user;
  std::optional<std::string_view> group_part;
  if (size_t colon = user.find(':'); colon != std::string_view::npos) {
    user_part = user.substr(0, colon);
    group_part = user.substr(colon + 1);
  }
  if (user_part.empty()) user_part = "0";

  ResolvedUser out;
  std::string username;
  if (IsNumeric(user_part)) {
    auto uid = ParseId(user_part);
    if (!uid) return InvalidArgumentError(StrCat("uid ", user_part, " is out of range"));
    out.uid = *uid;
    if (auto entry = FindUser(passwd_content, std::nullopt, out.uid)) {
      out.gid = entry->gid;
      username = entry->name;
    }
  } else {
    auto entry = FindUser(passwd_content, user_part, std::nullopt);
    if (!entry) {
      return InvalidArgumentError(
          StrCat("user \"", user_part, "\" not found in the image's /etc/passwd"));
    }
    out.uid = entry->uid;
    out.gid = entry->gid;
    username = entry->name;
  }

  if (group_part) {
    if (group_part->empty()) {
      return InvalidArgumentError(StrCat("user \"", user, "\" has an empty group"));
    }
    if (IsNumeric(*group_part)) {
      auto gid = ParseId(*group_part);
      if (!gid) return InvalidArgumentError(StrCat("gid ", *group_part, " is out of range"));
      out.gid = *gid;
    } else {
      std::optional<uint32_t> gid;
      ForEachEntry(group_content, [&](const std::vector<std::string>& f) {
        if (f.size() < 3 || f[0] != *group_part) return false;
        gid = ParseId(f[2]);
        return gid.has_value();
      });
      if (!gid) {
        return InvalidArgumentError(
            StrCat("group \"", *group_part, "\" not found in the image's /etc/group"));
      }
      out.gid = *gid;
    }
  }

  auto add_gid = [&](uint32_t gid) {
    if (std::find(out.additional_gids.begin(), out.additional_gids.end(), gid) ==
        out.additional_gids.end()) {
      out.additional_gids.push_back(gid);
    }
  };
  // The primary gid is listed too, so setgroups() never leaves the process
  // with groups it inherited (containerd's fix for CVE-2023-25173).
  add_gid(out.gid);
  if (!username.empty() && merge_image_groups) {
    ForEachEntry(group_content, [&](const std::vector<std::string>& f) {
      if (f.size() < 4) return false;
      auto gid = ParseId(f[2]);
      if (!gid) return false;
      std::string_view members = f[3];
      size_t start = 0;
      while (start <= members.size()) {
        size_t comma = members.find(',', start);
        std::string_view m = members.substr(start, comma - start);
        if (m == username) {
          add_gid(*gid);
          break;
        }
        if (comma == std::string_view::npos) break;
        start = comma + 1;
      }
      return false;
    });
  }
  for (int64_t g : supplemental_groups) {
    if (g < 0 || g >= 0xFFFFFFFFLL) {
      return InvalidArgumentError(StrCat("supplemental group ", g, " is out of range"));
    }
    add_gid(static_cast<uint32_t>(g));
  }
  return out;
}

std::optional<std::string> SeccompLocalhostPath(const SecurityContext& sc) {
  auto choice = ChooseSeccomp(sc);
  if (!choice.ok() || choice->kind != SeccompKind::kLocalhost) return std::nullopt;
  return choice->path;
}

StatusOr<nlohmann::json> BuildSpec(const SpecInputs& in, SpecNotes* notes) {
  SpecNotes local_notes;
  SpecNotes& n = notes ? *notes : local_notes;
  n = SpecNotes{};
  const ContainerConfig& c = in.container;
  const SecurityContext& sc = c.security_context;
  const std::string who = StrCat("container ", c.name, " (", in.container_id, ")");

  if (in.container_id.empty()) return InvalidArgumentError("container id is empty");
  if (!in.rootfs_path.starts_with("/")) {
    return InvalidArgumentError(
        StrCat(who, ": rootfs path \"", in.rootfs_path, "\" is not absolute"));
  }
  if (sc.privileged && !in.sandbox.privileged) {
    return InvalidArgumentError(
        StrCat(who, ": privileged container in unprivileged pod sandbox ", in.sandbox.id));
  }

  // process
  json process = json::object();
  ASSIGN_OR_RETURN(std::vector<std::string> args, ProcessArgs(c, in.image));
  process["args"] = std::move(args);
  process["terminal"] = c.tty;

  std::vector<std::string> env = {std::string(kDefaultPath)};
  if (!in.sandbox.hostname.empty()) SetEnv(env, "HOSTNAME=" + in.sandbox.hostname);
  for (const auto& e : in.image.env) SetEnv(env, e);
  for (const auto& [key, value] : c.envs) {
    if (key.empty())
      return InvalidArgumentError(StrCat(who, ": environment variable without a name"));
    SetEnv(env, StrCat(key, "=", value));
  }
  process["env"] = std::move(env);

  std::string cwd = !c.working_dir.empty()          ? c.working_dir
                    : !in.image.working_dir.empty() ? in.image.working_dir
                                                    : std::string("/");
  if (!cwd.starts_with("/")) {
    return InvalidArgumentError(StrCat(who, ": working directory \"", cwd, "\" is not absolute"));
  }
  process["cwd"] = cwd;

  {
    auto user = EffectiveUserString(sc, in.image);
    if (!user.ok()) return Annotate(user.status(), who);
    auto resolved = ResolveUser(in.etc_passwd, in.etc_group, *user, sc.supplemental_groups,
                                sc.supplemental_groups_policy == SupplementalGroupsPolicy::kMerge);
    if (!resolved.ok()) return Annotate(resolved.status(), who);
    process["user"] = {{"uid", resolved->uid},
                       {"gid", resolved->gid},
                       {"additionalGids", resolved->additional_gids}};
  }

  auto caps = ComputeCaps(sc, in.host);
  if (!caps.ok()) return Annotate(caps.status(), who);
  process["capabilities"] = {{"bounding", *caps}, {"effective", *caps}, {"permitted", *caps}};
  process["noNewPrivileges"] = sc.no_new_privs;

  if (c.resources.oom_score_adj) {
    int64_t wanted = *c.resources.oom_score_adj;
    int64_t applied = wanted;
    if (!in.host.can_lower_oom_score_adj && wanted < in.host.current_oom_score_adj) {
      applied = in.host.current_oom_score_adj;
      n.oom_score_adj_clamped = SpecNotes::OomClamp{wanted, applied};
    }
    process["oomScoreAdj"] = applied;
  }
  n.apparmor_ignored = WantsAppArmor(sc);

  json spec = json::object();
  spec["ociVersion"] = "1.0.2";
  spec["process"] = std::move(process);
  spec["root"] = {{"path", in.rootfs_path}, {"readonly", sc.readonly_rootfs}};

  auto namespaces = BuildNamespaces(in);
  if (!namespaces.ok()) return namespaces.status();
  // Only a container with its own (the pod's) UTS namespace gets a hostname;
  // one on the node's network shares the node's UTS namespace and name.
  bool has_uts = std::any_of(namespaces->begin(), namespaces->end(),
                             [](const json& ns) { return ns["type"] == "uts"; });
  if (has_uts && !in.sandbox.hostname.empty()) spec["hostname"] = in.sandbox.hostname;

  ASSIGN_OR_RETURN(MountsResult mounts, BuildMounts(in));
  json mounts_json = json::array();
  for (const MountEntry& m : mounts.mounts) mounts_json.push_back(MountJson(m));
  spec["mounts"] = std::move(mounts_json);

  json linux = json::object();
  linux["namespaces"] = std::move(*namespaces);
  if (!in.sandbox.userns_path.empty()) {
    auto maps = [](const std::vector<IdMapping>& m) {
      json a = json::array();
      for (const auto& l : m) {
        a.push_back({{"containerID", l.container_id}, {"hostID", l.host_id}, {"size", l.length}});
      }
      return a;
    };
    linux["uidMappings"] = maps(in.sandbox.uid_mappings);
    linux["gidMappings"] = maps(in.sandbox.gid_mappings);
  }
  json resources = json::object();
  json linux_devices = json::array();
  json device_rules;
  RETURN_IF_ERROR(BuildDevices(in, linux_devices, device_rules));
  resources["devices"] = std::move(device_rules);
  RETURN_IF_ERROR(BuildResources(in.container.resources, in.container.name, in.host, resources));
  linux["resources"] = std::move(resources);
  linux["devices"] = std::move(linux_devices);
  ASSIGN_OR_RETURN(linux["cgroupsPath"], CgroupsPath(in));

  if (sc.privileged) {
    linux["maskedPaths"] = json::array();
    linux["readonlyPaths"] = json::array();
  } else {
    linux["maskedPaths"] = sc.masked_paths ? *sc.masked_paths : DefaultMaskedPaths();
    linux["readonlyPaths"] = sc.readonly_paths ? *sc.readonly_paths : DefaultReadonlyPaths();
  }
  if (!mounts.rootfs_propagation.empty()) linux["rootfsPropagation"] = mounts.rootfs_propagation;

  ASSIGN_OR_RETURN(json sysctls, BuildSysctls(in));
  if (!sysctls.empty()) linux["sysctl"] = std::move(sysctls);

  auto seccomp = ChooseSeccomp(sc);
  if (!seccomp.ok()) return Annotate(seccomp.status(), who);
  if (seccomp->kind != SeccompKind::kUnconfined && !in.host.seccomp_enabled) {
    return FailedPreconditionError(
        StrCat(who, ": a seccomp profile is requested but this host does not support seccomp"));
  }
  switch (seccomp->kind) {
    case SeccompKind::kUnconfined:
      n.seccomp = "unconfined";
      break;
    case SeccompKind::kRuntimeDefault:
      n.seccomp = "runtime/default";
      linux["seccomp"] = DefaultSeccompProfile(*caps, in.host.arch, in.host.kernel);
      break;
    case SeccompKind::kLocalhost: {
      n.seccomp = "localhost/" + seccomp->path;
      auto profile = LocalhostSeccomp(seccomp->path, in.seccomp_localhost_content);
      if (!profile.ok()) return Annotate(profile.status(), who);
      linux["seccomp"] = std::move(*profile);
      break;
    }
  }
  spec["linux"] = std::move(linux);

  json annotations = json::object();
  for (const auto& [k, v] : c.annotations) annotations[k] = v;
  annotations["io.kubernetes.cri.container-type"] = "container";
  annotations["io.kubernetes.cri.container-name"] = c.name;
  annotations["io.kubernetes.cri.sandbox-id"] = in.sandbox.id;
  if (!in.sandbox.name.empty()) annotations["io.kubernetes.cri.sandbox-name"] = in.sandbox.name;
  if (!in.sandbox.namespace_.empty()) {
    annotations["io.kubernetes.cri.sandbox-namespace"] = in.sandbox.namespace_;
  }
  if (!in.image_name.empty()) annotations["io.kubernetes.cri.image-name"] = in.image_name;
  if (const auto& r = in.sandbox.resources) {
    // containerd's names, which VM runtimes (Kata) read to size the pod.
    annotations["io.kubernetes.cri.sandbox-cpu-period"] = std::to_string(r->cpu_period);
    annotations["io.kubernetes.cri.sandbox-cpu-quota"] = std::to_string(r->cpu_quota);
    annotations["io.kubernetes.cri.sandbox-cpu-shares"] = std::to_string(r->cpu_shares);
    annotations["io.kubernetes.cri.sandbox-memory"] = std::to_string(r->memory_limit_in_bytes);
  }
  spec["annotations"] = std::move(annotations);
  return spec;
}

StatusOr<json> BuildResourcesUpdate(const Resources& resources, const std::string& container_name,
                                    const HostCaps& host) {
  json out = json::object();
  RETURN_IF_ERROR(BuildResources(resources, container_name, host, out));
  return out;
}

StatusOr<std::string> BuildSpecJson(const SpecInputs& in, SpecNotes* notes) {
  ASSIGN_OR_RETURN(json spec, BuildSpec(in, notes));
  return spec.dump();
}

}  // namespace berth::oci
