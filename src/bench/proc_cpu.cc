#include "bench/proc_cpu.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "common/fs.h"
#include "common/numbers.h"
#include "common/proc.h"

namespace berth::bench {

namespace {

double TicksToMs(int64_t ticks) {
  return static_cast<double>(ticks) * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

double CpuMs(int pid) {
  if (pid <= 0) return 0;
  auto stat = ReadProcessStat(pid);
  return stat ? TicksToMs(stat->utime + stat->stime) : 0;
}

double CpuWithChildrenMs(int pid) {
  if (pid <= 0) return 0;
  auto stat = ReadProcessStat(pid);
  return stat ? TicksToMs(stat->utime + stat->stime + stat->cutime + stat->cstime) : 0;
}

std::vector<int> FindHelpers(const std::string& name, const std::vector<std::string>& ids) {
  std::vector<int> out;
  if (name.empty()) return out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    auto pid = ParseDecimal<int>(e.path().filename().string());
    if (!pid) continue;
    StatusOr<std::string> comm = ReadFile(e.path() / "comm");
    if (!comm.ok() || comm->substr(0, comm->find('\n')) != name.substr(0, 15)) continue;
    StatusOr<std::string> cmdline = ReadFile(e.path() / "cmdline");
    if (!cmdline.ok()) continue;
    if (std::any_of(ids.begin(), ids.end(), [&](const std::string& id) {
          return !id.empty() && cmdline->find(id) != std::string::npos;
        })) {
      out.push_back(*pid);
    }
  }
  return out;
}

}  // namespace berth::bench
