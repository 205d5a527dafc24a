#include "stats/cgroup_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "common/fs.h"

namespace berth::stats {

namespace fs = std::filesystem;

namespace {

int64_t ClockNs(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Reads from `fd` at offset 0 until EOF into `buf`.
bool PreadAll(int fd, std::string& buf) {
  buf.resize(buf.capacity() < 4096 ? 4096 : buf.capacity());
  size_t len = 0;
  for (;;) {
    if (len == buf.size()) buf.resize(buf.size() * 2);
    ssize_t n = ::pread(fd, buf.data() + len, buf.size() - len, static_cast<off_t>(len));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  buf.resize(len);
  return true;
}

// Reads a whole (small, kernel-generated) file into `buf`, through `files`
// when given. False with errno set when it cannot be opened or read.
bool ReadInto(FileCache* files, const std::string& path, std::string& buf) {
  if (files != nullptr) return files->Read(path, buf);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = PreadAll(fd, buf);
  int saved = errno;
  ::close(fd);
  errno = saved;
  return ok;
}

std::optional<uint64_t> ReadValue(FileCache* files, const std::string& path, std::string& buf) {
  if (!ReadInto(files, path, buf)) return std::nullopt;
  return ParseSingleValue(buf);
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// root + "/" + path, without doubled or trailing slashes.
std::string CgroupDir(const fs::path& root, std::string_view path) {
  std::string dir = root.string();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (!path.empty()) {
    if (dir != "/") dir += '/';
    dir += path;
  }
  return dir;
}

std::optional<uint64_t> Limit(std::optional<uint64_t> raw) {
  if (!raw || IsUnlimited(*raw)) return std::nullopt;
  return raw;
}

uint64_t FloorSub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

Status CgroupMissing(std::string_view path) {
  return NotFoundError(StrCat("cgroup ", path, " does not exist"));
}

class V2Reader final : public CgroupReader {
 public:
  explicit V2Reader(fs::path root) : root_(std::move(root)) {}
  CgroupVersion version() const override { return CgroupVersion::kV2; }

  StatusOr<CgroupSample> Read(std::string_view path, Detail detail,
                              FileCache* files) const override {
    const std::string dir = CgroupDir(root_, path);
    const bool metrics = detail == Detail::kMetrics;
    CgroupSample s;
    s.detail = detail;
    s.wall_ns = ClockNs(CLOCK_REALTIME);
    s.monotonic_ns = ClockNs(CLOCK_MONOTONIC);
    std::string buf;
    buf.reserve(4096);

    // cpu.stat is a core file: present in every cgroup, controller or not.
    if (ReadInto(files, dir + "/cpu.stat", buf)) {
      CpuSample cpu;
      ForEachFlatKeyed(buf, [&](std::string_view k, uint64_t v) {
        if (k == "usage_usec") cpu.usage_ns = v * 1000;
        if (!metrics) return;
        if (k == "user_usec") cpu.user_ns = v * 1000;
        if (k == "system_usec") cpu.system_ns = v * 1000;
        if (k == "nr_periods") cpu.periods = v;
        if (k == "nr_throttled") cpu.throttled_periods = v;
        if (k == "throttled_usec") cpu.throttled_ns = v * 1000;
      });
      if (ReadInto(files, dir + "/cpu.pressure", buf)) cpu.psi = ParsePressure(buf);
      s.cpu = cpu;
    } else if (!IsDir(dir)) {
      return CgroupMissing(path);
    }

    if (std::optional<uint64_t> current = ReadValue(files, dir + "/memory.current", buf)) {
      MemorySample m;
      m.usage = *current;
      m.limit = Limit(ReadValue(files, dir + "/memory.max", buf));
      if (ReadInto(files, dir + "/memory.stat", buf)) {
        ForEachFlatKeyed(buf, [&](std::string_view k, uint64_t v) {
          if (k == "anon") m.rss = v;
          if (k == "file") m.cache = v;
          if (k == "file_mapped") m.mapped_file = v;
          if (k == "active_file") m.active_file = v;
          if (k == "inactive_file") m.inactive_file = v;
          if (k == "kernel") m.kernel = v;
          if (k == "pgfault") m.pgfault = v;
          if (k == "pgmajfault") m.pgmajfault = v;
        });
      }
      m.working_set = FloorSub(m.usage, m.inactive_file);
      if (ReadInto(files, dir + "/memory.events", buf)) {
        ForEachFlatKeyed(buf, [&](std::string_view k, uint64_t v) {
          if (k == "oom_kill") m.oom_kill = v;
        });
      }
      if (std::optional<uint64_t> swap = ReadValue(files, dir + "/memory.swap.current", buf)) {
        m.swap_usage = swap;
        m.swap_limit = Limit(ReadValue(files, dir + "/memory.swap.max", buf));
      }
      if (ReadInto(files, dir + "/memory.pressure", buf)) m.psi = ParsePressure(buf);
      if (metrics) m.max_usage = ReadValue(files, dir + "/memory.peak", buf);
      s.memory = m;
    }

    if (ReadInto(files, dir + "/cgroup.procs", buf)) {
      PidsSample p;
      p.processes = CountProcs(buf);
      p.threads = ReadValue(files, dir + "/pids.current", buf);
      if (metrics) p.limit = Limit(ReadValue(files, dir + "/pids.max", buf));
      s.pids = p;
    }

    IoSample io;
    if (ReadInto(files, dir + "/io.pressure", buf)) io.psi = ParsePressure(buf);
    if (metrics && ReadInto(files, dir + "/io.stat", buf)) io.devices = ParseIoStat(buf);
    if (io.psi || !io.devices.empty()) s.io = std::move(io);
    return s;
  }

 private:
  fs::path root_;
};

class V1Reader final : public CgroupReader {
 public:
  explicit V1Reader(std::map<std::string, fs::path> mounts) : mounts_(std::move(mounts)) {
    long tck = ::sysconf(_SC_CLK_TCK);
    ns_per_tick_ = tck > 0 ? 1'000'000'000 / static_cast<uint64_t>(tck) : 10'000'000;
    if (const fs::path* mem = Mount("memory")) {
      swap_accounting_ = ::access((*mem / "memory.memsw.usage_in_bytes").c_str(), F_OK) == 0;
    }
  }
  CgroupVersion version() const override { return CgroupVersion::kV1; }

  StatusOr<CgroupSample> Read(std::string_view path, Detail detail,
                              FileCache* files) const override {
    const bool metrics = detail == Detail::kMetrics;
    CgroupSample s;
    s.detail = detail;
    s.wall_ns = ClockNs(CLOCK_REALTIME);
    s.monotonic_ns = ClockNs(CLOCK_MONOTONIC);
    std::string buf;
    buf.reserve(4096);
    bool found = false;  // the cgroup exists in at least one hierarchy

    if (const fs::path* root = Mount("cpuacct")) {
      const std::string dir = CgroupDir(*root, path);
      if (std::optional<uint64_t> usage = ReadValue(files, dir + "/cpuacct.usage", buf)) {
        found = true;
        CpuSample cpu;
        cpu.usage_ns = *usage;
        if (metrics && ReadInto(files, dir + "/cpuacct.stat", buf)) {
          ForEachFlatKeyed(buf, [&](std::string_view k, uint64_t v) {
            if (k == "user") cpu.user_ns = v * ns_per_tick_;
            if (k == "system") cpu.system_ns = v * ns_per_tick_;
          });
        }
        if (const fs::path* cpu_root = Mount("cpu"); metrics && cpu_root) {
          if (ReadInto(files, CgroupDir(*cpu_root, path) + "/cpu.stat", buf)) {
            ForEachFlatKeyed(buf, [&](std::string_view k, uint64_t v) {
              if (k == "nr_periods") cpu.periods = v;
              if (k == "nr_throttled") cpu.throttled_periods = v;
              if (k == "throttled_time") cpu.throttled_ns = v;
            });
          }
        }
        s.cpu = cpu;
      }
    }

    if (const fs::path* root = Mount("memory")) {
      const std::string dir = CgroupDir(*root, path);
      if (std::optional<uint64_t> usage = ReadValue(files, dir + "/memory.usage_in_bytes", buf)) {
        found = true;
        MemorySample m;
        m.usage = *usage;
        std::optional<uint64_t> raw_limit = ReadValue(files, dir + "/memory.limit_in_bytes", buf);
        m.limit = Limit(raw_limit);
        if (ReadInto(files, dir + "/memory.stat", buf)) {
          // The total_* figures include descendants (a pod's containers).
          ForEachFlatKeyed(buf, [&](std::string_view k, uint64_t v) {
            if (k == "total_rss") m.rss = v;
            if (k == "total_cache") m.cache = v;
            if (k == "total_mapped_file") m.mapped_file = v;
            if (k == "total_active_file") m.active_file = v;
            if (k == "total_inactive_file") m.inactive_file = v;
            if (k == "total_pgfault") m.pgfault = v;
            if (k == "total_pgmajfault") m.pgmajfault = v;
          });
        }
        m.working_set = FloorSub(m.usage, m.inactive_file);
        if (swap_accounting_) {
          // memsw counts memory + swap; its limit is memory limit + swap.
          if (std::optional<uint64_t> memsw =
                  ReadValue(files, dir + "/memory.memsw.usage_in_bytes", buf)) {
            m.swap_usage = FloorSub(*memsw, m.usage);
            std::optional<uint64_t> memsw_limit =
                Limit(ReadValue(files, dir + "/memory.memsw.limit_in_bytes", buf));
            if (memsw_limit && m.limit) m.swap_limit = FloorSub(*memsw_limit, *m.limit);
          }
        }
        if (ReadInto(files, dir + "/memory.oom_control", buf)) {
          ForEachFlatKeyed(buf, [&](std::string_view k, uint64_t v) {
            if (k == "oom_kill") m.oom_kill = v;
          });
        }
        if (metrics) {
          m.max_usage = ReadValue(files, dir + "/memory.max_usage_in_bytes", buf);
          m.failcnt = ReadValue(files, dir + "/memory.failcnt", buf);
        }
        s.memory = m;
      }
    }

    // Any hierarchy lists the cgroup's processes; the pids one also counts tasks.
    for (const char* ctrl : {"pids", "memory", "cpuacct"}) {
      const fs::path* root = Mount(ctrl);
      if (root == nullptr) continue;
      const std::string dir = CgroupDir(*root, path);
      if (!ReadInto(files, dir + "/cgroup.procs", buf)) continue;
      found = true;
      PidsSample p;
      p.processes = CountProcs(buf);
      if (std::string_view(ctrl) == "pids") {
        p.threads = ReadValue(files, dir + "/pids.current", buf);
        if (metrics) p.limit = Limit(ReadValue(files, dir + "/pids.max", buf));
      }
      s.pids = p;
      break;
    }

    if (const fs::path* root = Mount("blkio"); metrics && root) {
      const std::string dir = CgroupDir(*root, path);
      IoSample io;
      if (ReadInto(files, dir + "/blkio.throttle.io_service_bytes_recursive", buf)) {
        MergeBlkioV1(buf, /*bytes=*/true, io.devices);
        if (ReadInto(files, dir + "/blkio.throttle.io_serviced_recursive", buf)) {
          MergeBlkioV1(buf, /*bytes=*/false, io.devices);
        }
        s.io = std::move(io);
      }
    }

    if (!found) return CgroupMissing(path);
    return s;
  }

 private:
  const fs::path* Mount(const std::string& controller) const {
    auto it = mounts_.find(controller);
    return it == mounts_.end() ? nullptr : &it->second;
  }

  std::map<std::string, fs::path> mounts_;
  uint64_t ns_per_tick_ = 10'000'000;
  bool swap_accounting_ = false;
};

}  // namespace

FileCache::~FileCache() {
  for (auto& [path, fd] : fds_) ::close(fd);
  budget_->fetch_add(static_cast<int>(fds_.size()));
}

bool FileCache::Read(const std::string& path, std::string& buf) {
  for (auto it = fds_.begin(); it != fds_.end(); ++it) {
    if (it->first != path) continue;
    if (PreadAll(it->second, buf)) return true;
    // Gone (ENODEV after the cgroup was removed) or broken: open it afresh.
    ::close(it->second);
    fds_.erase(it);
    budget_->fetch_add(1);
    break;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = PreadAll(fd, buf);
  int saved = errno;
  if (ok && budget_->fetch_sub(1) > 0) {
    fds_.emplace_back(path, fd);
    return true;
  }
  if (ok) budget_->fetch_add(1);
  ::close(fd);
  errno = saved;
  return ok;
}

std::unique_ptr<CgroupReader> NewCgroupV2Reader(fs::path root) {
  return std::make_unique<V2Reader>(std::move(root));
}

std::unique_ptr<CgroupReader> NewCgroupV1Reader(std::map<std::string, fs::path> mounts) {
  return std::make_unique<V1Reader>(std::move(mounts));
}

StatusOr<CgroupLayout> DetectCgroupLayout(std::string_view mountinfo) {
  CgroupLayout layout;
  std::optional<fs::path> any_v2;
  for (const CgroupMount& m : ParseCgroupMounts(mountinfo)) {
    if (m.v2) {
      if (m.mount_point == "/sys/fs/cgroup") {
        layout.version = CgroupVersion::kV2;
        layout.v2_root = m.mount_point;
        return layout;
      }
      if (!any_v2) any_v2 = m.mount_point;
      continue;
    }
    for (const std::string& c : m.controllers) layout.v1_mounts.emplace(c, m.mount_point);
  }
  if (!layout.v1_mounts.empty()) {
    layout.version = CgroupVersion::kV1;
    return layout;
  }
  if (any_v2) {
    layout.version = CgroupVersion::kV2;
    layout.v2_root = *any_v2;
    return layout;
  }
  return FailedPreconditionError("no cgroup or cgroup2 filesystem is mounted");
}

StatusOr<std::unique_ptr<CgroupReader>> NewHostCgroupReader() {
  ASSIGN_OR_RETURN(std::string mountinfo, ReadFile("/proc/self/mountinfo"));
  ASSIGN_OR_RETURN(CgroupLayout layout, DetectCgroupLayout(mountinfo));
  if (layout.version == CgroupVersion::kV2) return NewCgroupV2Reader(layout.v2_root);
  return NewCgroupV1Reader(std::move(layout.v1_mounts));
}

}  // namespace berth::stats
