#include "doctor/doctor.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "common/fs.h"
#include "common/numbers.h"
#include "common/process.h"
#include "network/cni_config.h"
#include "network/pod_network.h"
#include "registry/hosts.h"

namespace berth::doctor {

namespace fs = std::filesystem;

namespace {

std::string Join(const std::vector<std::string>& v, std::string_view sep = ", ") {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += StrCat(i ? sep : "", v[i]);
  return out;
}

bool Exists(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

// The directory itself when it exists, else its nearest existing ancestor:
// where berthd will create it, and so the filesystem that matters.
fs::path NearestExisting(fs::path p) {
  std::error_code ec;
  while (!p.empty() && !fs::exists(p, ec)) {
    if (p == p.parent_path()) break;
    p = p.parent_path();
  }
  return p.empty() ? fs::path("/") : p;
}

// "Name:\tvalue" of a /proc/<pid>/status file; nullopt when absent.
std::optional<std::string> StatusField(const std::string& status, std::string_view field) {
  size_t pos = 0;
  while (pos < status.size()) {
    size_t end = status.find('\n', pos);
    if (end == std::string::npos) end = status.size();
    std::string_view line(status.data() + pos, end - pos);
    if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':') {
      std::string_view v = line.substr(field.size() + 1);
      while (!v.empty() && (v.front() == '\t' || v.front() == ' ')) v.remove_prefix(1);
      return std::string(v);
    }
    pos = end + 1;
  }
  return std::nullopt;
}

std::string FirstLine(std::string_view s) {
  std::string line(s.substr(0, s.find('\n')));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

std::string HumanBytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::ostringstream out;
  out.precision(u == 0 ? 0 : 1);
  out << std::fixed << v << " " << units[u];
  return out.str();
}

constexpr std::string_view kKnownV1Controllers[] = {
    "blkio",  "cpu",     "cpuacct",  "cpuset",     "devices", "freezer", "hugetlb",
    "memory", "net_cls", "net_prio", "perf_event", "pids",    "rdma",    "misc"};

}  // namespace

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kPass:
      return "pass";
    case Outcome::kWarn:
      return "warn";
    case Outcome::kFail:
      return "fail";
  }
  return "fail";
}

std::string_view CgroupLayoutName(CgroupLayout l) {
  switch (l) {
    case CgroupLayout::kNone:
      return "none";
    case CgroupLayout::kV1:
      return "v1";
    case CgroupLayout::kV2:
      return "v2";
    case CgroupLayout::kHybrid:
      return "hybrid";
  }
  return "none";
}

std::string FindInPath(std::string_view name) {
  const char* path = ::getenv("PATH");
  std::string p = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& dir : config::SplitColonList(p)) {
    fs::path candidate = fs::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

std::string FindHelperBinary(std::string_view name) {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path beside = self.parent_path() / name;
    if (::access(beside.c_str(), X_OK) == 0) return beside.string();
  }
  return FindInPath(name);
}

// --- report --------------------------------------------------------------------------------

bool Report::CanRunPods() const {
  return std::none_of(checks.begin(), checks.end(),
                      [](const Check& c) { return c.outcome == Outcome::kFail; });
}

nlohmann::json Report::ToJson() const {
  nlohmann::json list = nlohmann::json::array();
  for (const Check& c : checks) {
    nlohmann::json j{{"name", c.name},
                     {"status", OutcomeName(c.outcome)},
                     {"summary", c.summary},
                     {"details", c.details}};
    if (!c.why.empty()) j["why"] = c.why;
    if (!c.fix.empty()) j["fix"] = c.fix;
    list.push_back(std::move(j));
  }
  return {{"canRunPods", CanRunPods()}, {"checks", std::move(list)}};
}

std::string Report::ToText() const {
  size_t width = 0;
  int warnings = 0, failures = 0;
  for (const Check& c : checks) {
    width = std::max(width, c.name.size());
    warnings += c.outcome == Outcome::kWarn;
    failures += c.outcome == Outcome::kFail;
  }
  std::ostringstream out;
  for (const Check& c : checks) {
    std::string label = c.outcome == Outcome::kPass   ? "ok  "
                        : c.outcome == Outcome::kWarn ? "WARN"
                                                      : "FAIL";
    out << label << "  " << c.name << std::string(width - c.name.size() + 2, ' ') << c.summary
        << "\n";
    const std::string indent(8 + width, ' ');
    if (!c.why.empty()) out << indent << "why: " << c.why << "\n";
    if (!c.fix.empty()) out << indent << "fix: " << c.fix << "\n";
  }
  out << "\n";
  if (CanRunPods()) {
    out << "This host can run pods";
  } else {
    out << "This host cannot run pods: " << failures << " check" << (failures == 1 ? "" : "s")
        << " failed";
  }
  if (warnings > 0) out << " (" << warnings << " warning" << (warnings == 1 ? "" : "s") << ")";
  out << ".\n";
  return out.str();
}

// --- cgroups -------------------------------------------------------------------------------

