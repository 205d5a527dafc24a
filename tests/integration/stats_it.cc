// CRI stats and metrics against a real berthd, real runc and real cgroups: containers do known
// work (CPU, memory in a tmpfs, bytes in the writable layer, processes, traffic over the pod
// network) and the figures are checked against the cgroup files read directly and against the
// work. Runs on cgroup v1 (these machines) and v2.
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

#include <sys/socket.h>

#include <sstream>

namespace berth::testing {
namespace {

// The cgroup directories of a process, read from /proc/<pid>/cgroup.
class ProcessCgroups {
 public:
  explicit ProcessCgroups(int pid) {
    v2_ = Exists("/sys/fs/cgroup/cgroup.controllers");
    const std::string text = ReadOr(StrCat("/proc/", pid, "/cgroup"));
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      const std::string line = text.substr(start, end - start);
      start = end + 1;
      const size_t c1 = line.find(':'), c2 = line.find(':', c1 + 1);
      if (c1 == std::string::npos || c2 == std::string::npos) continue;
      const std::string ctrls = line.substr(c1 + 1, c2 - c1 - 1);
      const fs::path rel = fs::path(line.substr(c2 + 1)).relative_path();
      if (v2_) {
        if (ctrls.empty()) unified_ = fs::path("/sys/fs/cgroup") / rel;
        continue;
      }
      size_t s = 0;
      while (s <= ctrls.size()) {
        size_t comma = ctrls.find(',', s);
        if (comma == std::string::npos) comma = ctrls.size();
        const std::string c = ctrls.substr(s, comma - s);
        if (!c.empty()) dirs_[c] = fs::path("/sys/fs/cgroup") / c / rel;
        s = comma + 1;
      }
    }
  }

  bool ok() const { return v2_ ? !unified_.empty() : dirs_.count("memory") > 0; }
  fs::path Dir(const std::string& ctrl) const {
    if (v2_) return unified_;
    auto it = dirs_.find(ctrl);
    return it == dirs_.end() ? fs::path() : it->second;
  }

  uint64_t CpuNs() const {
    return v2_ ? Key(Dir("cpu") / "cpu.stat", "usage_usec") * 1000
               : Number(Dir("cpuacct") / "cpuacct.usage");
  }
  uint64_t MemoryUsage() const {
    return Number(Dir("memory") / (v2_ ? "memory.current" : "memory.usage_in_bytes"));
  }
  uint64_t InactiveFile() const {
    return Key(Dir("memory") / "memory.stat", v2_ ? "inactive_file" : "total_inactive_file");
  }
  uint64_t Rss() const { return Key(Dir("memory") / "memory.stat", v2_ ? "anon" : "total_rss"); }
  uint64_t PageFaults() const {
    return Key(Dir("memory") / "memory.stat", v2_ ? "pgfault" : "total_pgfault");
  }
  uint64_t Processes() const {
    const std::string procs = ReadOr(Dir(v2_ ? "" : "pids") / "cgroup.procs");
    return static_cast<uint64_t>(std::count(procs.begin(), procs.end(), '\n'));
  }

  static uint64_t Number(const fs::path& p) {
    const std::string t = Trim(ReadOr(p));
    EXPECT_FALSE(t.empty()) << "cannot read " << p;
    return t.empty() ? 0 : std::stoull(t);
  }
  static uint64_t Key(const fs::path& p, const std::string& key) {
    const std::string t = ReadOr(p);
    const size_t at = ("\n" + t).find("\n" + key + " ");
    EXPECT_NE(at, std::string::npos) << key << " not in " << p;
    if (at == std::string::npos) return 0;
    return std::stoull(t.substr(at + key.size() + 1));
  }

 private:
  bool v2_ = false;
  fs::path unified_;
  std::map<std::string, fs::path> dirs_;
};

// The same figures for a pod's cgroup: the parent of a container's.
class PodCgroup {
 public:
  PodCgroup(const ProcessCgroups& ctr, bool v2) : ctr_(ctr), v2_(v2) {}
  uint64_t CpuNs() const {
    return v2_ ? ProcessCgroups::Key(Parent("cpu") / "cpu.stat", "usage_usec") * 1000
               : ProcessCgroups::Number(Parent("cpuacct") / "cpuacct.usage");
  }
  uint64_t MemoryUsage() const {
    return ProcessCgroups::Number(Parent("memory") /
                                  (v2_ ? "memory.current" : "memory.usage_in_bytes"));
  }
  fs::path Parent(const std::string& ctrl) const { return ctr_.Dir(ctrl).parent_path(); }

