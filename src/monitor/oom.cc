#include "monitor/oom.h"

namespace berth::monitor {

namespace {

// Splits `text` into lines and calls `f` on each until it returns true.
template <typename F>
bool ForEachLine(std::string_view text, F f) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    if (f(text.substr(pos, end - pos))) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

OomCounterLocation LocateOomCounter(std::string_view proc_cgroup, std::string_view cgroup_root,
                                    bool unified_root) {
  OomCounterLocation loc;
  std::string unified_path;
  ForEachLine(proc_cgroup, [&](std::string_view line) {
    // "<hierarchy id>:<controllers>:<path>"; the path may itself hold ':'.
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) return false;
    std::string_view controllers = line.substr(c1 + 1, c2 - c1 - 1);
    std::string_view path = line.substr(c2 + 1);
    if (line.substr(0, c1) == "0" && controllers.empty()) {
      unified_path = std::string(path);
      return false;
    }
    size_t start = 0;
    while (start <= controllers.size()) {
      size_t comma = controllers.find(',', start);
      if (comma == std::string_view::npos) comma = controllers.size();
      if (controllers.substr(start, comma - start) == "memory") {
        loc.cgroup_dir = std::string(cgroup_root) + "/memory" + std::string(path);
        loc.counter_file = loc.cgroup_dir + "/memory.oom_control";
        loc.v1 = true;
        return true;
      }
      start = comma + 1;
    }
    return false;
  });
  if (loc.v1 || !unified_root || unified_path.empty()) return loc;
  loc.cgroup_dir = std::string(cgroup_root) + (unified_path == "/" ? "" : unified_path);
  loc.counter_file = loc.cgroup_dir + "/memory.events";
  return loc;
}

long ParseOomKillCount(std::string_view text) {
  constexpr std::string_view kKey = "oom_kill ";
  long result = -1;
  ForEachLine(text, [&](std::string_view line) {
    if (line.substr(0, kKey.size()) != kKey) return false;
    std::string_view digits = line.substr(kKey.size());
    if (digits.empty() || digits.size() > 18) return true;
    long v = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return true;
      v = v * 10 + (c - '0');
    }
    result = v;
    return true;
  });
  return result;
}

}  // namespace berth::monitor
