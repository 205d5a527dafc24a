// What running a pod sandbox will make, decided from its config alone: the
// pure half of SandboxManager::Run. The manager reads the host facts, asks
// PlanSandbox, and then does what the plan says (files, mounts, namespaces,
// CNI, berth-pause) with a scope guard per resource. Keeping the decisions
// here lets every combination of namespace modes and user namespaces be
// tested without root (tests/unit/sandbox_plan_test.cc).
#pragma once

#include <string>

#include "sandbox/sandbox_manager.h"

namespace berth::sandbox {

// What the host contributes, read by the caller.
struct SandboxHostFacts {
  std::string node_hostname;  // gethostname()
  std::string etc_hosts;      // the node's /etc/hosts ("" when unreadable)
  std::string resolv_conf;    // the node's resolv.conf source ("" when unreadable)
};

struct SandboxPlan {
  // Contents of <dir>/hostname, <dir>/hosts and <dir>/resolv.conf, which the
  // containers bind-mount. The hostname is also the UTS namespace's.
  std::string hostname;
  std::string hosts;
  std::string resolv_conf;
  // A tmpfs at <dir>/shm for the containers' /dev/shm (IPC not the node's).
  bool shm_tmpfs = false;
  // Namespaces pinned under <dir> for the containers to join; the user
  // namespace first, since the others are made inside it.
  bool user_namespace = false;
  bool ipc_namespace = false;
  bool uts_namespace = false;
  // A network namespace of the pod's, set up by CNI ADD (not the node's).
  bool network_namespace = false;
  // berth-pause as PID 1 of a PID namespace shared by the pod (pid mode POD).
  bool pause = false;
};

// Pure; thread-safe. The config is already validated (ValidateUserNamespace).
SandboxPlan PlanSandbox(const SandboxConfig& config, const SandboxHostFacts& host);

}  // namespace berth::sandbox
