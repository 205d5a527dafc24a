// The cgroup file parsers, the cgroup v2 reader against a fixture tree in the
// kernel's formats (tests/unit/testdata/cgroup_v2), the v1 reader against a
// live cgroup on v1 hosts, layout detection, and the metric conversion.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "common/fs.h"
#include "stats/cgroup_parse.h"
#include "stats/cgroup_reader.h"
#include "stats/metrics.h"

#ifndef STATS_TESTDATA
#error "STATS_TESTDATA must name tests/unit/testdata"
#endif

namespace berth::stats {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

const fs::path kV2Fixture = fs::path(STATS_TESTDATA) / "cgroup_v2";

// --- parsers ------------------------------------------------------------------

TEST(StatsParseTest, SingleValues) {
  EXPECT_EQ(ParseSingleValue("104857600\n"), 104857600u);
  EXPECT_EQ(ParseSingleValue("max\n"), kUnlimited);
  EXPECT_EQ(ParseSingleValue("  7  "), 7u);
  EXPECT_FALSE(ParseSingleValue(""));
  EXPECT_FALSE(ParseSingleValue("-1"));
  EXPECT_FALSE(ParseSingleValue("12 13"));
  EXPECT_FALSE(ParseSingleValue("99999999999999999999999"));  // overflows uint64
  EXPECT_TRUE(IsUnlimited(9223372036854771712u));             // v1's "no limit"
  EXPECT_FALSE(IsUnlimited(256u << 20));
}

TEST(StatsParseTest, FlatKeyedSkipsWhatIsNotKeyNumber) {
  std::vector<std::pair<std::string, uint64_t>> got;
  ForEachFlatKeyed("usage_usec 25\nbad\nx y\nnr_periods 3 extra\n\nuser_usec 7",
                   [&](std::string_view k, uint64_t v) { got.emplace_back(k, v); });
  EXPECT_THAT(got, ElementsAre(std::pair<std::string, uint64_t>{"usage_usec", 25},
                               std::pair<std::string, uint64_t>{"user_usec", 7}));
}

TEST(StatsParseTest, Pressure) {
  Psi p = ParsePressure(
      "some avg10=1.50 avg60=0.75 avg300=0.20 total=123456\n"
      "full avg10=0.50 avg60=0.25 avg300=0.05 total=65432\n");
  ASSERT_TRUE(p.some && p.full);
  EXPECT_DOUBLE_EQ(p.some->avg10, 1.5);
  EXPECT_DOUBLE_EQ(p.some->avg300, 0.2);
  EXPECT_EQ(p.some->total_us, 123456u);
  EXPECT_EQ(p.full->total_us, 65432u);
  // The system-wide cpu file has "full" only on newer kernels; a line missing
  // a field is dropped, not half-filled.
  Psi partial = ParsePressure(
      "some avg10=0.00 avg60=0.00 total=5\nfull avg10=x avg60=0 "
      "avg300=0 total=1\n");
  EXPECT_FALSE(partial.some);
  EXPECT_FALSE(partial.full);
}

TEST(StatsParseTest, IoStatV2) {
  std::vector<IoDeviceStats> d = ParseIoStat(
      "8:0 rbytes=1212416 wbytes=40960 rios=30 wios=10 dbytes=0 dios=0\n"
      "259:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
      "garbage line\n");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].major, 8u);
  EXPECT_EQ(d[0].read_bytes, 1212416u);
  EXPECT_EQ(d[0].writes, 10u);
  EXPECT_EQ(d[1].major, 259u);
  EXPECT_EQ(d[1].write_bytes, 8192u);
}

TEST(StatsParseTest, BlkioV1) {
  std::vector<IoDeviceStats> d;
  MergeBlkioV1(
      "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:0 Async 2\n8:0 Discard 0\n8:0 Total 12288\n"
      "Total 12288\n",
      /*bytes=*/true, d);
  MergeBlkioV1("8:0 Read 1\n8:0 Write 2\nTotal 3\n", /*bytes=*/false, d);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].read_bytes, 4096u);
  EXPECT_EQ(d[0].write_bytes, 8192u);
  EXPECT_EQ(d[0].reads, 1u);
  EXPECT_EQ(d[0].writes, 2u);
}

