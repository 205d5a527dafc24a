#include "common/proc.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "common/fs.h"
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

std::string CmdlineOf(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    out += a;
    out.push_back('\0');
  }
  return out;
}

}  // namespace berth
