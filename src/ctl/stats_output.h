// The tables of `stats` and `statsp`, as crictl v1.26 prints them: two
// samples `sample` seconds apart, CPU % from the difference of the cumulative
// CPU time over the difference of the CPU timestamps, sizes with go-units'
// HumanSize (4 significant digits). The text starts with the ANSI "clear
// screen, cursor home" sequence crictl writes before every table.
//
// Pure functions, thread-safe.
#pragma once

// clang-format off
#include "runtime/v1/api.pb.h"
// clang-format on

#include <string>

#include "common/status.h"

namespace berth::ctl {

inline constexpr char kClearScreen[] = "\033[2J\033[H";

// Sorts the stats by id, as crictl does before printing anything.
void SortContainerStats(::runtime::v1::ListContainerStatsResponse& r);
void SortPodStats(::runtime::v1::ListPodSandboxStatsResponse& r);

// CONTAINER NAME CPU % MEM DISK INODES. Without `all`, containers whose CPU
// and memory are both 0 (not running) are left out; containers missing from
// `before` are left out. A running container whose CPU timestamp did not move
// is crictl's error "cpu stat is not updated during sample".
StatusOr<std::string> ContainerStatsTable(const ::runtime::v1::ListContainerStatsResponse& before,
                                          const ::runtime::v1::ListContainerStatsResponse& after,
                                          bool all);

// POD POD ID CPU % MEM, same rules (pods without figures are left out).
StatusOr<std::string> PodStatsTable(const ::runtime::v1::ListPodSandboxStatsResponse& before,
                                    const ::runtime::v1::ListPodSandboxStatsResponse& after);

}  // namespace berth::ctl
