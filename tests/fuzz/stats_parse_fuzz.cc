// Fuzzes the parsers of cgroup and network counter files (stats/cgroup_parse.h):
// a container influences what these kernel files hold (interface names,
// devices, event counts), so any bytes must parse without a crash, and what
// comes out must keep the parsers' promises.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string_view>
#include <utility>

#include "stats/cgroup_parse.h"

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "stats_parse: property violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace berth::stats;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t lines = 1;
  for (char c : text) lines += c == '\n' ? 1 : 0;

  (void)ParseSingleValue(text);
  size_t keyed = 0;
  ForEachFlatKeyed(text, [&](std::string_view key, uint64_t) {
    Check(!key.empty(), "flat keyed: empty key");
    ++keyed;
  });
  Check(keyed <= lines, "flat keyed: more entries than lines");

  Psi psi = ParsePressure(text);
  for (const auto& line : {psi.some, psi.full}) {
    if (line) Check(line->avg10 == line->avg10, "pressure: NaN average");  // from_chars never NaNs
  }

  std::set<std::pair<uint32_t, uint32_t>> devices;
  for (const IoDeviceStats& d : ParseIoStat(text)) {
    Check(devices.emplace(d.major, d.minor).second, "io.stat: a device listed twice");
  }
  std::vector<IoDeviceStats> v1;
  MergeBlkioV1(text, true, v1);
  MergeBlkioV1(text, false, v1);
  devices.clear();
  for (const IoDeviceStats& d : v1) {
    Check(devices.emplace(d.major, d.minor).second, "blkio: a device listed twice");
  }

  for (const InterfaceCounters& c : ParseNetDev(text)) {
    Check(!c.name.empty() && c.name.size() <= 15, "net/dev: name length");
    Check(c.name.find_first_of(": \t\n|") == std::string::npos, "net/dev: bad name character");
  }
  Check(CountProcs(text) <= lines, "cgroup.procs: more processes than lines");

  for (const CgroupMount& m : ParseCgroupMounts(text)) {
    Check(!m.v2 || m.controllers.empty(), "mounts: controllers listed for cgroup2");
    for (const std::string& c : m.controllers) Check(!c.empty(), "mounts: empty controller");
  }
  return 0;
}
