#include "oci/resources_json.h"

namespace berth::oci {

void to_json(nlohmann::json& j, const Resources& r) {
  j = {{"cpu_period", r.cpu_period},
       {"cpu_quota", r.cpu_quota},
       {"cpu_shares", r.cpu_shares},
       {"memory_limit_in_bytes", r.memory_limit_in_bytes},
       {"cpuset_cpus", r.cpuset_cpus},
       {"cpuset_mems", r.cpuset_mems},
       {"hugepage_limits", r.hugepage_limits},
       {"unified", r.unified},
       {"memory_swap_limit_in_bytes", r.memory_swap_limit_in_bytes}};
  if (r.oom_score_adj) j["oom_score_adj"] = *r.oom_score_adj;
}

void from_json(const nlohmann::json& j, Resources& r) {
  r = Resources{};
  r.cpu_period = j.value("cpu_period", int64_t{0});
  r.cpu_quota = j.value("cpu_quota", int64_t{0});
  r.cpu_shares = j.value("cpu_shares", int64_t{0});
  r.memory_limit_in_bytes = j.value("memory_limit_in_bytes", int64_t{0});
  r.cpuset_cpus = j.value("cpuset_cpus", "");
  r.cpuset_mems = j.value("cpuset_mems", "");
  r.hugepage_limits = j.value("hugepage_limits", std::vector<HugepageLimit>{});
  r.unified = j.value("unified", std::map<std::string, std::string>{});
  r.memory_swap_limit_in_bytes = j.value("memory_swap_limit_in_bytes", int64_t{0});
  if (j.contains("oom_score_adj")) r.oom_score_adj = j["oom_score_adj"].get<int64_t>();
}

}  // namespace berth::oci
