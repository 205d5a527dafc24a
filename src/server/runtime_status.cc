#include <nlohmann/json.hpp>

#include "network/cni_config.h"
#include "server/cri_services.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::Status(grpc::ServerContext*,
                                        const runtime::v1::StatusRequest* req,
                                        runtime::v1::StatusResponse* resp) {
  return rpc_.Run("Status", [&]() -> berth::Status {
    auto* runtime_ready = resp->mutable_status()->add_conditions();
    runtime_ready->set_type("RuntimeReady");
    runtime_ready->set_status(!info_.oci_runtime.empty());
    if (info_.oci_runtime.empty()) {
      runtime_ready->set_reason("OCIRuntimeNotFound");
      runtime_ready->set_message("neither crun nor runc was found in PATH");
    }
    // Re-read on every call so that NetworkReady follows the directory as a
    // CNI provider installs or removes its config.
    auto network = network::LoadDefaultNetwork(config_.cni_conf_dir, config_.cni_bin_dirs);
    auto* network_ready = resp->mutable_status()->add_conditions();
    network_ready->set_type("NetworkReady");
    network_ready->set_status(network.ok());
    if (!network.ok()) {
      network_ready->set_reason("NetworkPluginNotReady");
      network_ready->set_message(StrCat("Network plugin returns error: ", network.status().message()));
    }
    if (!info_.oci_runtime_name.empty()) {
      auto* handler = resp->add_runtime_handlers();
      handler->set_name(info_.oci_runtime_name);
      // The empty name is the default handler, as containerd lists it.
      resp->add_runtime_handlers()->set_name("");
    }
    if (req->verbose()) {
      nlohmann::json cfg{{"socket", config_.socket},
                         {"root", config_.root},
                         {"state", config_.state},
                         {"registryConfigDir", config_.registry_config_dir},
                         {"cniConfDir", config_.cni_conf_dir},
                         {"cniBinDirs", config_.cni_bin_dirs},
                         {"streamAddress", config_.stream_address},
                         {"cgroupDriver", config_.cgroup_driver},
                         {"defaultRuntime", info_.oci_runtime_name},
                         {"defaultRuntimePath", info_.oci_runtime}};
      (*resp->mutable_info())["config"] = cfg.dump();
      // crictl parses every info value as JSON.
      (*resp->mutable_info())["configToml"] = nlohmann::json(config_.ToToml()).dump();
      if (network.ok()) (*resp->mutable_info())["cniconfig"] = network->raw;
    }
    return OkStatus();
  });
}

}  // namespace berth::server
