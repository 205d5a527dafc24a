// The native exec path: starts a process in a running container without an
// OCI runtime process per call. berthd forks a helper (never exec'd, so no
// host binary is ever run in the container) that makes itself non-dumpable,
// closes every descriptor it does not pass on, joins the container init's
// cgroups and, through a pidfd of the init, its namespaces; the helper then
// clones the process (a child of berthd, in the container's PID namespace),
// which applies the container's process settings as `runc exec` does (rlimits,
// no_new_privs, seccomp, capability bounding set, user and groups, working
// directory, capabilities, environment, terminal) and execve()s the
// container's own binary, resolved inside the container's root.
//
// What it cannot apply (an AppArmor or SELinux label on a host that enforces
// them, a seccomp notify action, a namespace type it does not know) is
// UNIMPLEMENTED: the caller then uses `runc exec` (see ContainerManager::Exec).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "oci/exec_process.h"

namespace berth::oci {

// The container to exec in.
struct NativeExecTarget {
  std::string id;
  pid_t init_pid = 0;  // its init, as its monitor reported it
  // The init's parent (the monitor): checked after the pidfd is open, so
  // that a recycled pid is never mistaken for the init. 0: no check.
  pid_t init_parent = 0;
};

// A seccomp filter compiled from an OCI `linux.seccomp` (libseccomp), as
// the classic BPF program the kernel loads.
struct CompiledSeccomp {
  std::vector<uint64_t> program;  // struct sock_filter[], 8 bytes each
  unsigned flags = 0;             // SECCOMP_FILTER_FLAG_*
};
// UNIMPLEMENTED for what only `runc exec` supports (SCMP_ACT_NOTIFY);
// INVALID_ARGUMENT for an unknown action or operator.
StatusOr<CompiledSeccomp> CompileSeccomp(const nlohmann::json& seccomp);

// Thread-safe. Keeps, per container, what it compiled from the container's
// config.json (seccomp filter, namespaces, cgroup files of the init):
// Forget() drops it when the container is removed.
class NativeExecutor {
 public:
  NativeExecutor();
  ~NativeExecutor();
  NativeExecutor(const NativeExecutor&) = delete;
  NativeExecutor& operator=(const NativeExecutor&) = delete;

  // `spec_text` is the container's config.json; `process` the OCI process
  // JSON of the exec (the container's process with the exec's args and
  // terminal). Errors as OciRuntime::Exec's (UNKNOWN when the executable
  // cannot be started, with runc's wording), plus UNIMPLEMENTED (above) and
  // FAILED_PRECONDITION when the init is gone.
  StatusOr<std::unique_ptr<ExecProcess>> Exec(const NativeExecTarget& target,
                                              const std::string& spec_text,
                                              const nlohmann::json& process, const ExecIo& io);
  void Forget(const std::string& id);

 private:
  struct Container;
  StatusOr<std::shared_ptr<const Container>> Prepare(const NativeExecTarget& target,
                                                     const std::string& spec_text);

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const Container>> containers_;
  int cap_last_cap_ = 40;
  bool lsm_apparmor_ = false, lsm_selinux_ = false;
  // Cgroup mounts of this (the host's) mount namespace: super options
  // ("cpu,cpuacct", "name=systemd", "" for cgroup2) -> mount point and root.
  struct CgroupMount {
    std::vector<std::string> options;
    bool v2 = false;
    std::string mount_point, root;
  };
  std::vector<CgroupMount> cgroup_mounts_;
  // Tests only (tests/integration/native_exec_it.cc), from the environment
  // variable BERTH_TEST_EXEC_STOP: an exec with this word among its args
  // stops (SIGSTOP) in the helper once it joined the namespaces and in the
  // process right before execve, so that a test can attack both there.
  std::string test_stop_marker_;
};

}  // namespace berth::oci