 private:
  const ProcessCgroups& ctr_;
  bool v2_;
};

int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Connects to ip:port, sends `bytes` bytes and half-closes; returns when the peer closed.
Status SendBytes(const std::string& ip, int port, size_t bytes) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  timeval tv{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoStatus(errno, StrCat("connect ", ip, ":", port));
  }
  std::string chunk(64 << 10, 'x');
  for (size_t sent = 0; sent < bytes;) {
    ssize_t n = ::send(fd.get(), chunk.data(), std::min(chunk.size(), bytes - sent), MSG_NOSIGNAL);
    if (n <= 0) return ErrnoStatus(errno, "send");
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd.get(), SHUT_WR);
  char b[256];
  while (::recv(fd.get(), b, sizeof b, 0) > 0) {
  }
  return OkStatus();
}

// eth0's rx_bytes in a /proc/net/dev text.
uint64_t Eth0RxBytes(const std::string& netdev) {
  const size_t at = netdev.find("eth0:");
  EXPECT_NE(at, std::string::npos) << netdev;
  if (at == std::string::npos) return 0;
  return std::stoull(netdev.substr(at + 5));
}

// The shell's children's CPU time (utime + stime of reaped children, /proc/<pid>/stat
// fields 16 and 17) in a "stat:" log line, in clock ticks.
std::optional<uint64_t> ChildTicks(const std::string& log) {
  const size_t at = log.find("stdout F stat:");
  if (at == std::string::npos) return std::nullopt;
  std::string line = log.substr(at, log.find('\n', at) - at);
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream in(line.substr(paren + 2));
  std::vector<std::string> f;  // f[0] is field 3 (state)
  for (std::string w; in >> w;) f.push_back(w);
  if (f.size() < 15) return std::nullopt;
  return std::stoull(f[13]) + std::stoull(f[14]);  // fields 16 and 17
}

class StatsIT : public RuntimeServiceIT {
 protected:
  // A short sweep (writable layers are measured by it) and no sample reuse, so that each call
  // reads the cgroup files afresh and can be bracketed by direct reads.
  std::vector<std::string> DaemonArgs() override {
    std::vector<std::string> a = DefaultArgs();
    for (const char* s :
         {"--stats-collect-period-ms", "1000", "--stats-min-sample-interval-ms", "0"}) {
      a.emplace_back(s);
    }
    return a;
  }

  grpc::Status CtrStats(const std::string& id, cri::ContainerStats* out) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ContainerStatsRequest req;
    req.set_container_id(id);
    cri::ContainerStatsResponse resp;
    grpc::Status s = berthd_->runtime().ContainerStats(&ctx, req, &resp);
    *out = resp.stats();
    return s;
  }

  std::vector<cri::ContainerStats> ListCtrStats(const cri::ContainerStatsFilter& f = {}) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ListContainerStatsRequest req;
    *req.mutable_filter() = f;
    cri::ListContainerStatsResponse resp;
    grpc::Status s = berthd_->runtime().ListContainerStats(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << "ListContainerStats: " << Describe(s);
    return {resp.stats().begin(), resp.stats().end()};
  }

  std::map<std::string, cri::ContainerStats> CtrStatsById(const cri::ContainerStatsFilter& f = {}) {
    std::map<std::string, cri::ContainerStats> out;
    for (auto& s : ListCtrStats(f)) out[s.attributes().id()] = s;
    return out;
  }

  grpc::Status PodStats(const std::string& id, cri::PodSandboxStats* out) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::PodSandboxStatsRequest req;
    req.set_pod_sandbox_id(id);
    cri::PodSandboxStatsResponse resp;
    grpc::Status s = berthd_->runtime().PodSandboxStats(&ctx, req, &resp);
    *out = resp.stats();
    return s;
  }

  std::vector<cri::PodSandboxStats> ListPodStats(const cri::PodSandboxStatsFilter& f = {}) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ListPodSandboxStatsRequest req;
    *req.mutable_filter() = f;
    cri::ListPodSandboxStatsResponse resp;
    grpc::Status s = berthd_->runtime().ListPodSandboxStats(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << "ListPodSandboxStats: " << Describe(s);
    return {resp.stats().begin(), resp.stats().end()};
  }

  static std::vector<std::string> Ids(const std::vector<cri::ContainerStats>& v) {
    std::vector<std::string> out;
    for (const auto& s : v) out.push_back(s.attributes().id());
    std::sort(out.begin(), out.end());
    return out;
  }
};