TEST(StatsParseTest, NetDev) {
  const char* text =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
      "drop fifo colls carrier compressed\n"
      "    lo:     840      10    0    0    0     0          0         0      840      10    0    "
      "0    0     0       0          0\n"
      "  eth0:123456789    1000    2    3    0     0          0         0  5555     44    5    6   "
      " "
      "0     0       0          0\n"
      "short: 1 2 3\n";
  std::vector<InterfaceCounters> c = ParseNetDev(text);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].name, "lo");
  EXPECT_EQ(c[1].name, "eth0");
  EXPECT_EQ(c[1].rx_bytes, 123456789u);
  EXPECT_EQ(c[1].rx_packets, 1000u);
  EXPECT_EQ(c[1].rx_errors, 2u);
  EXPECT_EQ(c[1].rx_dropped, 3u);
  EXPECT_EQ(c[1].tx_bytes, 5555u);
  EXPECT_EQ(c[1].tx_packets, 44u);
  EXPECT_EQ(c[1].tx_errors, 5u);
  EXPECT_EQ(c[1].tx_dropped, 6u);
}

TEST(StatsParseTest, CountProcs) {
  EXPECT_EQ(CountProcs(""), 0u);
  EXPECT_EQ(CountProcs("1\n22\n333\n"), 3u);
  EXPECT_EQ(CountProcs("1\nx\n2"), 2u);
}

// The mounts of this project's VMs (hybrid: v1 controllers, a nearly empty v2
// at /sys/fs/cgroup/unified), of a pure v2 host, and of a host that co-mounts
// cpu and cpuacct.
constexpr char kHybridMountinfo[] =
    "25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "26 25 0:24 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "27 26 0:25 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "28 26 0:26 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "29 26 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "30 26 0:28 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "31 26 0:29 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "32 26 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
constexpr char kV2Mountinfo[] =
    "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";
constexpr char kCoMountedMountinfo[] =
    "27 26 0:25 / /sys/fs/cgroup/cpu\\054cpuacct rw,relatime shared:9 - cgroup cgroup "
    "rw,cpu,cpuacct\n"
    "29 26 0:27 / /sys/fs/cgroup/memory rw,relatime shared:10 - cgroup cgroup rw,memory\n";