CgroupInfo DetectCgroups(const fs::path& root) {
  CgroupInfo info;
  auto read_controllers = [](const fs::path& file) {
    std::vector<std::string> out;
    StatusOr<std::string> text = ReadFile(file);
    if (!text.ok()) return out;
    std::istringstream in(*text);
    std::string c;
    while (in >> c) out.push_back(c);
    std::sort(out.begin(), out.end());
    return out;
  };
  if (Exists(root / "cgroup.controllers")) {
    info.layout = CgroupLayout::kV2;
    info.v2_path = root;
    info.v2_controllers = read_controllers(root / "cgroup.controllers");
    return info;
  }
  std::set<std::string> v1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (name == "unified" || !e.is_directory() || e.is_symlink()) continue;
    if (!Exists(e.path() / "cgroup.procs")) continue;
    // Co-mounted controllers share a directory: "cpu,cpuacct".
    std::istringstream parts(name);
    std::string part;
    while (std::getline(parts, part, ',')) {
      bool known = std::find(std::begin(kKnownV1Controllers), std::end(kKnownV1Controllers),
                             part) != std::end(kKnownV1Controllers);
      v1.insert(known ? part : StrCat("name=", part));
    }
  }
  info.v1_controllers.assign(v1.begin(), v1.end());
  if (Exists(root / "unified" / "cgroup.controllers")) {
    info.v2_path = root / "unified";
    info.v2_controllers = read_controllers(root / "unified" / "cgroup.controllers");
  }
  if (!info.v1_controllers.empty()) {
    info.layout = info.v2_path.empty() ? CgroupLayout::kV1 : CgroupLayout::kHybrid;
  } else if (!info.v2_path.empty()) {
    info.layout = CgroupLayout::kV2;  // only a v2 tree, mounted below the root
  }
  return info;
}