constexpr uint64_t kMiB = 1 << 20;

// ---------------------------------------------------------------------------------------------
// One pod with a cgroup parent and a CNI network; a worker that fills a tmpfs, writes to its
// writable layer, burns CPU, forks processes and receives traffic; a spinner that keeps one
// core busy; a created and an exited container.

TEST_F(StatsIT, FiguresAgreeWithCgroupFilesAndTheWork) {
  BridgeNetwork net;
  ASSERT_NO_FATAL_FAILURE(net = SetUpBridgeNetwork("bridge"));
  const std::string top = StrCat("berthstats", RandomHex(3));
  RemoveCgroupsAfterTest(top);
  cri::PodSandboxConfig pod = PodConfig("stats", cri::POD, cri::CONTAINER);
  pod.mutable_linux()->set_cgroup_parent(StrCat("/", top, "/pod-stats"));
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  const std::string ip = PodStatusOf(pod_id)->network().ip();
  ASSERT_TRUE(ip.starts_with(net.prefix)) << ip;

  constexpr int kShmMiB = 32, kLayerMiB = 8, kSleepers = 5;
  const std::string script =
      StrCat("dd if=/dev/zero of=/layer.bin bs=1M count=", kLayerMiB, " 2>/dev/null; ",
             "dd if=/dev/zero of=/dev/shm/fill bs=1M count=", kShmMiB, " 2>/dev/null; ",
             "for i in $(seq ", kSleepers, "); do sleep 100000 & done; ",
             "timeout 2 yes > /dev/null; echo stat: $(cat /proc/$$/stat); echo ready; ",
             "nc -l -p 8080 > /dev/null; echo received; wait");
  cri::ContainerConfig worker_cfg = CtrConfig("worker", {"/bin/sh", "-c", script});
  (*worker_cfg.mutable_labels())["role"] = "worker";
  std::string worker, spinner, created, exited;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, worker_cfg, &worker));
  IT_ASSERT_GRPC_OK(StartCtr(worker));
  cri::ContainerConfig spin_cfg = CtrConfig("spinner", {"/bin/sh", "-c", "exec yes > /dev/null"});
  (*spin_cfg.mutable_labels())["role"] = "spinner";
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, spin_cfg, &spinner));
  IT_ASSERT_GRPC_OK(StartCtr(spinner));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("created", {"sleep", "1"}), &created));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("exited", {"true"}), &exited));
  IT_ASSERT_GRPC_OK(StartCtr(exited));
  WaitForState(exited, cri::CONTAINER_EXITED, std::chrono::seconds(10));

  const fs::path log_path = LogDir() / "stats" / "worker.log";
  const std::string log = WaitForLog(
      log_path, [](const std::string& l) { return LogHasRecord(l, "stdout", "ready"); },
      std::chrono::seconds(30));
  ASSERT_TRUE(LogHasRecord(log, "stdout", "ready")) << log;
  const std::optional<uint64_t> child_ticks = ChildTicks(log);
  ASSERT_TRUE(child_ticks.has_value()) << log;
  ASSERT_GE(*child_ticks, 10u) << "yes burnt less than 0.1 s of CPU in 2 s";
  const long tck = ::sysconf(_SC_CLK_TCK);

  const int worker_pid = CtrPid(worker), spinner_pid = CtrPid(spinner);
  ASSERT_GT(worker_pid, 0);
  ASSERT_GT(spinner_pid, 0);
  const ProcessCgroups wcg(worker_pid), scg(spinner_pid);
  ASSERT_TRUE(wcg.ok() && scg.ok());
  const bool v2 = Exists("/sys/fs/cgroup/cgroup.controllers");
  ASSERT_THAT(wcg.Dir("memory").string(), HasSubstr(StrCat("/", top, "/pod-stats/", worker)));

  // Let rates settle on windows after the worker's burst.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  // These samples are the bases of the rates checked below (the sweep samples only what no call
  // sampled for two periods).
  cri::ContainerStats first, worker_first;
  IT_ASSERT_GRPC_OK(CtrStats(spinner, &first));
  IT_ASSERT_GRPC_OK(CtrStats(worker, &worker_first));
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));

  // --- the worker, bracketed by direct reads of its cgroup ---
  const uint64_t cpu_before = wcg.CpuNs(), faults_before = wcg.PageFaults();
  const int64_t t_before = WallNs();
  cri::ContainerStats w;
  IT_ASSERT_GRPC_OK(CtrStats(worker, &w));
  const int64_t t_after = WallNs();
  const uint64_t cpu_after = wcg.CpuNs(), faults_after = wcg.PageFaults();
  const uint64_t usage = wcg.MemoryUsage(), inactive = wcg.InactiveFile(), rss = wcg.Rss();

  EXPECT_EQ(w.attributes().id(), worker);
  EXPECT_EQ(w.attributes().metadata().name(), "worker");
  EXPECT_EQ(w.attributes().labels().at("role"), "worker");
  EXPECT_EQ(w.attributes().annotations().at("berth.io/ctr-note"), "annotation of worker");
  ASSERT_TRUE(w.has_cpu() && w.has_memory()) << w.DebugString();
  EXPECT_GE(w.cpu().timestamp(), t_before);
  EXPECT_LE(w.cpu().timestamp(), t_after);
  EXPECT_GE(w.cpu().usage_core_nano_seconds().value(), cpu_before);
  EXPECT_LE(w.cpu().usage_core_nano_seconds().value(), cpu_after);
  // At least the CPU its `yes` used (counted in ticks by the kernel for the shell).
  EXPECT_GE(w.cpu().usage_core_nano_seconds().value(),
            *child_ticks * (1'000'000'000 / tck) * 8 / 10);
  EXPECT_LT(w.cpu().usage_nano_cores().value(), 100'000'000u) << "the worker idles now";
  EXPECT_GE(w.memory().page_faults().value(), faults_before);
  EXPECT_LE(w.memory().page_faults().value(), faults_after);
  // Memory moves a little while we read: compare within 2 MiB.
  const auto near = [](uint64_t a, uint64_t b) { return (a > b ? a - b : b - a) <= 2 * kMiB; };
  EXPECT_PRED2(near, w.memory().usage_bytes().value(), usage);
  EXPECT_PRED2(near, w.memory().working_set_bytes().value(), usage - std::min(usage, inactive));
  EXPECT_PRED2(near, w.memory().rss_bytes().value(), rss);
  // The tmpfs pages are charged to the worker and are not inactive file cache.
  EXPECT_GE(w.memory().working_set_bytes().value(), kShmMiB * kMiB);
  EXPECT_LT(w.memory().working_set_bytes().value(), (kShmMiB + 48) * kMiB);
  EXPECT_GE(w.memory().usage_bytes().value(), w.memory().working_set_bytes().value());
  EXPECT_EQ(w.memory().available_bytes().value(), 0u) << "no limit: nothing to be available";
  // The writable layer holds the file the worker wrote.
  EXPECT_EQ(w.writable_layer().fs_id().mountpoint(), (berthd_->root() / "containers").string());
  EXPECT_GE(w.writable_layer().used_bytes().value(), kLayerMiB * kMiB);
  EXPECT_LT(w.writable_layer().used_bytes().value(), kLayerMiB * kMiB + kMiB);
  EXPECT_GE(w.writable_layer().inodes_used().value(), 2u);
  EXPECT_GT(w.writable_layer().timestamp(), 0);

  // --- the spinner keeps about one core busy ---
  cri::ContainerStats s;
  IT_ASSERT_GRPC_OK(CtrStats(spinner, &s));
  EXPECT_GT(s.cpu().usage_nano_cores().value(), 100'000'000u);
  EXPECT_LT(s.cpu().usage_nano_cores().value(), 2'100'000'000u);
  EXPECT_GT(s.cpu().usage_core_nano_seconds().value(),
            first.cpu().usage_core_nano_seconds().value());
  EXPECT_GT(s.cpu().timestamp(), first.cpu().timestamp());

  // --- the writable layer grows: the sweep sees it within a few periods ---
  EXPECT_EQ(ExecOut(worker, {"dd", "if=/dev/zero", "of=/more.bin", "bs=1M", "count=4"}), "");
  uint64_t layer = 0;
  for (auto deadline = Clock::now() + std::chrono::seconds(10); Clock::now() < deadline;) {
    IT_ASSERT_GRPC_OK(CtrStats(worker, &w));
    layer = w.writable_layer().used_bytes().value();
    if (layer >= (kLayerMiB + 4) * kMiB) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_GE(layer, (kLayerMiB + 4) * kMiB);

  // --- the list: every container of the pod, in every state ---
  std::map<std::string, cri::ContainerStats> all = CtrStatsById();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_TRUE(all[worker].has_cpu() && all[spinner].has_memory());
  for (const std::string& id : {created, exited}) {
    EXPECT_FALSE(all[id].has_cpu()) << "no CPU figures for a container that does not run";
    EXPECT_FALSE(all[id].has_memory());
    EXPECT_TRUE(all[id].has_writable_layer());
    EXPECT_EQ(all[id].attributes().id(), id);
  }
  {
    cri::ContainerStats one;
    IT_EXPECT_GRPC_OK(CtrStats(exited, &one));
    EXPECT_EQ(one.attributes().id(), exited);
    EXPECT_FALSE(one.has_cpu());
  }

  // --- traffic into the pod, counted on its eth0 ---
  const uint64_t rx_before = Eth0RxBytes(ExecOut(spinner, {"cat", "/proc/net/dev"}));
  constexpr size_t kTraffic = 2 << 20;
  IT_ASSERT_OK(SendBytes(ip, 8080, kTraffic));
  WaitForLog(
      log_path, [](const std::string& l) { return LogHasRecord(l, "stdout", "received"); },
      std::chrono::seconds(10));
  cri::PodSandboxStats p;
  IT_ASSERT_GRPC_OK(PodStats(pod_id, &p));
  const uint64_t rx_after = Eth0RxBytes(ExecOut(spinner, {"cat", "/proc/net/dev"}));
  ASSERT_TRUE(p.linux().has_network()) << p.DebugString();
  EXPECT_EQ(p.linux().network().default_interface().name(), "eth0");
  ASSERT_EQ(p.linux().network().interfaces_size(), 1);
  EXPECT_EQ(p.linux().network().interfaces(0).name(), "eth0");
  const uint64_t rx = p.linux().network().default_interface().rx_bytes().value();
  EXPECT_GE(rx, rx_before + kTraffic);
  EXPECT_LE(rx, rx_after);
  EXPECT_GT(p.linux().network().default_interface().tx_bytes().value(), 0u);

  // --- the pod: its own cgroup, bracketed; its processes; its containers ---
  const PodCgroup pcg(wcg, v2);
  const uint64_t pod_cpu_before = pcg.CpuNs();
  IT_ASSERT_GRPC_OK(PodStats(pod_id, &p));
  const uint64_t pod_cpu_after = pcg.CpuNs();
  EXPECT_EQ(p.attributes().id(), pod_id);
  EXPECT_EQ(p.attributes().metadata().name(), "stats");
  EXPECT_EQ(p.attributes().metadata().uid(), pod.metadata().uid());
  EXPECT_EQ(p.attributes().labels().at("app"), "stats");
  EXPECT_GE(p.linux().cpu().usage_core_nano_seconds().value(), pod_cpu_before);
  EXPECT_LE(p.linux().cpu().usage_core_nano_seconds().value(), pod_cpu_after);
  EXPECT_GT(p.linux().cpu().usage_nano_cores().value(), 100'000'000u) << "the spinner runs in it";
  EXPECT_PRED2(near, p.linux().memory().usage_bytes().value(), pcg.MemoryUsage());
  EXPECT_GE(p.linux().memory().working_set_bytes().value(), kShmMiB * kMiB);
  EXPECT_EQ(p.linux().containers_size(), 4);
  // Processes: the worker's shell and sleepers (nc is done), the spinner's yes. An exec'd
  // process may linger a moment after its ExecSync returned: count when the cgroups are still.
  uint64_t procs = 0, direct = 0;
  for (int i = 0; i < 20; ++i) {
    const uint64_t before = wcg.Processes() + scg.Processes();
    IT_ASSERT_GRPC_OK(PodStats(pod_id, &p));
    procs = p.linux().process().process_count().value();
    direct = wcg.Processes() + scg.Processes();
    if (before == direct && procs == direct) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(procs, direct);
  EXPECT_EQ(procs, kSleepers + 1u + 1u);

  // --- metrics: the same figures under cAdvisor's names ---
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ListMetricDescriptorsResponse descs;
    IT_ASSERT_GRPC_OK(berthd_->runtime().ListMetricDescriptors(
        &ctx, cri::ListMetricDescriptorsRequest(), &descs));
    std::map<std::string, int> keys;  // name -> label count
    for (const auto& d : descs.descriptors()) keys[d.name()] = d.label_keys_size();
    grpc::ClientContext ctx2;
    SetDeadline(ctx2);
    cri::ListPodSandboxMetricsResponse metrics;
    IT_ASSERT_GRPC_OK(berthd_->runtime().ListPodSandboxMetrics(
        &ctx2, cri::ListPodSandboxMetricsRequest(), &metrics));
    ASSERT_EQ(metrics.pod_metrics_size(), 1);
    const cri::PodSandboxMetrics& pm = metrics.pod_metrics(0);
    EXPECT_EQ(pm.pod_sandbox_id(), pod_id);
    std::map<std::string, uint64_t> pod_level;
    for (const auto& m : pm.metrics()) {
      ASSERT_TRUE(keys.count(m.name())) << m.name();
      EXPECT_EQ(m.label_values_size(), keys[m.name()]) << m.name();
      pod_level[m.name()] = m.value().value();
    }
    EXPECT_GE(pod_level["container_network_receive_bytes_total"], rx_before + kTraffic);
    ASSERT_EQ(pm.container_metrics_size(), 2) << "running containers only";
    for (const auto& cm : pm.container_metrics()) {
      std::map<std::string, uint64_t> v;
      for (const auto& m : cm.metrics()) {
        ASSERT_TRUE(keys.count(m.name())) << m.name();
        EXPECT_EQ(m.label_values_size(), keys[m.name()]) << m.name();
        if (m.name() != "container_memory_failures_total") v[m.name()] = m.value().value();
      }
      if (cm.container_id() != worker) continue;
      EXPECT_GE(v["container_memory_working_set_bytes"], kShmMiB * kMiB);
      EXPECT_EQ(v["container_processes"], kSleepers + 1u);
      EXPECT_EQ(v["container_oom_events_total"], 0u);
      EXPECT_GE(v["container_fs_usage_bytes"], (kLayerMiB + 4) * kMiB);
      EXPECT_EQ(v["container_start_time_seconds"],
                static_cast<uint64_t>(CtrStatusOf(worker)->started_at() / 1'000'000'000));
    }
  }

  // --- a removed container disappears ---
  IT_ASSERT_GRPC_OK(RemoveCtr(exited));
  EXPECT_EQ(CtrStatsById().count(exited), 0u);
  cri::ContainerStats gone;
  EXPECT_EQ(CtrStats(exited, &gone).error_code(), grpc::StatusCode::NOT_FOUND);

  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListCtrStats(), IsEmpty());
  EXPECT_THAT(ListPodStats(), IsEmpty());
  ExpectNoLeaks("after removing the pod");
}

// ---------------------------------------------------------------------------------------------
// A pod without a cgroup parent has no cgroup of its own: its figures are its containers'.

TEST_F(StatsIT, PodWithoutCgroupParentSumsItsContainers) {
  cri::PodSandboxConfig pod = PodConfig("flat", cri::NODE, cri::CONTAINER);
  std::string pod_id, a, b;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("a", {"sleep", "1000"}), &a));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("b", {"sleep", "1000"}), &b));
  IT_ASSERT_GRPC_OK(StartCtr(a));
  IT_ASSERT_GRPC_OK(StartCtr(b));

  cri::PodSandboxStats p;
  IT_ASSERT_GRPC_OK(PodStats(pod_id, &p));
  ASSERT_EQ(p.linux().containers_size(), 2);
  uint64_t cpu = 0, mem = 0, ws = 0;
  for (const auto& c : p.linux().containers()) {
    ASSERT_TRUE(c.has_cpu() && c.has_memory()) << c.DebugString();
    cpu += c.cpu().usage_core_nano_seconds().value();
    mem += c.memory().usage_bytes().value();
    ws += c.memory().working_set_bytes().value();
    EXPECT_GT(c.memory().usage_bytes().value(), 0u);
  }
  EXPECT_EQ(p.linux().cpu().usage_core_nano_seconds().value(), cpu);
  EXPECT_EQ(p.linux().memory().usage_bytes().value(), mem);
  EXPECT_EQ(p.linux().memory().working_set_bytes().value(), ws);
  EXPECT_EQ(p.linux().process().process_count().value(), 2u);
  EXPECT_FALSE(p.linux().has_network()) << "host network: no pod interfaces";

  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after removing the pod");
}

