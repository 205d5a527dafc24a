#include <algorithm>
#include <nlohmann/json.hpp>

#include "doctor/doctor.h"
#include "network/cni_config.h"
#include "server/cri_services.h"

namespace berth::server {

namespace {

// `berthd doctor` from inside berthd, for `berthctl info` and `crictl info`:
// the handlers as berthd's start-up probes found them (no new probe runs),
// every other check as the command runs it.
doctor::Report DoctorReport(const config::Config& config, const RuntimeInfo& info) {
  doctor::DoctorOptions opts;
  std::vector<doctor::HandlerFinding> handlers;
  const std::vector<oci::HandlerState> states = info.handlers->Handlers();
  for (const auto& handler : config.handlers) {
    // Not a structured binding: the lambda below captures the name, which
    // clang 14 (the sanitizer build) cannot do with a binding.
    const std::string& name = handler.first;
    doctor::HandlerFinding h;
    h.name = name;
    h.configured_binary = handler.second;
    auto found = std::find_if(states.begin(), states.end(),
                              [&](const oci::HandlerState& s) { return s.name == name; });
    // A handler whose probe still runs is reported as not probed yet.
    if (found != states.end() && found->probed) {
      h.binary = found->binary;
      h.probed = true;
      h.probe = found->probe;
    }
    handlers.push_back(std::move(h));
  }
  opts.handlers = std::move(handlers);
  opts.default_handler = info.handlers->DefaultName();
  opts.monitor_binary = doctor::FindHelperBinary("berth-monitor");
  opts.pause_binary = doctor::FindHelperBinary("berth-pause");
  return doctor::RunDoctor(config, std::move(opts));
}

}  // namespace

grpc::Status RuntimeServiceImpl::Status(grpc::ServerContext*, const runtime::v1::StatusRequest* req,
                                        runtime::v1::StatusResponse* resp) {
  return rpc_.Run("Status", [&]() -> berth::Status {
    auto* runtime_ready = resp->mutable_status()->add_conditions();
    runtime_ready->set_type("RuntimeReady");
    // One snapshot: the probes finish in the background while berthd serves.
    const std::vector<oci::HandlerState> handlers = info_.handlers->Handlers();
    const std::string default_name = info_.handlers->DefaultName();
    const oci::HandlerState* def = nullptr;
    for (const auto& h : handlers) {
      if (h.name == default_name) def = &h;
    }
    const bool all_probed = std::all_of(handlers.begin(), handlers.end(),
                                        [](const oci::HandlerState& h) { return h.probed; });
    runtime_ready->set_status(def != nullptr && def->probed && def->probe.works);
    if (def == nullptr && !all_probed) {
      runtime_ready->set_reason("RuntimeHandlersProbing");
      runtime_ready->set_message(
          "berthd is probing its runtime handlers (one test container each) to choose the "
          "default; RuntimeReady turns true when one works");
    } else if (def == nullptr) {
      runtime_ready->set_reason("OCIRuntimeNotFound");
      runtime_ready->set_message(
          "no OCI runtime of runtime.handlers was found (install crun or runc)");
    } else if (!def->probed) {
      runtime_ready->set_reason("RuntimeHandlersProbing");
      runtime_ready->set_message(StrCat("berthd is probing the default runtime handler \"",
                                        def->name, "\" (", def->binary,
                                        ") with a test container; RuntimeReady follows"));
    } else if (!def->probe.works) {
      runtime_ready->set_reason("OCIRuntimeNotWorking");
      runtime_ready->set_message(StrCat("default runtime handler \"", def->name, "\" (",
                                        def->binary,
                                        ") cannot run a container: ", def->probe.error));
    }
    // Re-read on every call so that NetworkReady follows the directory as a
    // CNI provider installs or removes its config.
    auto network = network::LoadDefaultNetwork(config_.cni_conf_dir, config_.cni_bin_dirs);
    auto* network_ready = resp->mutable_status()->add_conditions();
    network_ready->set_type("NetworkReady");
    network_ready->set_status(network.ok());
    if (!network.ok()) {
      network_ready->set_reason("NetworkPluginNotReady");
      network_ready->set_message(
          StrCat("Network plugin returns error: ", network.status().message()));
    }
    // Handlers that can run containers, and "" for the default, as the
    // kubelet reads them for RuntimeClass features.
    auto add_handler = [&](const std::string& name, const oci::HandlerState& h) {
      auto* out = resp->add_runtime_handlers();
      out->set_name(name);
      out->mutable_features()->set_recursive_read_only_mounts(
          h.probe.features.recursive_read_only_mounts);
      out->mutable_features()->set_user_namespaces(h.probe.features.user_namespaces);
    };
    for (const auto& h : handlers) {
      if (h.probed && h.probe.works) add_handler(h.name, h);
    }
    if (def != nullptr && def->probed && def->probe.works) add_handler("", *def);
    // Merge and Strict are both applied by berthd itself (spec_builder), on
    // every handler.
    resp->mutable_features()->set_supplemental_groups_policy(true);
    if (req->verbose()) {
      nlohmann::json cfg{{"socket", config_.socket},
                         {"root", config_.root},
                         {"state", config_.state},
                         {"registryConfigDir", config_.registry_config_dir},
                         {"cniConfDir", config_.cni_conf_dir},
                         {"cniBinDirs", config_.cni_bin_dirs},
                         {"streamAddress", config_.stream_address},
                         {"streamUrl", domain_.stream ? domain_.stream->base_url() : ""},
                         {"cgroupDriver", config_.cgroup_driver},
                         {"defaultRuntime", default_name},
                         {"defaultRuntimePath", def != nullptr ? def->binary : ""}};
      nlohmann::json handler_info = nlohmann::json::object();
      for (const auto& h : handlers) {
        handler_info[h.name] = {
            {"binary", h.binary},
            {"probing", !h.probed},
            {"works", h.probe.works},
            {"error", h.probe.error},
            {"recursiveReadOnlyMounts", h.probe.features.recursive_read_only_mounts},
            {"userNamespaces", h.probe.features.user_namespaces},
            {"userNamespacesError", h.probe.user_namespaces_error}};
      }
      (*resp->mutable_info())["runtimeHandlers"] = handler_info.dump();
      (*resp->mutable_info())["config"] = cfg.dump();
      // crictl parses every info value as JSON.
      (*resp->mutable_info())["configToml"] = nlohmann::json(config_.ToToml()).dump();
      if (network.ok()) (*resp->mutable_info())["cniconfig"] = network->raw;
      (*resp->mutable_info())["doctor"] = DoctorReport(config_, info_).ToJson().dump();
    }
    return OkStatus();
  });
}

}  // namespace berth::server
