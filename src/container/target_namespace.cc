// pid mode TARGET: a container (an ephemeral debug container, as `kubectl
// debug --target` creates) joins the PID namespace of another container of
// its pod.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fs.h"
#include "container/container_manager.h"

namespace berth::container {

StatusOr<std::string> ContainerManager::TargetPidNamespace(const std::string& target_id,
                                                           const std::string& sandbox_id) {
  if (target_id.empty()) {
    return InvalidArgumentError("pid namespace mode TARGET needs target_id (a container id)");
  }
  ASSIGN_OR_RETURN(ContainerRecord target, Get(target_id));
  if (target.sandbox_id != sandbox_id) {
    return InvalidArgumentError(StrCat("pid namespace target container ", target.id,
                                       " belongs to pod sandbox ", target.sandbox_id, ", not to ",
                                       sandbox_id));
  }
  if (target.state != ContainerState::kRunning || target.pid <= 0) {
    return FailedPreconditionError(
        StrCat("pid namespace target container ", target.id, " is not running (",
               target.reason.empty() ? "not started" : target.reason, ")"));
  }
  // The runtime opens the path later: make sure it still names the target's
  // init now (a pidfd pins the process while its exit file is checked).
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, target.pid, 0));
  if (pidfd < 0) {
    return FailedPreconditionError(
        StrCat("pid namespace target container ", target.id, " has exited"));
  }
  UniqueFd hold(pidfd);
  ASSIGN_OR_RETURN(target, Get(target.id));
  if (target.state != ContainerState::kRunning) {
    return FailedPreconditionError(
        StrCat("pid namespace target container ", target.id, " has exited"));
  }
  return StrCat("/proc/", target.pid, "/ns/pid");
}

}  // namespace berth::container
