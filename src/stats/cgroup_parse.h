// Parsers of the kernel's cgroup and network counter files: cgroup v1 and v2
// interface files (cpu.stat, memory.stat, io.stat, blkio.*, pressure files,
// single values) and /proc/net/dev. Their input comes from a kernel interface
// that a container can influence (it names its network interfaces, fills its
// cgroup with devices and events), so every parser accepts any bytes: a line
// that does not parse is skipped, a number that overflows is dropped, nothing
// is trusted to be terminated or well formed. tests/fuzz/stats_parse fuzzes
// them.
//
// Pure functions of their input; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::stats {

// "max" in a limit file (memory.max, pids.max, memory.swap.max).
inline constexpr uint64_t kUnlimited = UINT64_MAX;

// A decimal unsigned integer filling `s` exactly; nullopt otherwise.
std::optional<uint64_t> ParseU64(std::string_view s);

// A file holding one value: a number, or "max" (kUnlimited). Surrounding
// whitespace is ignored; anything else is nullopt. cgroup v1 reports "-1"
// nowhere we read, but a limit of -1 written by a person reads back as a huge
// number, which callers treat as unlimited (see IsUnlimited).
std::optional<uint64_t> ParseSingleValue(std::string_view text);

// Limits at or above 2^62 mean "no limit": the kernel rounds PAGE_COUNTER_MAX
// (cgroup v1 prints 9223372036854771712 for an unset memory limit).
inline bool IsUnlimited(uint64_t v) { return v >= (uint64_t{1} << 62); }

// Flat keyed files ("key value\n" per line: cpu.stat, memory.stat,
// memory.events, cpuacct.stat, memory.oom_control): calls `fn` for each line
// whose value is a number, in file order.
void ForEachFlatKeyed(std::string_view text,
                      const std::function<void(std::string_view key, uint64_t value)>& fn);

// One line of a pressure file: "some avg10=0.12 avg60=0.00 avg300=0.00 total=123".
struct PsiLine {
  double avg10 = 0, avg60 = 0, avg300 = 0;  // percent
  uint64_t total_us = 0;                    // stall time, microseconds
};
struct Psi {
  std::optional<PsiLine> some, full;
};
// cpu.pressure, memory.pressure, io.pressure (and /proc/pressure/*). A line
// missing any of its four fields is left out.
Psi ParsePressure(std::string_view text);

// Block I/O of one device.
struct IoDeviceStats {
  uint32_t major = 0, minor = 0;
  uint64_t read_bytes = 0, write_bytes = 0;
  uint64_t reads = 0, writes = 0;
};
// cgroup v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0".
std::vector<IoDeviceStats> ParseIoStat(std::string_view text);
// cgroup v1 blkio.throttle.io_service_bytes(_recursive) and
// blkio.throttle.io_serviced(_recursive): "8:0 Read 123" lines (and "Total N").
// Adds the Read/Write figures to `devices` as bytes (`bytes` true) or
// operations, creating devices as they appear.
void MergeBlkioV1(std::string_view text, bool bytes, std::vector<IoDeviceStats>& devices);

// Counters of one network interface, as /proc/net/dev shows them.
struct InterfaceCounters {
  std::string name;
  uint64_t rx_bytes = 0, rx_packets = 0, rx_errors = 0, rx_dropped = 0;
  uint64_t tx_bytes = 0, tx_packets = 0, tx_errors = 0, tx_dropped = 0;
};
// /proc/net/dev: two header lines, then "  name: rx(8 fields) tx(8 fields)".
// Interface names are at most 15 bytes and contain no ':' or whitespace;
// other lines are skipped.
std::vector<InterfaceCounters> ParseNetDev(std::string_view text);

// Lines of cgroup.procs that hold a number: the processes of a cgroup.
uint64_t CountProcs(std::string_view text);

// One cgroup mount of /proc/self/mountinfo.
struct CgroupMount {
  std::string mount_point;
  bool v2 = false;                       // cgroup2
  std::vector<std::string> controllers;  // v1: "cpu", "cpuacct", "memory", "name=systemd", ...
};
// The cgroup and cgroup2 mounts in a mountinfo text; mount points are
// unescaped (\040 is a space).
std::vector<CgroupMount> ParseCgroupMounts(std::string_view mountinfo);

}  // namespace berth::stats