Check CheckCgroups(const CgroupInfo& info) {
  Check c;
  c.name = "cgroups";
  c.details = {{"layout", CgroupLayoutName(info.layout)},
               {"v1Controllers", info.v1_controllers},
               {"v2Path", info.v2_path.string()},
               {"v2Controllers", info.v2_controllers}};
  auto has = [](const std::vector<std::string>& v, std::string_view x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  if (info.layout == CgroupLayout::kNone) {
    c.outcome = Outcome::kFail;
    c.summary = "no cgroup hierarchy found";
    c.why = "containers are limited and accounted through cgroups; runc and crun need them";
    c.fix =
        "mount cgroup2 on /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup), or the v1 "
        "controllers below it";
    return c;
  }
  const bool v2 = info.layout == CgroupLayout::kV2;
  const std::vector<std::string>& ctrls = v2 ? info.v2_controllers : info.v1_controllers;
  const std::vector<std::string_view> required =
      v2 ? std::vector<std::string_view>{"cpu", "memory", "pids"}
         : std::vector<std::string_view>{"cpu", "memory", "pids", "devices", "freezer"};
  const std::vector<std::string_view> optional =
      v2 ? std::vector<std::string_view>{"cpuset", "io", "hugetlb"}
         : std::vector<std::string_view>{"cpuacct", "cpuset", "blkio", "hugetlb"};
  std::vector<std::string> missing_required, missing_optional;
  for (auto r : required) {
    if (!has(ctrls, r)) missing_required.emplace_back(r);
  }
  for (auto o : optional) {
    if (!has(ctrls, o)) missing_optional.emplace_back(o);
  }
  switch (info.layout) {
    case CgroupLayout::kV2:
      c.summary = StrCat("cgroup v2 (unified) at ", info.v2_path.string(),
                         ", controllers: ", ctrls.empty() ? "none" : Join(ctrls));
      break;
    case CgroupLayout::kV1:
      c.summary = StrCat("cgroup v1, controllers: ", Join(ctrls));
      break;
    case CgroupLayout::kHybrid:
      c.summary =
          StrCat("hybrid: cgroup v1 controllers ", Join(ctrls), "; cgroup v2 at ",
                 info.v2_path.string(), " with ",
                 info.v2_controllers.empty() ? "no controllers"
                                             : StrCat("controllers: ", Join(info.v2_controllers)));
      c.why =
          "containers use the v1 controllers. runc supports this layout; crun refuses it "
          "(\"cgroups in hybrid mode not supported\") as long as the v2 tree has any "
          "controller, and controllers enabled there are not available to containers";
      break;
    case CgroupLayout::kNone:
      break;
  }
  c.details["missingRequired"] = missing_required;
  c.details["missingOptional"] = missing_optional;
  if (!missing_required.empty()) {
    c.outcome = Outcome::kFail;
    c.why = StrCat("the ", Join(missing_required),
                   " controller(s) are needed to run and limit containers",
                   c.why.empty() ? "" : StrCat("; ", c.why));
    c.fix = v2 ? StrCat("enable them for child cgroups: echo \"+", Join(missing_required, " +"),
                        "\" > ", (info.v2_path / "cgroup.subtree_control").string(),
                        ", or check the kernel command line (cgroup_disable=)")
               : "mount the missing v1 hierarchies below the cgroup root (mount -t cgroup -o "
                 "<controller> cgroup /sys/fs/cgroup/<controller>), or boot with "
                 "systemd.unified_cgroup_hierarchy=1 for cgroup v2";
  } else if (!missing_optional.empty()) {
    c.outcome = Outcome::kWarn;
    std::string why = StrCat("without ", Join(missing_optional), " the pod limits of ",
                             missing_optional.size() == 1 ? "it" : "them",
                             " are not applied (hugepages, CPU sets, block I/O)");
    c.why = c.why.empty() ? why : StrCat(c.why, "; ", why);
    c.fix = info.layout == CgroupLayout::kHybrid
                ? "boot with systemd.unified_cgroup_hierarchy=1 (pure cgroup v2, which crun "
                  "also supports), or mount the missing controllers as v1 hierarchies"
                : "enable the missing controllers (kernel configuration or cgroup mounts); pods "
                  "that do not ask for these limits are unaffected";
  }
  return c;
}

// --- runtime handlers ----------------------------------------------------------------------

std::vector<HandlerFinding> FindHandlers(const config::Config& config) {
  std::vector<HandlerFinding> out;
  for (const auto& [name, binary] : config.handlers) {
    HandlerFinding h;
    h.name = name;
    h.configured_binary = binary;
    if (binary.find('/') != std::string::npos) {
      if (::access(binary.c_str(), X_OK) == 0) h.binary = binary;
    } else {
      h.binary = FindInPath(binary);
    }
    if (!h.binary.empty()) {
      RunOptions opts;
      opts.timeout = std::chrono::seconds(10);
      StatusOr<ProcessResult> r = RunProcess({h.binary, "--version"}, opts);
      if (r.ok() && r->exit_code == 0) h.version = FirstLine(r->out);
    }
    out.push_back(std::move(h));
  }
  return out;
}

void ProbeHandlers(std::vector<HandlerFinding>& handlers, const std::string& probe_binary,
                   const fs::path& work_dir, bool systemd_cgroup) {
  if (probe_binary.empty()) return;
  std::vector<std::thread> probes;
  for (HandlerFinding& h : handlers) {
    if (h.binary.empty()) continue;
    probes.emplace_back([&h, &probe_binary, &work_dir, systemd_cgroup] {
      oci::ProbeOptions opts;
      opts.binary = h.binary;
      opts.probe_binary = probe_binary;
      opts.work_dir = (work_dir / h.name).string();
      opts.systemd_cgroup = systemd_cgroup;
      h.probe = oci::ProbeRuntime(opts);
      h.probed = true;
    });
  }
  for (auto& t : probes) t.join();
  std::error_code ec;
  fs::remove_all(work_dir, ec);
}

std::string ChooseDefaultHandler(const std::vector<HandlerFinding>& handlers,
                                 const std::string& configured_default) {
  if (!configured_default.empty()) return configured_default;
  auto works = [&](const std::string& name) {
    return std::any_of(handlers.begin(), handlers.end(), [&](const HandlerFinding& h) {
      return h.name == name && h.probed && h.probe.works;
    });
  };
  for (const char* preferred : {"crun", "runc"}) {
    if (works(preferred)) return preferred;
  }
  for (const HandlerFinding& h : handlers) {
    if (h.probed && h.probe.works) return h.name;
  }
  for (const HandlerFinding& h : handlers) {
    if (h.name == "runc" && !h.binary.empty()) return h.name;
  }
  for (const HandlerFinding& h : handlers) {
    if (!h.binary.empty()) return h.name;
  }
  return "";
}

std::vector<Check> CheckRuntimeHandlers(const std::vector<HandlerFinding>& handlers,
                                        const std::string& default_handler,
                                        const CgroupInfo& cgroups) {
  std::vector<Check> out;
  for (const HandlerFinding& h : handlers) {
    Check c;
    c.name = StrCat("runtime-handler/", h.name);
    const bool is_default = h.name == default_handler;
    c.details = {{"handler", h.name},
                 {"configuredBinary", h.configured_binary},
                 {"binary", h.binary},
                 {"version", h.version},
                 {"probed", h.probed},
                 {"works", h.probed && h.probe.works},
                 {"error", h.probe.error},
                 {"default", is_default},
                 {"recursiveReadOnlyMounts", h.probe.features.recursive_read_only_mounts}};
    const std::string what = StrCat(h.binary.empty() ? h.configured_binary : h.binary,
                                    h.version.empty() ? "" : StrCat(" (", h.version, ")"),
                                    is_default ? ", default" : "");
    if (h.binary.empty()) {
      c.outcome = is_default ? Outcome::kFail : Outcome::kWarn;
      c.summary = StrCat(h.configured_binary, " not found",
                         h.configured_binary.find('/') == std::string::npos ? " in PATH" : "");
      c.why = "berthd leaves out a handler whose binary is missing; pods asking for it fail";
      c.fix = StrCat("install it (apt-get install ",
                     h.name == "crun" || h.name == "runc" ? h.name : "<its package>",
                     "), or remove it with runtime.handlers.", h.name, " = \"\"");
    } else if (!h.probed) {
      c.outcome = Outcome::kWarn;
      c.summary = StrCat(what, ": not probed (no berth-pause to run in a test container)");
      c.fix = "install berth-pause beside berthd";
    } else if (h.probe.works) {
      c.summary = StrCat(what, ": ran a test container");
    } else {
      c.outcome = is_default ? Outcome::kFail : Outcome::kWarn;
      c.summary = StrCat(what, ": cannot run containers here: ", FirstLine(h.probe.error));
      const bool hybrid_refusal =
          h.probe.error.find("hybrid") != std::string::npos ||
          (cgroups.layout == CgroupLayout::kHybrid && h.binary.find("crun") != std::string::npos);
      if (hybrid_refusal) {
        c.why = StrCat(
            "crun refuses hosts with hybrid cgroups (v1 controllers plus a v2 tree that has "
            "controllers",
            cgroups.v2_controllers.empty() ? "" : StrCat(": ", Join(cgroups.v2_controllers)),
            " at ", cgroups.v2_path.string(),
            "), because it cannot tell which hierarchy a "
            "controller belongs to");
        c.fix = StrCat(is_default ? "set runtime.default_handler = \"runc\", or "
                                  : "use runc "
                                    "here, or ",
                       "boot with systemd.unified_cgroup_hierarchy=1 (pure cgroup v2) to use crun");
      } else {
        c.why = is_default ? "every pod without a RuntimeClass uses the default handler"
                           : StrCat("pods of a RuntimeClass with handler \"", h.name, "\" fail");
        c.fix = StrCat("run the runtime by hand to see why (", h.binary,
                       " --version; berthd's log has the probe's full error), or drop the "
                       "handler with runtime.handlers.",
                       h.name, " = \"\"");
      }
    }
    out.push_back(std::move(c));
  }
  Check d;
  d.name = "default-runtime";
  d.details = {{"handler", default_handler}};
  auto it = std::find_if(handlers.begin(), handlers.end(),
                         [&](const HandlerFinding& h) { return h.name == default_handler; });
  if (default_handler.empty() || it == handlers.end()) {
    d.outcome = Outcome::kFail;
    d.summary = default_handler.empty()
                    ? "no OCI runtime of runtime.handlers is installed"
                    : StrCat("runtime.default_handler \"", default_handler, "\" is not configured");
    d.why = "pods need an OCI runtime";
    d.fix = "apt-get install runc (or crun on a pure cgroup v2 host)";
  } else if (it->probed && it->probe.works) {
    d.summary = StrCat("pods without a RuntimeClass run with \"", default_handler, "\"");
  } else {
    d.outcome = Outcome::kFail;
    d.summary = StrCat("the default handler \"", default_handler, "\" cannot run containers");
    d.why = "RuntimeReady is false and every pod without a RuntimeClass fails";
    d.fix = StrCat("see runtime-handler/", default_handler,
                   " above; with runtime.default_handler unset berthd picks crun where it "
                   "works, else runc");
  }
  out.push_back(std::move(d));
  return out;
}

Check CheckHelpers(const std::string& monitor_binary, const std::string& pause_binary) {
  Check c;
  c.name = "helpers";
  c.details = {{"berthMonitor", monitor_binary}, {"berthPause", pause_binary}};
  std::vector<std::string> missing;
  if (monitor_binary.empty()) missing.emplace_back("berth-monitor");
  if (pause_binary.empty()) missing.emplace_back("berth-pause");
  if (missing.empty()) {
    c.summary = StrCat(monitor_binary, ", ", pause_binary);
    return c;
  }
  c.outcome = Outcome::kFail;
  c.summary = StrCat(Join(missing), " not found beside berthd or in PATH");
  c.why =
      "berth-monitor is the parent of every container; berth-pause is the init of pods "
      "sharing a PID namespace and the test container of the runtime probes";
  c.fix =
      "install them in the same directory as berthd (the berth package puts all three in "
      "/usr/bin)";
  return c;
}

// --- kernel features -----------------------------------------------------------------------

Check CheckOverlayfs(const fs::path& proc_filesystems, const fs::path& data_dir) {
  Check c;
  c.name = "overlayfs";
  StatusOr<std::string> filesystems = ReadFile(proc_filesystems);
  bool listed = false;
  if (filesystems.ok()) {
    std::istringstream in(*filesystems);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::string w, last;
      while (words >> w) last = w;
      listed |= last == "overlay";
    }
  }
  c.details["kernelListsOverlay"] = listed;
  if (!listed) {
    c.outcome = Outcome::kFail;
    c.summary = StrCat("overlay is not in ", proc_filesystems.string());
    c.why = "container root filesystems are overlay mounts of the image layers";
    c.fix = "load the module (modprobe overlay) and add it to /etc/modules-load.d/";
    return c;
  }
  const fs::path base = NearestExisting(data_dir);
  c.details["testedOn"] = base.string();
  const fs::path scratch = base / StrCat(".berth-doctor-", RandomHex(4));
  ScopeGuard cleanup([&] {
    ::umount2((scratch / "merged").c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(scratch, ec);
  });
  for (const char* d : {"lower", "upper", "work", "merged"}) {
    Status s = MakeDirs(scratch / d, 0700);
    if (!s.ok()) {
      c.outcome = Outcome::kWarn;
      c.summary =
          StrCat("overlay is available, but a test mount could not be prepared: ", s.message());
      c.fix = StrCat("run berthd doctor as root, with ", base.string(), " writable");
      return c;
    }
  }
  std::string opts =
      StrCat("lowerdir=", (scratch / "lower").string(), ",upperdir=", (scratch / "upper").string(),
             ",workdir=", (scratch / "work").string());
  if (::mount("overlay", (scratch / "merged").c_str(), "overlay", 0, opts.c_str()) != 0) {
    int err = errno;
    c.outcome = Outcome::kFail;
    c.summary = StrCat("an overlay mount with its upper layer on ", base.string(),
                       " fails: ", std::strerror(err));
    c.why = StrCat("writable container layers live under ", data_dir.string(),
                   "; the filesystem there must support being an overlay upper layer (ext4, xfs "
                   "with d_type, btrfs, tmpfs; not overlayfs itself or NFS)");
    c.fix = "put paths.root on such a filesystem (dmesg shows the kernel's reason)";
    return c;
  }
  Status w = WriteFileAtomic(scratch / "merged" / "probe", "x");
  if (!w.ok() || !Exists(scratch / "upper" / "probe")) {
    c.outcome = Outcome::kFail;
    c.summary = StrCat("an overlay mounted on ", base.string(), " is not writable");
    c.fix = "check dmesg for overlayfs errors";
    return c;
  }
  c.summary = StrCat("mounted a writable overlay on ", base.string());
  return c;
}

namespace {

#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

struct MountAttr {  // struct mount_attr of <linux/mount.h>
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};

// Tries an ID-mapped clone of the mount holding `dir`; returns 0 or an errno.
int TryIdmappedMount(const fs::path& dir) {
#if defined(SYS_open_tree) && defined(SYS_mount_setattr)
  // A child in a new user namespace provides the mapping; it waits on a pipe
  // until its namespace has been used, then exits.
  int ready[2], done[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return errno;
  if (::pipe2(done, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(ready[0]);
    ::close(ready[1]);
    return e;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    // Only the parent may hold the write end of `done`: its close is the
    // child's signal to exit.
    ::close(done[1]);
    ::close(ready[0]);
    char ok = ::unshare(CLONE_NEWUSER) == 0 ? 1 : 0;
    (void)!::write(ready[1], &ok, 1);
    char b;
    (void)!::read(done[0], &b, 1);
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(done[0]);
  ScopeGuard reap([&] {
    ::close(done[1]);
    int st;
    while (pid > 0 && ::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    ::close(ready[0]);
  });
  if (pid < 0) return errno;
  char ok = 0;
  if (::read(ready[0], &ok, 1) != 1 || !ok) return EPERM;
  // Written in place: /proc/<pid>/*_map files take one write each.
  for (const char* map : {"uid_map", "gid_map"}) {
    UniqueFd f(
        ::open((fs::path("/proc") / std::to_string(pid) / map).c_str(), O_WRONLY | O_CLOEXEC));
    const char line[] = "0 100000 65536\n";
    if (!f.valid() || ::write(f.get(), line, sizeof line - 1) < 0) return errno;
  }
  UniqueFd userns(::open((fs::path("/proc") / std::to_string(pid) / "ns" / "user").c_str(),
                         O_RDONLY | O_CLOEXEC));
  if (!userns.valid()) return errno;
  UniqueFd tree(static_cast<int>(
      ::syscall(SYS_open_tree, AT_FDCWD, dir.c_str(), OPEN_TREE_CLONE | O_CLOEXEC)));
  if (!tree.valid()) return errno;
  MountAttr attr{};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns.get());
  if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
    return errno;
  }
  return 0;  // the detached clone goes away with its fd
#else
  (void)dir;
  return ENOSYS;
#endif
}

}  // namespace

Check CheckIdmappedMounts(const fs::path& dir) {
  Check c;
  c.name = "idmapped-mounts";
  const fs::path base = NearestExisting(dir);
  c.details["testedOn"] = base.string();
  int err = TryIdmappedMount(base);
  c.details["supported"] = err == 0;
  if (err == 0) {
    c.summary = StrCat("the filesystem of ", base.string(), " supports ID-mapped mounts");
    return c;
  }
  c.outcome = Outcome::kWarn;
  c.summary = StrCat("no ID-mapped mount of ", base.string(), ": ", std::strerror(err));
  c.why =
      "pods with user namespaces (hostUsers: false) need ID-mapped mounts of their root "
      "filesystem and volumes (Linux 5.12+, per filesystem); without them berthd refuses such "
      "pods with a message naming the mount, other pods are not affected";
  c.fix =
      "only for pods with hostUsers: false: put paths.root on ext4, xfs, btrfs or tmpfs with "
      "a kernel of 6.3 or newer, and run berthd in the host's mount namespace (not a chroot)";
  return c;
}

Check CheckSeccomp(const fs::path& proc_self_status, const fs::path& actions_avail) {
  Check c;
  c.name = "seccomp";
  StatusOr<std::string> status = ReadFile(proc_self_status);
  std::optional<std::string> mode =
      status.ok() ? StatusField(*status, "Seccomp") : std::optional<std::string>();
  StatusOr<std::string> actions = ReadFile(actions_avail);
  c.details = {{"statusField", mode.value_or("")},
               {"actions", actions.ok() ? FirstLine(*actions) : ""}};
  const bool filters = actions.ok() && actions->find("errno") != std::string::npos;
  if (mode && filters) {
    c.summary = StrCat("seccomp filters available (actions: ", FirstLine(*actions), ")");
    return c;
  }
  c.outcome = Outcome::kWarn;
  c.summary = !mode ? StrCat("the kernel has no seccomp (no Seccomp field in ",
                             proc_self_status.string(), ")")
                    : StrCat("the kernel has no seccomp filters (", actions_avail.string(),
                             actions.ok() ? " lacks errno)" : " is missing)");
  c.why =
      "containers with the RuntimeDefault seccomp profile (the kubelet's seccompDefault) "
      "cannot start; Unconfined ones can";
  c.fix =
      "use a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER (every Debian "
      "kernel is)";
  return c;
}

Check CheckOomScoreAdj(const fs::path& proc_self_status, const fs::path& oom_score_adj) {
  Check c;
  c.name = "oom-score-adj";
  StatusOr<std::string> status = ReadFile(proc_self_status);
  std::optional<std::string> cap_eff =
      status.ok() ? StatusField(*status, "CapEff") : std::optional<std::string>();
  StatusOr<std::string> adj_text = ReadFile(oom_score_adj);
  const int adj = adj_text.ok() ? ParseDecimal<int>(*adj_text).value_or(0) : 0;
  c.details = {{"capEff", cap_eff.value_or("")}, {"oomScoreAdj", adj}};
  if (!cap_eff) {
    c.outcome = Outcome::kWarn;
    c.summary = StrCat("cannot read CapEff from ", proc_self_status.string());
    c.fix = "run berthd doctor on the host berthd runs on";
    return c;
  }
  uint64_t caps = std::strtoull(cap_eff->c_str(), nullptr, 16);
  const bool sys_resource = (caps >> 24) & 1;  // CAP_SYS_RESOURCE
  c.details["capSysResource"] = sys_resource;
  if (sys_resource) {
    c.summary = "CAP_SYS_RESOURCE held: container oom_score_adj is set as the kubelet asks";
    return c;
  }
  c.outcome = Outcome::kWarn;
  c.summary = StrCat("CAP_SYS_RESOURCE is missing (CapEff ", *cap_eff,
                     "): oom_score_adj cannot be lowered below ", adj);
  c.why = StrCat(
      "the kubelet asks for lower values for Guaranteed and Burstable pods (down to -997); "
      "berthd clamps them to ",
      adj,
      " and logs event=oom_score_adj_clamped, so under memory pressure those containers "
      "are no better protected than berthd's own (runc alone would fail with \"can't get final "
      "child's PID from pipe: EOF\")");
  c.fix =
      "give berthd CAP_SYS_RESOURCE: this root lacks it, which happens in containers and "
      "some VMs (e.g. docker run --cap-add SYS_RESOURCE, or the sandbox's capability "
      "settings); pods still run without it";
  return c;
}

// --- CNI -----------------------------------------------------------------------------------

Check CheckCni(const config::Config& config) {
  Check c;
  c.name = "cni";
  const fs::path dir = config.cni_conf_dir;
  auto find_plugin = [&](const std::string& type) -> std::string {
    for (const auto& d : config.cni_bin_dirs) {
      fs::path p = fs::path(d) / type;
      if (::access(p.c_str(), X_OK) == 0) return p.string();
    }
    return "";
  };
  const std::string bin_dirs = Join(config.cni_bin_dirs, ":");
  const std::string install_fix = StrCat(
      "install containernetworking-plugins (Debian puts them in /usr/lib/cni) or add the "
      "plugins' directory to cni.bin_dirs (now ",
      bin_dirs, ")");
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto ext = e.path().extension();
    if (ext == ".conflist" || ext == ".conf" || ext == ".json") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  nlohmann::json file_details = nlohmann::json::array();
  std::vector<std::string> problems;
  for (const auto& f : files) {
    nlohmann::json d{{"file", f}};
    StatusOr<std::string> text = ReadFile(f);
    StatusOr<network::NetworkConfigList> cfg =
        text.ok() ? network::ParseNetworkConfig(f, *text)
                  : StatusOr<network::NetworkConfigList>(text.status());
    if (!cfg.ok()) {
      d["error"] = cfg.status().message();
      problems.push_back(cfg.status().message());
    } else {
      std::vector<std::string> missing;
      for (const auto& t : cfg->plugin_types) {
        if (find_plugin(t).empty()) missing.push_back(t);
      }
      d["network"] = cfg->name;
      d["plugins"] = cfg->plugin_types;
      d["missingPlugins"] = missing;
      if (!missing.empty()) {
        problems.push_back(
            StrCat(f, " names plugin(s) ", Join(missing), " not found in ", bin_dirs));
      }
    }
    file_details.push_back(std::move(d));
  }
  c.details = {{"confDir", dir.string()},
               {"binDirs", config.cni_bin_dirs},
               {"files", file_details},
               {"defaultNetwork", config.cni_default_network}};
  const bool has_loopback = !find_plugin("loopback").empty();
  c.details["loopbackPlugin"] = find_plugin("loopback");

  if (files.empty()) {
    if (!config.cni_default_network) {
      c.outcome = Outcome::kFail;
      c.summary = StrCat("no network config in ", dir.string(), " and cni.default_network is off");
      c.why = "NetworkReady stays false: the kubelet starts only hostNetwork pods";
      c.fix =
          "install a CNI provider (its DaemonSet writes the config), write a conflist "
          "yourself, or set cni.default_network = true";
      return c;
    }
    std::vector<std::string> missing;
    for (const char* t : {"bridge", "host-local", "portmap", "loopback"}) {
      if (find_plugin(t).empty()) missing.emplace_back(t);
    }
    if (!missing.empty()) {
      c.outcome = Outcome::kFail;
      c.summary = StrCat("no network config in ", dir.string(),
                         ", and the plugins of the "
                         "default network are missing: ",
                         Join(missing));
      c.why = "berthd cannot network pods";
      c.fix = install_fix;
      return c;
    }
    c.outcome = Outcome::kWarn;
    c.summary = StrCat("no network config in ", dir.string(), " yet");
    c.why = StrCat(
        "NetworkReady is false (only hostNetwork pods start) until the kubelet sends "
        "its pod CIDR; berthd then writes ",
        (dir / network::kDefaultNetworkFile).string(),
        " (bridge berth0, host-local, portmap, loopback) for it (cni.default_network)");
    c.fix =
        "nothing, with kubeadm init --pod-network-cidr=<CIDR> (or a CNI provider); for "
        "crictl alone, write a conflist";
    return c;
  }
  StatusOr<network::NetworkConfigList> chosen =
      network::LoadDefaultNetwork(dir, config.cni_bin_dirs);
  if (!chosen.ok()) {
    c.outcome = Outcome::kFail;
    c.summary = StrCat("no usable network config in ", dir.string(), ": ", Join(problems, "; "));
    c.why = "NetworkReady is false: the kubelet starts only hostNetwork pods";
    c.fix = install_fix;
    return c;
  }
  c.details["network"] = chosen->name;
  c.details["networkFile"] = chosen->file.string();
  if (!has_loopback) {
    c.outcome = Outcome::kFail;
    c.summary = StrCat("the loopback plugin is missing from ", bin_dirs);
    c.why = "berthd brings up lo in every pod with it; pod creation fails without it";
    c.fix = install_fix;
    return c;
  }
  c.summary = StrCat("network \"", chosen->name, "\" from ", chosen->file.string(), " (",
                     Join(chosen->plugin_types), ")");
  if (!problems.empty()) {
    c.outcome = Outcome::kWarn;
    c.why = StrCat("skipped: ", Join(problems, "; "));
    c.fix = StrCat(
        "fix or remove the skipped files; the first usable file in name order is "
        "the pod network. ",
        install_fix);
  }
  return c;
}

// --- disk ----------------------------------------------------------------------------------

Check CheckDiskSpace(std::string name, std::string_view setting, const fs::path& dir,
                     const DiskThresholds& t) {
  Check c;
  c.name = std::move(name);
  const fs::path base = NearestExisting(dir);
  struct statvfs st;
  if (::statvfs(base.c_str(), &st) != 0) {
    c.outcome = Outcome::kWarn;
    c.summary = StrCat("statvfs ", base.string(), ": ", std::strerror(errno));
    return c;
  }
  const uint64_t total = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
  const uint64_t avail = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  const double free_fraction = total ? static_cast<double>(avail) / total : 0;
  // Some filesystems (btrfs) report no inode counts: no inode limit then.
  const bool has_inodes = st.f_files > 0;
  const double free_inodes =
      has_inodes ? static_cast<double>(st.f_favail) / static_cast<double>(st.f_files) : 1;
  c.details = {{"path", dir.string()},      {"filesystemOf", base.string()},
               {"totalBytes", total},       {"availableBytes", avail},
               {"totalInodes", st.f_files}, {"availableInodes", st.f_favail}};
  auto pct = [](double f) {
    std::ostringstream o;
    o.precision(f < 0.1 ? 1 : 0);
    o << std::fixed << f * 100 << "%";
    return o.str();
  };
  c.summary = StrCat(setting, " ", dir.string(), ": ", HumanBytes(avail), " of ", HumanBytes(total),
                     " free (", pct(free_fraction), ")",
                     has_inodes ? StrCat(", ", pct(free_inodes), " of inodes free") : "");
  if (free_fraction < t.fail_free_fraction || avail < t.fail_free_bytes ||
      free_inodes < t.fail_free_inode_fraction) {
    c.outcome = Outcome::kFail;
    c.why =
        "below the kubelet's hard eviction thresholds (nodefs.available 10%, "
        "nodefs.inodesFree 5%) it evicts pods, and pulls and container writes fail";
    c.fix = StrCat("free space on ", base.string(),
                   " (berthctl rmi --prune removes unused images), or move ", setting,
                   " to a larger filesystem");
  } else if (free_fraction < t.warn_free_fraction) {
    c.outcome = Outcome::kWarn;
    c.why = "below 15% free the kubelet starts removing unused images (imagefs.available)";
    c.fix = StrCat("free space on ", base.string());
  }
  return c;
}

// --- socket --------------------------------------------------------------------------------

Check CheckSocket(const fs::path& socket) {
  Check c;
  c.name = "socket";
  c.details["path"] = socket.string();
  struct stat st;
  if (::lstat(socket.c_str(), &st) != 0) {
    c.summary = StrCat("no socket at ", socket.string(),
                       ": berthd is not running (it creates "
                       "the socket with mode 0660 when it starts)");
    c.details["state"] = "absent";
    return c;
  }
  if (!S_ISSOCK(st.st_mode)) {
    c.outcome = Outcome::kFail;
    c.summary = StrCat(socket.string(), " exists and is not a socket");
    c.why = "berthd refuses to start rather than remove it";
    c.fix = StrCat("remove ", socket.string(), " or set grpc.socket elsewhere");
    c.details["state"] = "not-a-socket";
    return c;
  }
  const mode_t mode = st.st_mode & 07777;
  char mode_text[8];
  std::snprintf(mode_text, sizeof mode_text, "%04o", static_cast<unsigned>(mode));
  c.details["mode"] = mode_text;
  c.details["uid"] = st.st_uid;
  c.details["gid"] = st.st_gid;
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket.c_str(), sizeof(addr.sun_path) - 1);
  const bool live =
      fd.valid() && ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  c.details["state"] = live ? "live" : "stale";
  const std::string owner = StrCat("mode ", mode_text, ", uid ", st.st_uid, ", gid ", st.st_gid);
  if ((mode & 0007) != 0 || st.st_uid != 0) {
    c.outcome = Outcome::kFail;
    c.summary = StrCat(socket.string(), " (", owner, ") lets ",
                       st.st_uid != 0 ? "a user other than root" : "every local user",
                       " control the runtime");
    c.why = "whoever can connect can run privileged containers, which is root on this host";
    c.fix = StrCat("chown root ", socket.string(), " && chmod 0660 ", socket.string(),
                   " (berthd creates it so; something changed it)");
    return c;
  }
  if (!live) {
    c.outcome = Outcome::kWarn;
    c.summary = StrCat(socket.string(), " (", owner, ") is stale: nothing is listening");
    c.why = "berthd is not running; it replaces a stale socket when it starts";
    c.fix = "start berthd (systemctl start berthd)";
    return c;
  }
  c.summary = StrCat(socket.string(), " (", owner, "): berthd is listening");
  return c;
}

// --- registries ----------------------------------------------------------------------------

Check CheckRegistryHosts(const fs::path& config_dir) {
  Check c;
  c.name = "registry-hosts";
  c.details["configDir"] = config_dir.string();
  nlohmann::json hosts = nlohmann::json::object();
  std::vector<std::string> names, problems;
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(config_dir, ec)) {
    if (e.is_directory()) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const fs::path& d : dirs) {
    const fs::path file = d / "hosts.toml";
    if (!Exists(file)) continue;
    const std::string host = d.filename().string();
    StatusOr<std::string> text = ReadFile(file);
    StatusOr<std::vector<registry::Endpoint>> endpoints =
        text.ok() ? registry::ParseHostsToml(*text, d, file.string())
                  : StatusOr<std::vector<registry::Endpoint>>(text.status());
    if (!endpoints.ok()) {
      hosts[host] = {{"file", file.string()}, {"error", endpoints.status().message()}};
      problems.push_back(endpoints.status().message());
      continue;
    }
    nlohmann::json list = nlohmann::json::array();
    std::vector<std::string> urls;
    for (const registry::Endpoint& ep : *endpoints) {
      list.push_back({{"url", ep.url},
                      {"mirror", ep.is_mirror},
                      {"pull", ep.can_pull},
                      {"resolve", ep.can_resolve},
                      {"skipVerify", ep.skip_verify}});
      urls.push_back(ep.url);
    }
    hosts[host] = {{"file", file.string()}, {"endpoints", list}};
    names.push_back(StrCat(host, " -> ", Join(urls, " ")));
  }
  c.details["hosts"] = hosts;
  if (!problems.empty()) {
    c.outcome = Outcome::kWarn;
    c.summary = StrCat(problems.size(), " hosts.toml file(s) in ", config_dir.string(),
                       " do not parse: ", Join(problems, "; "));
    c.why = "pulls from those registries fail until the file is fixed";
    c.fix =
        "fix the file (see docs/configuration.md, \"Registry hosts\"); berthd re-reads it "
        "on every pull";
    return c;
  }
  if (names.empty()) {
    c.summary = StrCat("no hosts.toml in ", config_dir.string(),
                       ": docker.io pulls go to registry-1.docker.io, other hosts to "
                       "https://<host>");
    return c;
  }
  c.summary = StrCat(names.size(), " configured: ", Join(names, "; "));
  return c;
}

// --- all -----------------------------------------------------------------------------------

Report RunDoctor(const config::Config& config, DoctorOptions options) {
  Report report;
  CgroupInfo cgroups = DetectCgroups(options.host.cgroup_root);
  report.checks.push_back(CheckCgroups(cgroups));

  std::string default_handler = options.default_handler;
  std::vector<HandlerFinding> handlers;
  if (options.handlers) {
    handlers = std::move(*options.handlers);
  } else {
    handlers = FindHandlers(config);
    ProbeHandlers(handlers, options.pause_binary,
                  fs::temp_directory_path() / StrCat("berth-doctor-", RandomHex(4)),
                  config.cgroup_driver == "systemd");
    default_handler = ChooseDefaultHandler(handlers, config.default_handler);
  }
  for (Check& c : CheckRuntimeHandlers(handlers, default_handler, cgroups)) {
    report.checks.push_back(std::move(c));
  }
  // The checks of one finding each, in report order: each reads what it
  // needs of the host and config and says pass, warn or fail.
  const HostPaths& host = options.host;
  const std::function<Check()> single_checks[] = {
      [&] { return CheckHelpers(options.monitor_binary, options.pause_binary); },
      [&] { return CheckOverlayfs(host.proc_filesystems, config.root); },
      [&] { return CheckIdmappedMounts(config.root); },
      [&] { return CheckSeccomp(host.proc_self_status, host.seccomp_actions_avail); },
      [&] { return CheckOomScoreAdj(host.proc_self_status, host.proc_self_oom_score_adj); },
      [&] { return CheckCni(config); },
      [&] { return CheckDiskSpace("disk/root", "paths.root", config.root, options.disk); },
      [&] { return CheckDiskSpace("disk/state", "paths.state", config.state, options.disk); },
      [&] { return CheckSocket(config.socket); },
      [&] { return CheckRegistryHosts(config.registry_config_dir); },
  };
  for (const auto& check : single_checks) report.checks.push_back(check());
  return report;
}

}  // namespace berth::doctor
