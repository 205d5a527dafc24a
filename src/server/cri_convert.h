// CRI protobuf messages to Berth's domain structs and back. Only server/
// sees CRI types; everything below speaks these structs.
#pragma once

#include "runtime/v1/api.pb.h"
// (the CRI header first: see server/signals.h)

#include "common/status.h"
#include "container/container_manager.h"
#include "oci/container_config.h"
#include "sandbox/sandbox_manager.h"

namespace berth::server {

StatusOr<sandbox::SandboxConfig> ToSandboxConfig(const runtime::v1::PodSandboxConfig& c);
StatusOr<oci::ContainerConfig> ToContainerConfig(const runtime::v1::ContainerConfig& c);
oci::Resources ToResources(const runtime::v1::LinuxContainerResources& r);
void FromResources(const oci::Resources& r, runtime::v1::LinuxContainerResources* out);

void ToCriSandbox(const sandbox::SandboxRecord& r, runtime::v1::PodSandbox* out);
void ToCriSandboxStatus(const sandbox::SandboxRecord& r, runtime::v1::PodSandboxStatus* out);
void ToCriContainer(const container::ContainerRecord& r, runtime::v1::Container* out);
void ToCriContainerStatus(const container::ContainerRecord& r, runtime::v1::ContainerStatus* out);
runtime::v1::ContainerState ToCriState(container::ContainerState s);
// A lifecycle event as GetContainerEvents sends it: the pod's status and
// its containers' statuses (oldest first) as they were after the event.
void ToCriContainerEvent(const container::LifecycleEvent& e,
                         runtime::v1::ContainerEventResponse* out);
// The statuses of a pod's containers in creation order (PodSandboxStatus,
// events).
void ToCriContainerStatuses(std::vector<container::ContainerRecord> records,
                            google::protobuf::RepeatedPtrField<runtime::v1::ContainerStatus>* out);

// Label selector match: every key/value of `selector` is in `labels`.
bool LabelsMatch(const google::protobuf::Map<std::string, std::string>& selector,
                 const std::map<std::string, std::string>& labels);

}  // namespace berth::server
