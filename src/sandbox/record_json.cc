// SandboxRecord <-> the JSON berthd keeps in its metadata database. The
// record's fields map one to one onto keys of the same name (nlohmann's type
// macro); its config, whose keys and shapes differ from the struct
// ("namespace", ID mappings as [container, host, length]), is written by
// hand. The text must stay what earlier releases wrote
// (tests/unit/state_records_test.cc holds golden records).
#include <nlohmann/json.hpp>

#include "oci/resources_json.h"
#include "sandbox/sandbox_manager.h"

namespace berth::network {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PortMapping, host_port, container_port, protocol, host_ip)
}  // namespace berth::network

namespace berth::sandbox {

using nlohmann::json;

// Anything but READY reads as NOTREADY.
NLOHMANN_JSON_SERIALIZE_ENUM(SandboxState, {{SandboxState::kNotReady, "NOTREADY"},
                                            {SandboxState::kReady, "READY"}})

namespace {

json IdMaps(const std::vector<IdMapping>& m) {
  json a = json::array();
  for (const auto& l : m) a.push_back({l.container_id, l.host_id, l.length});
  return a;
}

std::vector<IdMapping> IdMapsFrom(const json& a) {
  std::vector<IdMapping> m;
  for (const auto& l : a) m.push_back({l.at(0), l.at(1), l.at(2)});
  return m;
}

// Pod resources are null when the kubelet gave none (also in records
// written before they were kept).
json PodResourcesJson(const std::optional<oci::PodResources>& r) {
  return r ? json(*r) : json(nullptr);
}

std::optional<oci::PodResources> PodResourcesFrom(const json& j) {
  if (!j.is_object()) return std::nullopt;
  return j.get<oci::PodResources>();
}

}  // namespace

void to_json(json& c, const SandboxConfig& config) {
  c = {{"name", config.name},
       {"uid", config.uid},
       {"namespace", config.namespace_},
       {"attempt", config.attempt},
       {"hostname", config.hostname},
       {"log_directory", config.log_directory},
       {"dns_servers", config.dns_servers},
       {"dns_searches", config.dns_searches},
       {"dns_options", config.dns_options},
       {"port_mappings", config.port_mappings},
       {"labels", config.labels},
       {"annotations", config.annotations},
       {"cgroup_parent", config.cgroup_parent},
       {"sysctls", config.sysctls},
       {"resources", PodResourcesJson(config.resources)},
       {"overhead", PodResourcesJson(config.overhead)},
       {"network_mode", config.network_mode},
       {"pid_mode", config.pid_mode},
       {"ipc_mode", config.ipc_mode},
       {"privileged", config.privileged}};
  if (config.userns) {
    c["userns"] = {{"uids", IdMaps(config.userns->uids)}, {"gids", IdMaps(config.userns->gids)}};
  }
}

void from_json(const json& c, SandboxConfig& config) {
  config.name = c.at("name");
  config.uid = c.at("uid");
  config.namespace_ = c.at("namespace");
  config.attempt = c.at("attempt");
  config.hostname = c.at("hostname");
  config.log_directory = c.at("log_directory");
  config.dns_servers = c.at("dns_servers");
  config.dns_searches = c.at("dns_searches");
  config.dns_options = c.at("dns_options");
  config.port_mappings = c.at("port_mappings");
  config.labels = c.at("labels");
  config.annotations = c.at("annotations");
  config.cgroup_parent = c.at("cgroup_parent");
  config.sysctls = c.at("sysctls");
  config.resources = PodResourcesFrom(c.value("resources", json()));
  config.overhead = PodResourcesFrom(c.value("overhead", json()));
  config.network_mode = c.at("network_mode");
  config.pid_mode = c.at("pid_mode");
  config.ipc_mode = c.at("ipc_mode");
  config.privileged = c.at("privileged");
  config.userns.reset();
  if (c.contains("userns")) {
    config.userns = SandboxConfig::UserNamespace{IdMapsFrom(c["userns"].at("uids")),
                                                 IdMapsFrom(c["userns"].at("gids"))};
  }
}

// Every key is written; pid_ns_path, userns_path and pause_pid, absent from
// older records, read as empty.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SandboxRecord, id, config, runtime_handler, state,
                                                created_at_ns, dir, netns_path, ipc_ns_path,
                                                uts_ns_path, pid_ns_path, userns_path, pause_pid,
                                                ip, additional_ips, network_ready)

std::string SandboxRecord::ToJson() const { return json(*this).dump(); }

StatusOr<SandboxRecord> SandboxRecord::FromJson(std::string_view text) {
  try {
    auto r = json::parse(text).get<SandboxRecord>();
    if (r.id.empty()) return DataLossError("corrupt sandbox record: no id");
    return r;
  } catch (const json::exception& e) {
    return DataLossError(StrCat("corrupt sandbox record: ", e.what()));
  }
}

}  // namespace berth::sandbox
