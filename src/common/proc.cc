#include "common/proc.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "common/fs.h"
#include "common/numbers.h"
#include "common/status.h"

namespace berth {

std::vector<ProcessInfo> ListProcesses() {
  std::vector<ProcessInfo> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    auto cmdline = ReadFile(StrCat("/proc/", name, "/cmdline"));
    out.push_back({static_cast<pid_t>(std::stol(name)), cmdline.ok() ? *cmdline : ""});
  }
  return out;
}

std::optional<ProcessStat> ParseProcessStat(std::string_view stat) {
  const size_t paren = stat.rfind(')');
  if (paren == std::string_view::npos) return std::nullopt;
  // Fields 3 (state) to 17 (cstime), after the command name.
  constexpr size_t kFields = 15;
  std::string_view fields[kFields];
  std::string_view rest = stat.substr(paren + 1);
  for (auto& field : fields) {
    const size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(start);
    const size_t end = std::min(rest.find(' '), rest.size());
    field = rest.substr(0, end);
    rest.remove_prefix(end);
  }
  auto ppid = ParseDecimal<pid_t>(fields[1]);
  auto pgrp = ParseDecimal<pid_t>(fields[2]);
  auto utime = ParseDecimal<int64_t>(fields[11]);
  auto stime = ParseDecimal<int64_t>(fields[12]);
  auto cutime = ParseDecimal<int64_t>(fields[13]);
  auto cstime = ParseDecimal<int64_t>(fields[14]);
  if (fields[0].size() != 1 || !ppid || !pgrp || !utime || !stime || !cutime || !cstime) {
    return std::nullopt;
  }
  return ProcessStat{fields[0][0], *ppid, *pgrp, *utime, *stime, *cutime, *cstime};
}

std::optional<ProcessStat> ReadProcessStat(pid_t pid) {
  auto stat = ReadFile(StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return std::nullopt;
  return ParseProcessStat(*stat);
}

std::string CmdlineOf(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    out += a;
    out.push_back('\0');
  }
  return out;
}

}  // namespace berth
