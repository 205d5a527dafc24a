// JSON mappings of the OCI-side value types that berthd's state records
// (container/record_json.cc, sandbox/record_json.cc) embed. The key names and
// shapes are part of the on-disk format: change them only with a migration.
//
// Found by ADL (nlohmann::json j = resources; resources = j.get<...>()).
#pragma once

#include <nlohmann/json.hpp>

#include "oci/container_config.h"

namespace berth::oci {

// Unknown names read as POD, as the records always did.
NLOHMANN_JSON_SERIALIZE_ENUM(NamespaceMode, {{NamespaceMode::kPod, "POD"},
                                             {NamespaceMode::kContainer, "CONTAINER"},
                                             {NamespaceMode::kNode, "NODE"},
                                             {NamespaceMode::kTarget, "TARGET"}})

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(HugepageLimit, page_size, limit)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PodResources, cpu_period, cpu_quota, cpu_shares,
                                                memory_limit_in_bytes)

// oom_score_adj is written only when set, so these two are written by hand.
void to_json(nlohmann::json& j, const Resources& r);
void from_json(const nlohmann::json& j, Resources& r);

}  // namespace berth::oci
