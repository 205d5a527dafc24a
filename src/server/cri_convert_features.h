// CRI conversions of the newer kubelet features (stop signals, the user a
// container runs as, CDI devices, supplemental groups policy), kept apart
// from cri_convert.cc.
#pragma once

#include "runtime/v1/api.pb.h"
// (the CRI header first: see server/signals.h)

#include <string>

#include "container/container_manager.h"

namespace berth::server {

// ContainerConfig.stop_signal as the domain's signal name ("SIGUSR1",
// "SIGRTMIN+3"); "" for RUNTIME_DEFAULT.
std::string StopSignalName(runtime::v1::Signal s);
// A canonical signal name back to the CRI enum; RUNTIME_DEFAULT when the
// enum has no such signal.
runtime::v1::Signal ToCriSignal(const std::string& name);

}  // namespace berth::server