TEST(CgroupLayoutTest, Detect) {
  StatusOr<CgroupLayout> hybrid = DetectCgroupLayout(kHybridMountinfo);
  ASSERT_TRUE(hybrid.ok()) << hybrid.status().ToString();
  EXPECT_EQ(hybrid->version, CgroupVersion::kV1);
  EXPECT_EQ(hybrid->v1_mounts.at("cpuacct"), "/sys/fs/cgroup/cpuacct");
  EXPECT_EQ(hybrid->v1_mounts.at("memory"), "/sys/fs/cgroup/memory");
  EXPECT_EQ(hybrid->v1_mounts.count("name=systemd"), 1u);

  StatusOr<CgroupLayout> v2 = DetectCgroupLayout(kV2Mountinfo);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->version, CgroupVersion::kV2);
  EXPECT_EQ(v2->v2_root, "/sys/fs/cgroup");

  StatusOr<CgroupLayout> co = DetectCgroupLayout(kCoMountedMountinfo);
  ASSERT_TRUE(co.ok());
  EXPECT_EQ(co->v1_mounts.at("cpu"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(co->v1_mounts.at("cpuacct"), "/sys/fs/cgroup/cpu,cpuacct");

  EXPECT_EQ(DetectCgroupLayout("1 2 0:1 / / rw - ext4 /dev/vda rw\n").status().code(),
            StatusCode::kFailedPrecondition);
}

// --- cgroup v2 against the fixture tree ----------------------------------------

TEST(CgroupV2ReaderTest, ContainerFixtureAllFigures) {
  std::unique_ptr<CgroupReader> r = NewCgroupV2Reader(kV2Fixture);
  EXPECT_EQ(r->version(), CgroupVersion::kV2);
  StatusOr<CgroupSample> s = r->Read("/kubepods.slice/pod1/ctr1", Detail::kMetrics);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_GT(s->wall_ns, 0);
  EXPECT_GT(s->monotonic_ns, 0);

  ASSERT_TRUE(s->cpu);
  EXPECT_EQ(s->cpu->usage_ns, 2'500'000'000u);
  EXPECT_EQ(s->cpu->user_ns, 2'000'000'000u);
  EXPECT_EQ(s->cpu->system_ns, 500'000'000u);
  EXPECT_EQ(s->cpu->periods, 120u);
  EXPECT_EQ(s->cpu->throttled_periods, 7u);
  EXPECT_EQ(s->cpu->throttled_ns, 350'000'000u);
  ASSERT_TRUE(s->cpu->psi && s->cpu->psi->some && s->cpu->psi->full);
  EXPECT_EQ(s->cpu->psi->some->total_us, 123456u);

  ASSERT_TRUE(s->memory);
  const MemorySample& m = *s->memory;
  EXPECT_EQ(m.usage, 104857600u);
  EXPECT_EQ(m.limit, 268435456u);
  EXPECT_EQ(m.inactive_file, 31457280u);
  EXPECT_EQ(m.working_set, 104857600u - 31457280u);  // usage - inactive_file
  EXPECT_EQ(m.rss, 52428800u);                       // anon, as cAdvisor on v2
  EXPECT_EQ(m.cache, 41943040u);
  EXPECT_EQ(m.mapped_file, 8388608u);
  EXPECT_EQ(m.active_file, 10485760u);
  EXPECT_EQ(m.kernel, 3145728u);
  EXPECT_EQ(m.pgfault, 98765u);
  EXPECT_EQ(m.pgmajfault, 43u);
  EXPECT_EQ(m.swap_usage, 4096000u);
  EXPECT_FALSE(m.swap_limit);  // "max"
  EXPECT_EQ(m.oom_kill, 1u);
  EXPECT_EQ(m.max_usage, 110100480u);
  EXPECT_FALSE(m.failcnt);
  ASSERT_TRUE(m.psi && m.psi->full);
  EXPECT_EQ(m.psi->full->total_us, 1000u);

  ASSERT_TRUE(s->pids);
  EXPECT_EQ(s->pids->processes, 3u);
  EXPECT_EQ(s->pids->threads, 5u);
  EXPECT_EQ(s->pids->limit, 1024u);

  ASSERT_TRUE(s->io);
  ASSERT_EQ(s->io->devices.size(), 2u);
  EXPECT_EQ(s->io->devices[0].read_bytes, 1212416u);
  ASSERT_TRUE(s->io->psi && s->io->psi->some);
  EXPECT_EQ(s->io->psi->some->total_us, 777000u);
}

TEST(CgroupV2ReaderTest, StatsDetailLeavesMetricsOnlyFiguresOut) {
  StatusOr<CgroupSample> s =
      NewCgroupV2Reader(kV2Fixture)->Read("kubepods.slice/pod1/ctr1/", Detail::kStats);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->cpu->usage_ns, 2'500'000'000u);
  EXPECT_FALSE(s->cpu->user_ns);
  EXPECT_FALSE(s->cpu->periods);
  EXPECT_FALSE(s->memory->max_usage);
  EXPECT_FALSE(s->pids->limit);
  ASSERT_TRUE(s->io);
  EXPECT_THAT(s->io->devices, IsEmpty());
  EXPECT_TRUE(s->io->psi);  // PSI is part of the CRI stats
}

TEST(CgroupV2ReaderTest, WorkingSetFloorsAtZeroAndMaxIsNoLimit) {
  StatusOr<CgroupSample> s =
      NewCgroupV2Reader(kV2Fixture)->Read("/kubepods.slice/pod1", Detail::kMetrics);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->memory->usage, 125829120u);
  EXPECT_EQ(s->memory->working_set, 0u);  // inactive_file > usage
  EXPECT_FALSE(s->memory->limit);
  EXPECT_FALSE(s->memory->swap_usage);  // no memory.swap.current: no swap accounting
  EXPECT_FALSE(s->memory->oom_kill);
  EXPECT_EQ(s->pids->processes, 0u);  // an inner cgroup holds no process itself
  EXPECT_EQ(s->pids->threads, 7u);
  EXPECT_FALSE(s->pids->limit);
  EXPECT_FALSE(s->cpu->psi);
  EXPECT_FALSE(s->io);
}

TEST(CgroupV2ReaderTest, MissingControllersAndCgroups) {
  std::unique_ptr<CgroupReader> r = NewCgroupV2Reader(kV2Fixture);
  StatusOr<CgroupSample> nomem = r->Read("/kubepods.slice/pod1/nomem", Detail::kStats);
  ASSERT_TRUE(nomem.ok());
  EXPECT_EQ(nomem->cpu->usage_ns, 10'000u);
  EXPECT_FALSE(nomem->memory);
  EXPECT_EQ(nomem->pids->processes, 1u);
  EXPECT_FALSE(nomem->pids->threads);

  StatusOr<CgroupSample> gone = r->Read("/kubepods.slice/pod1/gone", Detail::kStats);
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(gone.status().message(), ::testing::HasSubstr("/kubepods.slice/pod1/gone"));
}

TEST(FileCacheTest, KeepsFilesOpenWithinItsBudgetAndReadsFreshContent) {
  // A copy of the fixture, so that a file can change between two samples.
  const fs::path dir = fs::temp_directory_path() / StrCat("berth-filecache-", RandomHex(4));
  fs::copy(kV2Fixture, dir, fs::copy_options::recursive);
  std::unique_ptr<CgroupReader> r = NewCgroupV2Reader(dir);
  std::atomic<int> budget{4};
  {
    FileCache files(&budget);
    StatusOr<CgroupSample> a = r->Read("/kubepods.slice/pod1/ctr1", Detail::kStats, &files);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(files.open_files(), 4u);
    EXPECT_EQ(budget.load(), 0);
    // Over the budget every file is still read, opened and closed each time.
    EXPECT_EQ(a->memory->usage, 104857600u);
    EXPECT_EQ(a->pids->threads, 5u);
    // The kept descriptors read the current content (written in place).
    { std::ofstream(dir / "kubepods.slice/pod1/ctr1/cpu.stat") << "usage_usec 7000000\n"; }
    StatusOr<CgroupSample> b = r->Read("/kubepods.slice/pod1/ctr1", Detail::kStats, &files);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->cpu->usage_ns, 7'000'000'000u);
    EXPECT_EQ(b->memory->usage, a->memory->usage);
    EXPECT_EQ(files.open_files(), 4u);
  }
  EXPECT_EQ(budget.load(), 4) << "a destroyed cache gives its descriptors back";
  fs::remove_all(dir);
}

// --- cgroup v1, live ------------------------------------------------------------

// A child process in a cgroup of our own that touches `mib` MiB of anonymous
// memory and burns `cpu_ms` of CPU, then sleeps until killed.
class V1LiveCgroup {
 public:
  V1LiveCgroup(const std::map<std::string, fs::path>& mounts, std::string name)
      : name_(std::move(name)) {
    for (const char* c : {"cpuacct", "memory", "pids", "cpu", "blkio"}) {
      auto it = mounts.find(c);
      if (it == mounts.end()) continue;
      fs::path dir = it->second / name_;
      if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) dirs_.insert(dir);
    }
  }
  ~V1LiveCgroup() { Remove(); }

  // Kills the child and removes the cgroups.
  void Remove() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    for (const fs::path& d : dirs_) ::rmdir(d.c_str());
    dirs_.clear();
  }

  // Forks the child, moves it into every hierarchy's cgroup, lets it work and
  // waits until it is done.
  Status Run(size_t mib, int cpu_ms) {
    int go[2], done[2];
    if (::pipe(go) != 0 || ::pipe(done) != 0) return ErrnoStatus(errno, "pipe");
    pid_ = ::fork();
    if (pid_ < 0) return ErrnoStatus(errno, "fork");
    if (pid_ == 0) {
      char b;
      if (::read(go[0], &b, 1) != 1) ::_exit(1);
      char* mem = static_cast<char*>(::malloc(mib << 20));
      if (mem == nullptr) ::_exit(2);
      for (size_t i = 0; i < (mib << 20); i += 4096) mem[i] = 1;
      timespec ts{};
      do {
        ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
      } while (ts.tv_sec * 1000 + ts.tv_nsec / 1'000'000 < cpu_ms);
      if (::write(done[1], "x", 1) != 1) ::_exit(3);
      for (;;) ::pause();
    }
    for (const fs::path& d : dirs_) {
      RETURN_IF_ERROR(WriteFileAtomicNoRename(d / "cgroup.procs", std::to_string(pid_)));
    }
    if (::write(go[1], "x", 1) != 1) return ErrnoStatus(errno, "start child");
    char b;
    if (::read(done[0], &b, 1) != 1) return InternalError("the child did not finish its work");
    for (int fd : {go[0], go[1], done[0], done[1]}) ::close(fd);
    return OkStatus();
  }

  uint64_t Value(const std::string& ctrl, const std::string& file) const {
    for (const fs::path& d : dirs_) {
      if (d.parent_path().filename() == ctrl) {
        StatusOr<std::string> t = ReadFile(d / file);
        if (t.ok()) return ParseSingleValue(*t).value_or(0);
      }
    }
    ADD_FAILURE() << "no " << ctrl << "/" << file;
    return 0;
  }
  uint64_t StatKey(const std::string& key) const {
    uint64_t out = 0;
    for (const fs::path& d : dirs_) {
      if (d.parent_path().filename() != "memory") continue;
      StatusOr<std::string> text = ReadFile(d / "memory.stat");
      ForEachFlatKeyed(text.ok() ? *text : "", [&](std::string_view k, uint64_t v) {
        if (k == key) out = v;
      });
    }
    return out;
  }
  const std::string& name() const { return name_; }

 private:
  static Status WriteFileAtomicNoRename(const fs::path& p, const std::string& data) {
    FILE* f = ::fopen(p.c_str(), "w");
    if (f == nullptr) return ErrnoStatus(errno, StrCat("open ", p.string()));
    bool ok = ::fputs(data.c_str(), f) >= 0;
    ok = (::fclose(f) == 0) && ok;
    return ok ? OkStatus() : ErrnoStatus(errno, StrCat("write ", p.string()));
  }

  std::string name_;
  std::set<fs::path> dirs_;
  pid_t pid_ = -1;
};

TEST(CgroupV1ReaderTest, LiveCgroupAgreesWithItsFilesAndTheWork) {
  StatusOr<std::string> mountinfo = ReadFile("/proc/self/mountinfo");
  ASSERT_TRUE(mountinfo.ok());
  StatusOr<CgroupLayout> layout = DetectCgroupLayout(*mountinfo);
  ASSERT_TRUE(layout.ok()) << layout.status().ToString();
  if (layout->version != CgroupVersion::kV1 || ::geteuid() != 0) {
    GTEST_SKIP() << "needs root on a cgroup v1 host (v2 is covered by the fixture tests)";
  }
  for (const char* c : {"cpuacct", "memory", "pids"}) {
    ASSERT_TRUE(layout->v1_mounts.count(c)) << c << " is not mounted";
  }
  constexpr size_t kMiB = 48;
  constexpr int kCpuMs = 300;
  V1LiveCgroup cg(layout->v1_mounts, StrCat("berth-stats-test-", RandomHex(4)));
  Status run = cg.Run(kMiB, kCpuMs);
  ASSERT_TRUE(run.ok()) << run.ToString();

  std::unique_ptr<CgroupReader> reader = NewCgroupV1Reader(layout->v1_mounts);
  EXPECT_EQ(reader->version(), CgroupVersion::kV1);
  const uint64_t cpu_before = cg.Value("cpuacct", "cpuacct.usage");
  const uint64_t mem_before = cg.Value("memory", "memory.usage_in_bytes");
  StatusOr<CgroupSample> s = reader->Read("/" + cg.name(), Detail::kMetrics);
  const uint64_t cpu_after = cg.Value("cpuacct", "cpuacct.usage");
  const uint64_t mem_after = cg.Value("memory", "memory.usage_in_bytes");
  ASSERT_TRUE(s.ok()) << s.status().ToString();

  // The figures are the files' (read between two direct reads)...
  ASSERT_TRUE(s->cpu);
  EXPECT_GE(s->cpu->usage_ns, cpu_before);
  EXPECT_LE(s->cpu->usage_ns, cpu_after);
  ASSERT_TRUE(s->memory);
  EXPECT_GE(s->memory->usage, std::min(mem_before, mem_after));
  EXPECT_LE(s->memory->usage, std::max(mem_before, mem_after));
  EXPECT_EQ(s->memory->inactive_file, cg.StatKey("total_inactive_file"));
  EXPECT_EQ(s->memory->working_set,
            s->memory->usage - std::min(s->memory->usage, s->memory->inactive_file));
  EXPECT_EQ(s->memory->rss, cg.StatKey("total_rss"));
  EXPECT_EQ(s->memory->pgfault, cg.StatKey("total_pgfault"));
  EXPECT_EQ(s->memory->pgmajfault, cg.StatKey("total_pgmajfault"));
  EXPECT_FALSE(s->memory->limit);  // none set
  EXPECT_EQ(s->memory->oom_kill, 0u);
  ASSERT_TRUE(s->memory->max_usage);
  EXPECT_GE(*s->memory->max_usage, s->memory->usage);
  // ... and match the work: the child alone ran here.
  // The child's CPU clock also counts the moments before it was moved in.
  EXPECT_GE(s->cpu->usage_ns, uint64_t{kCpuMs} * 900'000);
  EXPECT_LT(s->cpu->usage_ns, uint64_t{kCpuMs} * 1'000'000 * 20);
  EXPECT_GE(s->memory->rss, kMiB << 20);
  EXPECT_LT(s->memory->rss, (kMiB + 32) << 20);
  EXPECT_GE(s->memory->pgfault, (kMiB << 20) / (2 << 20));  // at least one fault per huge page
  ASSERT_TRUE(s->cpu->user_ns && s->cpu->system_ns);
  EXPECT_GT(*s->cpu->user_ns + *s->cpu->system_ns, 0u);
  ASSERT_TRUE(s->pids);
  EXPECT_EQ(s->pids->processes, 1u);
  EXPECT_EQ(s->pids->threads, 1u);
  EXPECT_FALSE(s->pids->limit);  // "max"

  // The CRI detail skips what only metrics use.
  StatusOr<CgroupSample> brief = reader->Read(cg.name(), Detail::kStats);
  ASSERT_TRUE(brief.ok());
  EXPECT_FALSE(brief->cpu->user_ns);
  EXPECT_FALSE(brief->memory->max_usage);
  EXPECT_GE(brief->cpu->usage_ns, s->cpu->usage_ns);

  EXPECT_EQ(reader->Read("/" + cg.name() + "-gone", Detail::kStats).status().code(),
            StatusCode::kNotFound);

  // Kept-open files read the same figures, and notice the cgroup's removal.
  std::atomic<int> budget{64};
  FileCache files(&budget);
  StatusOr<CgroupSample> cached = reader->Read(cg.name(), Detail::kMetrics, &files);
  ASSERT_TRUE(cached.ok());
  EXPECT_GT(files.open_files(), 5u);
  StatusOr<CgroupSample> again = reader->Read(cg.name(), Detail::kMetrics, &files);
  ASSERT_TRUE(again.ok());
  EXPECT_GE(again->cpu->usage_ns, cached->cpu->usage_ns);
  EXPECT_EQ(again->pids->processes, 1u);
  EXPECT_EQ(again->memory->rss, cg.StatKey("total_rss"));
  cg.Remove();
  EXPECT_EQ(reader->Read(cg.name(), Detail::kMetrics, &files).status().code(),
            StatusCode::kNotFound);
  // (StatsService drops the cache of a cgroup that is NOT_FOUND, closing what is left open.)
  EXPECT_EQ(reader->Read(cg.name(), Detail::kStats, &files).status().code(), StatusCode::kNotFound);
}

// --- metrics --------------------------------------------------------------------

TEST(MetricsTest, DescriptorsAreUniqueAndCadvisorNamed) {
  std::set<std::string> names;
  for (const MetricDescriptor& d : MetricDescriptors()) {
    EXPECT_TRUE(names.insert(d.name).second) << d.name << " twice";
    EXPECT_TRUE(d.name.starts_with("container_")) << d.name;
    EXPECT_FALSE(d.help.empty()) << d.name;
    EXPECT_EQ(std::vector<std::string>(d.label_keys.begin(), d.label_keys.begin() + 5),
              (std::vector<std::string>{"pod", "namespace", "container", "id", "image"}))
        << d.name;
    // cAdvisor's one gauge named *_total counts inodes, not events.
    if (d.name.ends_with("_total") && d.name != "container_fs_inodes_total") {
      EXPECT_EQ(d.kind, MetricKind::kCounter) << d.name;
    }
  }
  for (const char* n :
       {"container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
        "container_memory_usage_bytes", "container_memory_rss", "container_oom_events_total",
        "container_network_receive_bytes_total", "container_network_transmit_bytes_total",
        "container_fs_usage_bytes", "container_processes", "container_start_time_seconds"}) {
    EXPECT_TRUE(names.contains(n)) << n;
  }
}

TEST(MetricsTest, EverySampleMatchesItsDescriptor) {
  StatusOr<CgroupSample> s =
      NewCgroupV2Reader(kV2Fixture)->Read("/kubepods.slice/pod1/ctr1", Detail::kMetrics);
  ASSERT_TRUE(s.ok());
  PodUsage pod;
  pod.record.id = "pod1id";
  pod.record.config.name = "web";
  pod.record.config.namespace_ = "default";
  NetworkSample net;
  net.wall_ns = 42;
  InterfaceCounters eth0;
  eth0.name = "eth0";
  eth0.rx_bytes = 1000;
  eth0.tx_bytes = 2000;
  net.interfaces.push_back(eth0);
  pod.network = net;
  ContainerUsage running;
  running.record.id = "ctr1id";
  running.record.name = "app";
  running.record.image = "busybox:1";
  running.record.started_at_ns = 1'700'000'000'500'000'000;
  running.record.resources.memory_limit_in_bytes = 268435456;
  running.sample = *s;
  running.writable_layer = {1, 8192, 3, "/var/lib/berth/containers"};
  ContainerUsage created;  // not running: no metrics
  created.record.id = "ctr2id";
  pod.containers = {running, created};

  PodMetricSamples m = ToPodMetrics(pod, FilesystemCapacity{1 << 30, 1000, 900});
  EXPECT_EQ(m.pod_sandbox_id, "pod1id");
  ASSERT_EQ(m.containers.size(), 1u);
  EXPECT_EQ(m.containers[0].container_id, "ctr1id");

  std::map<std::string, const MetricDescriptor*> by_name;
  for (const MetricDescriptor& d : MetricDescriptors()) by_name[d.name] = &d;
  std::map<std::string, std::vector<const MetricSample*>> seen;
  std::vector<const MetricSample*> all;
  for (const MetricSample& x : m.metrics) all.push_back(&x);
  for (const MetricSample& x : m.containers[0].metrics) all.push_back(&x);
  for (const MetricSample* x : all) {
    ASSERT_TRUE(by_name.contains(x->name)) << x->name;
    EXPECT_EQ(x->label_values.size(), by_name[x->name]->label_keys.size()) << x->name;
    EXPECT_EQ(x->kind, by_name[x->name]->kind) << x->name;
    seen[x->name].push_back(x);
  }
  auto value = [&](const std::string& name) {
    EXPECT_EQ(seen[name].size(), 1u) << name;
    return seen[name].empty() ? uint64_t{0} : seen[name][0]->value;
  };
  EXPECT_EQ(value("container_cpu_usage_seconds_total"), 2u);  // 2.5 s, whole seconds
  EXPECT_EQ(seen["container_cpu_usage_seconds_total"][0]->label_values,
            (std::vector<std::string>{"web", "default", "app", "ctr1id", "busybox:1", "total"}));
  EXPECT_EQ(value("container_memory_working_set_bytes"), 104857600u - 31457280u);
  EXPECT_EQ(value("container_oom_events_total"), 1u);
  EXPECT_EQ(value("container_processes"), 3u);
  EXPECT_EQ(value("container_threads_max"), 1024u);
  EXPECT_EQ(value("container_start_time_seconds"), 1'700'000'000u);
  EXPECT_EQ(value("container_fs_usage_bytes"), 8192u);
  EXPECT_EQ(value("container_spec_memory_limit_bytes"), 268435456u);
  EXPECT_EQ(value("container_pressure_io_waiting_seconds_total"), 0u);  // 0.777 s
  EXPECT_EQ(value("container_network_receive_bytes_total"), 1000u);
  EXPECT_EQ(seen["container_network_receive_bytes_total"][0]->label_values,
            (std::vector<std::string>{"web", "default", "", "pod1id", "", "eth0"}));
  EXPECT_EQ(seen["container_fs_reads_bytes_total"].size(), 2u);   // two devices
  EXPECT_EQ(seen["container_memory_failures_total"].size(), 2u);  // pgfault, pgmajfault
}

}  // namespace
}  // namespace berth::stats
