// `berthd doctor`: checks whether this host can run pods with Berth, and says
// what to do about each problem (as `crio check` and `containerd`'s plugin
// status do for theirs). The same report is in the CRI Status verbose info
// under "doctor", so `berthctl info` and `crictl info` show it too.
//
// Each check reads the host through paths in HostPaths (fixture trees in
// tests) or probes it for real (mounting an overlay, creating an ID-mapped
// mount, running a container with each runtime handler).
//
// Outcomes: kPass; kWarn (pods run, but something is missing or degraded);
// kFail (pods cannot run, or some cannot: e.g. the default runtime handler
// does not work). The host can run pods when no check failed.
//
// Functions here are thread-safe: they share no state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "oci/runtime_probe.h"

namespace berth::doctor {

enum class Outcome { kPass, kWarn, kFail };
std::string_view OutcomeName(Outcome o);  // "pass", "warn", "fail"

struct Check {
  std::string name;  // stable id: "cgroups", "runtime-handler/runc", "overlayfs", ...
  Outcome outcome = Outcome::kPass;
  std::string summary;  // what was found, one line
  std::string why;      // why it matters (warn, fail; also notable passes)
  std::string fix;      // what to do about it (warn, fail)
  nlohmann::json details = nlohmann::json::object();  // for tools (-o json)
};

struct Report {
  std::vector<Check> checks;
  bool CanRunPods() const;  // no check failed
  nlohmann::json ToJson() const;
  // Aligned text for people: one line per check, then why/fix lines.
  std::string ToText() const;
};

// Where the checks read the host; tests point these at fixture trees.
struct HostPaths {
  std::filesystem::path cgroup_root = "/sys/fs/cgroup";
  std::filesystem::path proc_self_status = "/proc/self/status";
  std::filesystem::path proc_self_oom_score_adj = "/proc/self/oom_score_adj";
  std::filesystem::path proc_filesystems = "/proc/filesystems";
  std::filesystem::path seccomp_actions_avail = "/proc/sys/kernel/seccomp/actions_avail";
};

// --- cgroups -------------------------------------------------------------------------------

enum class CgroupLayout { kNone, kV1, kV2, kHybrid };
std::string_view CgroupLayoutName(CgroupLayout l);  // "none", "v1", "v2", "hybrid"

struct CgroupInfo {
  CgroupLayout layout = CgroupLayout::kNone;
  std::vector<std::string> v1_controllers;  // hierarchies mounted under the root, sorted
  std::filesystem::path v2_path;            // the v2 hierarchy (root or <root>/unified)
  std::vector<std::string> v2_controllers;  // its cgroup.controllers
};

// Reads the layout from the tree: cgroup.controllers at the root is v2; v1
// controller directories (each with cgroup.procs) with a v2 tree at
// <root>/unified is hybrid; without it v1.
CgroupInfo DetectCgroups(const std::filesystem::path& cgroup_root);
Check CheckCgroups(const CgroupInfo& info);

// --- runtime handlers ----------------------------------------------------------------------

// What was found about one configured runtime handler.
struct HandlerFinding {
  std::string name;
  std::string configured_binary;  // as configured: a path or a name looked up in PATH
  std::string binary;             // resolved path; empty when not found
  std::string version;            // first line of `<binary> --version`
  bool probed = false;            // a probe result is below
  oci::RuntimeProbe probe;
};

// Resolves and versions every configured handler (no probe).
std::vector<HandlerFinding> FindHandlers(const config::Config& config);
// Probes every found handler at once, with `probe_binary` (berth-pause) in
// containers whose scratch space is under `work_dir` (removed afterwards).
void ProbeHandlers(std::vector<HandlerFinding>& handlers, const std::string& probe_binary,
                   const std::filesystem::path& work_dir, bool systemd_cgroup);
// The handler berthd makes the default: the configured one, else crun where
// it works, else runc, else the first that works.
std::string ChooseDefaultHandler(const std::vector<HandlerFinding>& handlers,
                                 const std::string& configured_default);
// One check per handler ("runtime-handler/<name>"), explaining why crun
// refuses hybrid hosts, then "default-runtime": fails when the default
// handler cannot run containers.
std::vector<Check> CheckRuntimeHandlers(const std::vector<HandlerFinding>& handlers,
                                        const std::string& default_handler,
                                        const CgroupInfo& cgroups);

// berth-monitor and berth-pause, beside berthd or in PATH ("" when missing).
Check CheckHelpers(const std::string& monitor_binary, const std::string& pause_binary);

// --- kernel features -----------------------------------------------------------------------

// overlay in /proc/filesystems, then a real overlay mount in a scratch
// directory on the filesystem of `data_dir` (its nearest existing ancestor).
Check CheckOverlayfs(const std::filesystem::path& proc_filesystems,
                     const std::filesystem::path& data_dir);
// An ID-mapped clone of `dir`'s mount (mount_setattr MOUNT_ATTR_IDMAP with a
// fresh user namespace). Advisory: Berth does not use them yet.
Check CheckIdmappedMounts(const std::filesystem::path& dir);
// The Seccomp line of /proc/self/status and the kernel's filter actions.
Check CheckSeccomp(const std::filesystem::path& proc_self_status,
                   const std::filesystem::path& actions_avail);
// CAP_SYS_RESOURCE in CapEff: without it oom_score_adj cannot be lowered and
// berthd clamps containers' values to its own.
Check CheckOomScoreAdj(const std::filesystem::path& proc_self_status,
                       const std::filesystem::path& oom_score_adj);

// --- CNI, disk, socket, registries ---------------------------------------------------------

Check CheckCni(const config::Config& config);

struct DiskThresholds {
  double fail_free_fraction = 0.10;         // the kubelet evicts at nodefs.available < 10%
  double warn_free_fraction = 0.15;         // ... and collects images at imagefs < 15%
  uint64_t fail_free_bytes = 512ull << 20;  // whatever the fraction
  double fail_free_inode_fraction = 0.05;   // nodefs.inodesFree < 5%
};
// Free space and inodes of the filesystem holding `dir` (or its nearest
// existing ancestor). `name`: "disk/root" or "disk/state".
Check CheckDiskSpace(std::string name, std::string_view setting, const std::filesystem::path& dir,
                     const DiskThresholds& thresholds = {});

// The CRI socket: absent (berthd not running), live or stale, and whether
// anyone but root and its group can connect to it.
Check CheckSocket(const std::filesystem::path& socket);

// Every <config_dir>/<host>/hosts.toml, parsed as a pull would parse it.
Check CheckRegistryHosts(const std::filesystem::path& config_dir);

// --- all of it -----------------------------------------------------------------------------

struct DoctorOptions {
  HostPaths host;
  // Runtime handler findings. berthd passes what its start-up probes found;
  // `berthd doctor` leaves this empty and finds and probes them itself.
  std::optional<std::vector<HandlerFinding>> handlers;
  std::string default_handler;  // with `handlers`: berthd's choice
  std::string monitor_binary, pause_binary;
  DiskThresholds disk;
};

Report RunDoctor(const config::Config& config, DoctorOptions options);

// Looks `name` up in PATH (or the standard path when PATH is unset).
std::string FindInPath(std::string_view name);
// `name` beside the running executable, else in PATH; "" when missing.
std::string FindHelperBinary(std::string_view name);

}  // namespace berth::doctor
