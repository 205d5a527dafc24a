// ContainerRecord <-> the JSON berthd keeps in its metadata database. The
// record's fields map one to one onto keys of the same name (nlohmann's type
// macro); the nested types that need care are written by hand below. The
// text must stay what earlier releases wrote (tests/unit/state_records_test.cc
// holds golden records); fields added later default when absent.
#include <nlohmann/json.hpp>

#include "container/container_manager.h"
#include "oci/resources_json.h"

namespace berth::container {

using nlohmann::json;

// Unknown names read as UNKNOWN.
NLOHMANN_JSON_SERIALIZE_ENUM(ContainerState, {{ContainerState::kUnknown, "UNKNOWN"},
                                              {ContainerState::kCreated, "CREATED"},
                                              {ContainerState::kRunning, "RUNNING"},
                                              {ContainerState::kExited, "EXITED"}})

// Image volume fields only for image volumes.
void to_json(json& j, const MountInfo& m) {
  j = {{"container_path", m.container_path},
       {"host_path", m.host_path},
       {"readonly", m.readonly},
       {"propagation", m.propagation}};
  if (!m.image.empty()) {
    j["image"] = m.image;
    j["image_id"] = m.image_id;
    j["image_sub_path"] = m.image_sub_path;
  }
}

void from_json(const json& j, MountInfo& m) {
  m.container_path = j.at("container_path");
  m.host_path = j.at("host_path");
  m.readonly = j.at("readonly");
  m.propagation = j.at("propagation");
  m.image = j.value("image", "");
  m.image_id = j.value("image_id", "");
  m.image_sub_path = j.value("image_sub_path", "");
}

// Every key is written; a key absent from an older record (own_pid_ns, gid,
// supplemental_groups, oom_kills, runtime_deleted) reads as the default.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(
    ContainerRecord, id, sandbox_id, name, attempt, labels, annotations, image, image_id, image_ref,
    log_path, runtime_handler, stop_signal, mounts, resources, tty, stdin_open, stdin_once, state,
    created_at_ns, started_at_ns, finished_at_ns, exit_code, reason, message, pid, monitor_pid,
    own_pid_ns, bundle, rootfs, layer_dir, uid, username, gid, supplemental_groups, oom_kills,
    runtime_deleted)

std::string ContainerRecord::ToJson() const { return json(*this).dump(); }

StatusOr<ContainerRecord> ContainerRecord::FromJson(std::string_view text) {
  try {
    auto r = json::parse(text).get<ContainerRecord>();
    if (r.id.empty()) return DataLossError("corrupt container record: no id");
    return r;
  } catch (const json::exception& e) {
    return DataLossError(StrCat("corrupt container record: ", e.what()));
  }
}

}  // namespace berth::container
