#include "oci/runtime_probe.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/process.h"

namespace berth::oci {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Just enough of a container to exercise what fails on a hostile host:
// namespaces, a cgroup, pivot_root, /proc and exec.
json ProbeSpec(const std::string& cgroups_path) {
  return {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"args", {"/probe", "-v"}},
        {"cwd", "/"},
        {"env", {"PATH=/"}},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"capabilities",
         {{"bounding", json::array()}, {"effective", json::array()}, {"permitted", json::array()}}},
        {"noNewPrivileges", true}}},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "berth-probe"},
      {"mounts",
       {{{"destination", "/proc"},
         {"type", "proc"},
         {"source", "proc"},
         {"options", {"nosuid", "noexec", "nodev"}}}}},
      {"linux",
       {{"namespaces",
         {{{"type", "pid"}},
          {{"type", "mount"}},
          {{"type", "ipc"}},
          {{"type", "uts"}},
          {{"type", "network"}}}},
        {"cgroupsPath", cgroups_path}}},
  };
}

std::string FirstLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

bool KernelHasMountSetattr() {
#ifdef SYS_mount_setattr
  // With a bad descriptor the kernel answers EBADF when the call exists.
  long r = ::syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0);
  return r == -1 && errno != ENOSYS;
#else
  return false;
#endif
}

HandlerFeatures ParseRuntimeFeatures(const std::string& features_json, bool kernel_mount_setattr) {
  HandlerFeatures f;
  json j = json::parse(features_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return f;
  auto it = j.find("mountOptions");
  if (it != j.end() && it->is_array()) {
    for (const auto& opt : *it) {
      if (opt.is_string() && opt.get<std::string>() == "rro") {
        f.recursive_read_only_mounts = kernel_mount_setattr;
      }
    }
  }
  return f;
}

RuntimeProbe ProbeRuntime(const ProbeOptions& options) {
  RuntimeProbe probe;
  if (::access(options.binary.c_str(), X_OK) != 0) {
    probe.error = StrCat(options.binary, " is not an executable file");
    return probe;
  }
  if (::access(options.probe_binary.c_str(), X_OK) != 0) {
    probe.error = StrCat("probe program ", options.probe_binary, " is missing");
    return probe;
  }
  const fs::path work = options.work_dir;
  const fs::path bundle = work / "bundle";
  const fs::path root = work / "root";
  const std::string id = StrCat("berth-probe-", RandomHex(6));
  ScopeGuard cleanup([&] { (void)RemoveAll(work); });

  Status prepared = [&]() -> Status {
    (void)RemoveAll(work);
    RETURN_IF_ERROR(MakeDirs(bundle / "rootfs", 0755));
    RETURN_IF_ERROR(MakeDirs(root, 0700));
    // Copied with close-on-exec descriptors: probes run in parallel, and a
    // write descriptor inherited by another probe's runtime would make
    // exec fail with ETXTBSY.
    ASSIGN_OR_RETURN(std::string program, ReadFile(options.probe_binary));
    RETURN_IF_ERROR(WriteFileAtomic(bundle / "rootfs" / "probe", program, 0755));
    std::string cgroups_path =
        options.systemd_cgroup ? StrCat("system.slice:berth:", id) : StrCat("/", id);
    return WriteFileAtomic(bundle / "config.json", ProbeSpec(cgroups_path).dump());
  }();
  if (!prepared.ok()) {
    probe.error = prepared.message();
    return probe;
  }

  RunOptions run_opts;
  run_opts.timeout = std::chrono::seconds(20);
  std::vector<std::string> global = {options.binary, "--root", root.string()};
  if (options.systemd_cgroup) global.push_back("--systemd-cgroup");
  std::vector<std::string> run = global;
  run.insert(run.end(), {"run", "--bundle", bundle.string(), id});
  auto result = RunProcess(run, run_opts);
  // `run` deletes the container when it exits; a forced delete covers a run
  // that died half way (it is a no-op otherwise).
  RunOptions quick;
  quick.timeout = std::chrono::seconds(10);
  std::vector<std::string> del = global;
  del.insert(del.end(), {"delete", "--force", id});
  (void)RunProcess(del, quick);

  if (!result.ok()) {
    probe.error = result.status().message();
    return probe;
  }
  if (result->exit_code != 0) {
    probe.error = FirstLine(result->err.empty() ? result->out : result->err);
    if (probe.error.empty()) probe.error = StrCat("exit code ", result->exit_code);
    return probe;
  }
  // A runtime that "succeeds" without running the process is broken too.
  if (result->out.find("berth-pause") == std::string::npos) {
    probe.error = StrCat(options.binary, " run exited 0 but the container did not print its name");
    return probe;
  }
  probe.works = true;

  auto features = RunProcess({options.binary, "features"}, quick);
  if (features.ok() && features->exit_code == 0) {
    probe.features = ParseRuntimeFeatures(features->out, KernelHasMountSetattr());
  }
  probe.user_namespaces_error = options.user_namespace_unavailable;
  if (options.try_user_namespace) {
    // The same container again, root of a user namespace of its own.
    json spec = ProbeSpec(options.systemd_cgroup ? StrCat("system.slice:berth:", id, "-userns")
                                                 : StrCat("/", id, "-userns"));
    spec["linux"]["namespaces"].push_back({{"type", "user"}});
    // In a user namespace runc bind-mounts device nodes; they need a /dev
    // of the container's own (the first run left real nodes in rootfs/dev).
    spec["mounts"].push_back({{"destination", "/dev"},
                              {"type", "tmpfs"},
                              {"source", "tmpfs"},
                              {"options", {"nosuid", "mode=755", "size=64k"}}});
    json map = json::array({{{"containerID", 0}, {"hostID", 3000000000u}, {"size", 65536}}});
    spec["linux"]["uidMappings"] = map;
    spec["linux"]["gidMappings"] = map;
    // Owned by host root, the program is "nobody"'s to the container: world-executable.
    std::vector<std::string> run_userns = global;
    run_userns.insert(run_userns.end(), {"run", "--bundle", bundle.string(), id + "-userns"});
    Status written = WriteFileAtomic(bundle / "config.json", spec.dump());
    auto r = written.ok() ? RunProcess(run_userns, run_opts) : StatusOr<ProcessResult>(written);
    std::vector<std::string> del_userns = global;
    del_userns.insert(del_userns.end(), {"delete", "--force", id + "-userns"});
    (void)RunProcess(del_userns, quick);
    if (r.ok() && r->exit_code == 0 && r->out.find("berth-pause") != std::string::npos) {
      probe.features.user_namespaces = true;
      probe.user_namespaces_error.clear();
    } else {
      probe.user_namespaces_error =
          StrCat(options.binary, " cannot run a container in a user namespace: ",
                 r.ok() ? FirstLine(r->err.empty() ? r->out : r->err) : r.status().message());
    }
  }
  return probe;
}

}  // namespace berth::oci
