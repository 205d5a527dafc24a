// The runtime handlers berthd runs containers with, and what their start-up
// probes found (oci/runtime_probe.h).
//
// berthd answers calls as soon as its state is recovered and probes the
// handlers in the background: each probe runs a throwaway container. Until a
// handler's probe has finished, a call that needs the handler waits for it
// (WaitFor), and Status reports RuntimeReady false until the default handler
// is known to work (docs/architecture.md, "Serve first, probe later").
//
// Thread-safe: one thread records probe results while RPC threads read and
// wait.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "oci/runtime_probe.h"

namespace berth::oci {

struct HandlerState {
  std::string name;     // the RuntimeClass handler, e.g. "runc"
  std::string binary;   // resolved path of the OCI runtime
  bool probed = false;  // the probe has finished and `probe` holds its result
  RuntimeProbe probe;
};

class HandlerRegistry {
 public:
  // `handlers`: every configured handler whose binary exists, not probed yet.
  // `configured_default`: runtime.default_handler; empty lets the probes
  // decide: crun where it works (the faster one), else runc, else the first
  // handler that works; when none works, runc (or the first handler) so that
  // Status can say why.
  HandlerRegistry(std::vector<HandlerState> handlers, std::string configured_default);

  // Records the result of `name`'s probe. Once every probe is in, an
  // unconfigured default is chosen. Wakes the waiters.
  void SetProbeResult(const std::string& name, RuntimeProbe probe);

  // Every handler as known now, in construction order.
  std::vector<HandlerState> Handlers() const;
  // True once every probe has finished.
  bool AllProbed() const;
  // The default handler: the configured one, else the one chosen once all
  // probes finished; "" while that is undecided or when there is no handler.
  std::string DefaultName() const;

  // Waits up to `timeout` until the probe of handler `name` has finished and
  // returns the handler; "" names the default handler (which, when not
  // configured, is only known once every probe finished). INVALID_ARGUMENT
  // for a handler that is not configured (naming those that are),
  // UNAVAILABLE when the probe is still running at the timeout. A handler
  // whose probe failed is returned all the same: callers check probe.works.
  StatusOr<HandlerState> WaitFor(const std::string& name, std::chrono::milliseconds timeout) const;

 private:
  const HandlerState* FindLocked(const std::string& name) const;
  bool AllProbedLocked() const;
  std::string DefaultLocked() const;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::vector<HandlerState> handlers_;
  const std::string configured_default_;
  std::string chosen_default_;  // set when every probe finished, if not configured
};

}  // namespace berth::oci
