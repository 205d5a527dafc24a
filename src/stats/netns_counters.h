// Network interface counters read inside pods' network namespaces.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "stats/cgroup_parse.h"

namespace berth::stats {

struct NetworkSample {
  int64_t wall_ns = 0;                        // when read
  std::vector<InterfaceCounters> interfaces;  // all but loopback, in kernel order
};

// Reads /proc/thread-self/net/dev inside each network namespace named by a
// pinned nsfs file, in one short-lived thread that joins them in turn: no
// thread of berthd that serves anything ever changes namespace, and the
// thread's namespace dies with it. One result per path, in order.
std::vector<StatusOr<NetworkSample>> ReadNetworkNamespaces(const std::vector<std::string>& paths);

}  // namespace berth::stats
