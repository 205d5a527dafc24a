// What the RPC handlers operate on, owned by the daemon. Filled in by
// start-up recovery; handlers only run after the RpcDecorator is ready
// (except GetContainerEvents, which only needs `events`).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "container/container_manager.h"
#include "image/image_service.h"
#include "network/cni.h"
#include "network/pod_network.h"
#include "oci/oci_runtime.h"
#include "sandbox/sandbox_manager.h"
#include "server/stream_runtime.h"
#include "stats/stats_service.h"
#include "store/metadata_store.h"
#include "stream/stream_server.h"

namespace berth::server {

struct Domain {
  // Made before recovery starts (GetContainerEvents is served during
  // recovery); the container manager publishes into it.
  std::unique_ptr<container::LifecycleEventBus> events;
  std::unique_ptr<store::MetadataStore> db;
  std::unique_ptr<image::ImageService> images;
  std::unique_ptr<network::CniManager> cni;
  // Writes the CNI config for the kubelet's pod CIDR (UpdateRuntimeConfig).
  std::unique_ptr<network::DefaultPodNetwork> default_network;
  std::map<std::string, std::unique_ptr<oci::OciRuntime>> runtimes;  // by handler name
  std::unique_ptr<sandbox::SandboxManager> sandboxes;
  std::unique_ptr<container::ContainerManager> containers;
  // Declared after the managers it uses, so it is destroyed (stopped) first.
  std::unique_ptr<StreamRuntime> stream_runtime;
  std::unique_ptr<stream::StreamServer> stream;  // exec, attach, port-forward URLs
  // Declared after the managers it reads from, so it is destroyed first.
  std::unique_ptr<stats::StatsService> stats;
};

}  // namespace berth::server