// ---------------------------------------------------------------------------------------------
// Filters, pod states and bad requests.

TEST_F(StatsIT, FiltersStatesAndErrors) {
  cri::PodSandboxConfig pod1 = PodConfig("one", cri::NODE, cri::CONTAINER);
  cri::PodSandboxConfig pod2 = PodConfig("two", cri::NODE, cri::CONTAINER);
  std::string p1, p2, c1, c2, c3;
  IT_ASSERT_GRPC_OK(RunPod(pod1, &p1));
  IT_ASSERT_GRPC_OK(RunPod(pod2, &p2));
  cri::ContainerConfig cfg1 = CtrConfig("c1", {"sleep", "1000"});
  (*cfg1.mutable_labels())["tier"] = "front";
  IT_ASSERT_GRPC_OK(CreateCtr(p1, pod1, cfg1, &c1));
  IT_ASSERT_GRPC_OK(CreateCtr(p1, pod1, CtrConfig("c2", {"sleep", "1000"}), &c2));
  IT_ASSERT_GRPC_OK(CreateCtr(p2, pod2, CtrConfig("c3", {"sleep", "1000"}), &c3));
  for (const std::string& id : {c1, c2, c3}) IT_ASSERT_GRPC_OK(StartCtr(id));

  cri::ContainerStatsFilter f;
  f.set_id(c1.substr(0, 12));  // a prefix, like crictl's truncated ids
  EXPECT_THAT(Ids(ListCtrStats(f)), ::testing::ElementsAre(c1));
  f.Clear();
  f.set_pod_sandbox_id(p1);
  std::vector<std::string> in_p1 = {c1, c2};
  std::sort(in_p1.begin(), in_p1.end());
  EXPECT_EQ(Ids(ListCtrStats(f)), in_p1);
  f.Clear();
  (*f.mutable_label_selector())["tier"] = "front";
  EXPECT_THAT(Ids(ListCtrStats(f)), ::testing::ElementsAre(c1));
  (*f.mutable_label_selector())["tier"] = "back";
  EXPECT_THAT(ListCtrStats(f), IsEmpty());
  f.Clear();
  f.set_id(c3);
  f.set_pod_sandbox_id(p1);
  EXPECT_THAT(ListCtrStats(f), IsEmpty());

  cri::PodSandboxStatsFilter pf;
  pf.set_id(p2);
  std::vector<cri::PodSandboxStats> two = ListPodStats(pf);
  ASSERT_EQ(two.size(), 1u);
  EXPECT_EQ(two[0].attributes().id(), p2);
  ASSERT_EQ(two[0].linux().containers_size(), 1);
  EXPECT_EQ(two[0].linux().containers(0).attributes().id(), c3);
  pf.Clear();
  (*pf.mutable_label_selector())["app"] = "one";
  std::vector<cri::PodSandboxStats> one = ListPodStats(pf);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].attributes().id(), p1);
  EXPECT_EQ(ListPodStats().size(), 2u);

  // A stopped pod has no figures: left out of the list, refused alone.
  IT_ASSERT_GRPC_OK(StopPod(p2));
  std::vector<cri::PodSandboxStats> ready = ListPodStats();
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].attributes().id(), p1);
  cri::PodSandboxStats ps;
  grpc::Status st = PodStats(p2, &ps);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr(p2));

  cri::ContainerStats cs;
  EXPECT_EQ(CtrStats("", &cs).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  st = CtrStats("no-such-container", &cs);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  EXPECT_EQ(PodStats("", &ps).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(PodStats("no-such-pod", &ps).error_code(), grpc::StatusCode::NOT_FOUND);

  IT_ASSERT_GRPC_OK(RemovePod(p1));
  IT_ASSERT_GRPC_OK(RemovePod(p2));
  ExpectNoLeaks("after removing the pods");
}

}  // namespace
}  // namespace berth::testing
