#include "sandbox/pod_cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <vector>

#include "common/fs.h"
#include "stats/cgroup_parse.h"

namespace berth::sandbox {

namespace fs = std::filesystem;

namespace {

Status WriteValue(const fs::path& file, const std::string& value) {
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", file.string()));
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return ErrnoStatus(errno, StrCat("write \"", value, "\" to ", file.string()));
  }
  return OkStatus();
}

Status MakeCgroup(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return InternalError(StrCat("create cgroup ", path.string(), ": ", ec.message()));
  return OkStatus();
}

}  // namespace

uint64_t CpuSharesToWeight(uint64_t shares) {
  if (shares == 0) return 0;
  if (shares < 2) shares = 2;
  if (shares > 262144) shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

Status WriteCgroupLimits(const std::string& dir, const CgroupLimits& l,
                         std::string_view mountinfo) {
  if (!dir.starts_with("/"))
    return InvalidArgumentError(StrCat("cgroup ", dir, " is not absolute"));
  const fs::path rel = fs::path(dir).relative_path();
  const std::vector<stats::CgroupMount> mounts = stats::ParseCgroupMounts(mountinfo);
  const stats::CgroupMount* v2 = nullptr;
  const stats::CgroupMount* cpu = nullptr;
  const stats::CgroupMount* memory = nullptr;
  for (const auto& m : mounts) {
    if (m.v2) {
      v2 = &m;
      continue;
    }
    for (const auto& c : m.controllers) {
      if (c == "cpu") cpu = &m;
      if (c == "memory") memory = &m;
    }
  }
  const bool want_cpu = l.cpu_period != 0 || l.cpu_quota != 0 || l.cpu_shares != 0;
  const bool want_memory = l.memory_limit_in_bytes != 0;
  if (cpu != nullptr || memory != nullptr) {
    // cgroup v1 (also the hybrid layout, whose v2 tree has no cpu or memory).
    if (want_cpu) {
      if (cpu == nullptr)
        return FailedPreconditionError("the cpu cgroup controller is not mounted");
      const fs::path d = fs::path(cpu->mount_point) / rel;
      RETURN_IF_ERROR(MakeCgroup(d));
      if (l.cpu_shares > 0) RETURN_IF_ERROR(WriteValue(d / "cpu.shares", StrCat(l.cpu_shares)));
      // A quota must fit the period: when the period shrinks, the quota
      // goes first; the kernel checks both against the children.
      Status period = OkStatus();
      if (l.cpu_period > 0) period = WriteValue(d / "cpu.cfs_period_us", StrCat(l.cpu_period));
      if (l.cpu_quota != 0)
        RETURN_IF_ERROR(WriteValue(d / "cpu.cfs_quota_us", StrCat(l.cpu_quota)));
      if (!period.ok()) {
        RETURN_IF_ERROR(WriteValue(d / "cpu.cfs_period_us", StrCat(l.cpu_period)));
      }
    }
    if (want_memory) {
      if (memory == nullptr) {
        return FailedPreconditionError("the memory cgroup controller is not mounted");
      }
      const fs::path d = fs::path(memory->mount_point) / rel;
      RETURN_IF_ERROR(MakeCgroup(d));
      RETURN_IF_ERROR(WriteValue(d / "memory.limit_in_bytes", StrCat(l.memory_limit_in_bytes)));
    }
    return OkStatus();
  }
  if (v2 == nullptr) return FailedPreconditionError("no cgroup hierarchy is mounted");
  const fs::path d = fs::path(v2->mount_point) / rel;
  RETURN_IF_ERROR(MakeCgroup(d));
  if (l.cpu_shares > 0) {
    RETURN_IF_ERROR(WriteValue(d / "cpu.weight", StrCat(CpuSharesToWeight(l.cpu_shares))));
  }
  if (l.cpu_quota != 0 || l.cpu_period > 0) {
    // cpu.max is "<quota|max> <period>"; a period alone keeps the quota.
    std::string quota = l.cpu_quota > 0 ? StrCat(l.cpu_quota) : "max";
    if (l.cpu_quota == 0) {
      auto current = ReadFile(d / "cpu.max");
      if (current.ok()) quota = current->substr(0, current->find(' '));
    }
    std::string value = l.cpu_period > 0 ? StrCat(quota, " ", l.cpu_period) : quota;
    RETURN_IF_ERROR(WriteValue(d / "cpu.max", value));
  }
  if (want_memory) {
    RETURN_IF_ERROR(WriteValue(d / "memory.max", l.memory_limit_in_bytes > 0
                                                     ? StrCat(l.memory_limit_in_bytes)
                                                     : std::string("max")));
  }
  return OkStatus();
}

}  // namespace berth::sandbox
