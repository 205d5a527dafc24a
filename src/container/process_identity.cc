#include "container/process_identity.h"

#include <cerrno>
#include <charconv>
#include <string>

#include "common/fs.h"
#include "container/container_manager.h"

namespace berth::container {

namespace {

// The whitespace-separated numbers after "<key>:" on its line.
StatusOr<std::vector<uint32_t>> Numbers(std::string_view status, std::string_view key) {
  const std::string prefix = StrCat(key, ":");
  size_t pos = 0;
  while (pos < status.size()) {
    size_t end = status.find('\n', pos);
    if (end == std::string_view::npos) end = status.size();
    std::string_view line = status.substr(pos, end - pos);
    pos = end + 1;
    if (!line.starts_with(prefix)) continue;
    line.remove_prefix(prefix.size());
    std::vector<uint32_t> out;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      if (i >= line.size()) break;
      uint32_t v = 0;
      auto [p, ec] = std::from_chars(line.data() + i, line.data() + line.size(), v);
      if (ec != std::errc()) {
        return DataLossError(StrCat("malformed ", key, " line in /proc status"));
      }
      out.push_back(v);
      i = static_cast<size_t>(p - line.data());
    }
    return out;
  }
  return DataLossError(StrCat("no ", key, " line in /proc status"));
}

}  // namespace

StatusOr<ProcessIdentity> ParseProcStatusIdentity(std::string_view status) {
  ProcessIdentity id;
  ASSIGN_OR_RETURN(std::vector<uint32_t> uids, Numbers(status, "Uid"));
  ASSIGN_OR_RETURN(std::vector<uint32_t> gids, Numbers(status, "Gid"));
  ASSIGN_OR_RETURN(id.groups, Numbers(status, "Groups"));
  if (uids.empty() || gids.empty()) return DataLossError("empty Uid or Gid line in /proc status");
  id.uid = uids[0];
  id.gid = gids[0];
  return id;
}

StatusOr<ProcessIdentity> ReadProcessIdentity(pid_t pid) {
  auto text = ReadFile(StrCat("/proc/", pid, "/status"));
  if (!text.ok()) return NotFoundError(StrCat("process ", pid, " is gone"));
  return ParseProcStatusIdentity(*text);
}

void RecordProcessIdentity(ContainerRecord& r) {
  if (r.pid <= 0) return;
  auto id = ReadProcessIdentity(r.pid);
  if (!id.ok()) return;
  r.uid = id->uid;
  r.gid = id->gid;
  r.supplemental_groups = id->groups;
}

}  // namespace berth::container
