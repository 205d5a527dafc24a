// The OCI runtime driver: runc and crun share one command-line interface, so
// one implementation drives both; each runtime handler gets its own instance
// (binary + state root). Creating a container is the monitor's job (it must
// be the parent of the container's init, see monitor/); this driver does the
// rest of the lifecycle.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/process.h"
#include "common/status.h"
#include "oci/exec_process.h"

namespace berth::oci {

struct RuntimeState {
  std::string status;  // "created", "running", "stopped", "paused"
  int pid = 0;
};

// Thread-safe (each call runs its own process).
class OciRuntime {
 public:
  virtual ~OciRuntime() = default;
  virtual const std::string& handler_name() const = 0;  // "runc", "crun"
  virtual const std::string& binary() const = 0;
  virtual const std::string& state_root() const = 0;  // the runtime's --root
  // Global flags every invocation carries (e.g. "--systemd-cgroup"); the
  // monitor passes them to `create` too.
  virtual const std::vector<std::string>& global_args() const = 0;

  virtual Status Start(const std::string& id) = 0;
  // `all`: signal every process of the container, not just its init.
  virtual Status Kill(const std::string& id, int signal, bool all) = 0;
  // Absent containers are success: Delete is used by idempotent removals.
  virtual Status Delete(const std::string& id, bool force) = 0;
  // NOT_FOUND when the runtime does not know the container.
  virtual StatusOr<RuntimeState> State(const std::string& id) = 0;
  // Starts a process described by an OCI `process` JSON inside the running
  // container (`exec --detach`, so the process gets the caller's pipes or
  // terminal directly and the runtime exits once it runs) and returns it.
  // `process_json` must say "terminal" as `io.terminal` does. A process the
  // runtime cannot start (no such executable...) is UNKNOWN with the
  // runtime's message. Nothing is left behind on error: no process, file or
  // socket.
  virtual StatusOr<std::unique_ptr<ExecProcess>> Exec(const std::string& id,
                                                      const std::string& process_json,
                                                      const ExecIo& io) = 0;
  // Applies an OCI `linux.resources` JSON to the running container.
  virtual Status Update(const std::string& id, const std::string& resources_json) = 0;
};

// Also removes the temporary files of calls a crashed berthd left in
// `state_root`: create it once per daemon start, before any call.
std::unique_ptr<OciRuntime> NewCliRuntime(std::string handler_name, std::string binary,
                                          std::string state_root,
                                          std::vector<std::string> global_args = {});

}  // namespace berth::oci
