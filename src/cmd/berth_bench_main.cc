// berth-bench: measures a CRI endpoint (Berth, containerd, CRI-O alike).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <vector>

#include "bench/calls_bench.h"
#include "bench/exec_bench.h"
#include "bench/lifecycle_bench.h"
#include "bench/pull_bench.h"
#include "bench/startup_bench.h"
#include "bench/stats_bench.h"
#include "bench/stream_bench.h"

namespace {

int RunPull(const berth::bench::PullBenchOptions& pull, const std::string& label) {
  auto r = berth::bench::RunPullBench(pull);
  if (!r.ok()) {
    std::cerr << "berth-bench: " << r.status() << "\n";
    return 1;
  }
  std::string runs;
  for (double s : r->seconds) runs += fmt::format("{}{:.3f}", runs.empty() ? "" : ",", s);
  double mb = static_cast<double>(r->image_bytes) / 1e6;
  std::cout << fmt::format(
      "{} pull image={} bytes={} runs={} median_s={:.3f} median_MBps={:.1f} all_s=[{}]\n", label,
      pull.image, r->image_bytes, r->seconds.size(), r->median_seconds,
      r->median_seconds > 0 ? mb / r->median_seconds : 0.0, runs);
  return 0;
}

int RunCalls(const berth::bench::CallsBenchOptions& options, const std::string& label) {
  auto costs = berth::bench::RunCallsBench(options);
  if (!costs.ok()) {
    std::cerr << "berth-bench: calls: " << costs.status() << "\n";
    return 1;
  }
  for (const auto& c : *costs) {
    std::string all;
    for (double ms : c.ms) all += fmt::format("{}{:.3f}", all.empty() ? "" : ",", ms);
    std::vector<double> sorted = c.ms;
    std::sort(sorted.begin(), sorted.end());
    const double p90 = sorted.empty() ? 0 : sorted[sorted.size() * 9 / 10];
    std::cout << fmt::format(
        "{} calls rpc={} objects={} runs={} median_ms={:.3f} p90_ms={:.3f} cpu_ms_per_call={:.3f} "
        "items={} bytes={} all_ms=[{}]\n",
        label, c.rpc, c.objects, c.ms.size(), berth::bench::Median(c.ms), p90,
        c.ms.empty() || options.daemon_pid == 0 ? 0.0 : c.daemon_cpu_ms / c.ms.size(), c.items,
        c.bytes, all);
  }
  return 0;
}

int RunLifecycle(const berth::bench::LifecycleBenchOptions& options, const std::string& label) {
  auto phases = berth::bench::RunLifecycleBench(options);
  if (!phases.ok()) {
    std::cerr << "berth-bench: lifecycle: " << phases.status() << "\n";
    return 1;
  }
  for (const auto& p : *phases) {
    std::string all;
    for (double ms : p.ms) all += fmt::format("{}{:.1f}", all.empty() ? "" : ",", ms);
    auto [min, max] = std::minmax_element(p.ms.begin(), p.ms.end());
    std::cout << fmt::format(
        "{} lifecycle phase={} runs={} median_ms={:.1f} min_ms={:.1f} max_ms={:.1f} all_ms=[{}]\n",
        label, p.phase, p.ms.size(), berth::bench::Median(p.ms), p.ms.empty() ? 0 : *min,
        p.ms.empty() ? 0 : *max, all);
  }
  if (options.memory_pods <= 0) return 0;
  auto mem = berth::bench::RunMemoryBench(options);
  if (!mem.ok()) {
    std::cerr << "berth-bench: memory: " << mem.status() << "\n";
    return 1;
  }
  std::cout << fmt::format(
      "{} memory pods={} first_pod_ip={} daemon_rss_kb={} helper={} helpers={} helpers_rss_kb={} "
      "helper_avg_kb={}\n",
      label, mem->pods, mem->first_pod_ip.empty() ? "-" : mem->first_pod_ip, mem->daemon_rss_kb,
      options.helper_name.empty() ? "-" : options.helper_name, mem->helpers, mem->helpers_rss_kb,
      mem->helpers ? mem->helpers_rss_kb / mem->helpers : 0);
  return 0;
}

int RunStartup(const berth::bench::StartupBenchOptions& options, const std::string& label) {
  auto runs = berth::bench::RunStartupBench(options);
  if (!runs.ok()) {
    std::cerr << "berth-bench: startup: " << runs.status() << "\n";
    return 1;
  }
  std::vector<double> answer, ready;
  for (const auto& r : *runs) {
    answer.push_back(r.first_answer_ms);
    ready.push_back(r.runtime_ready_ms);
  }
  auto all = [](const std::vector<double>& v) {
    std::string s;
    for (double ms : v) s += fmt::format("{}{:.1f}", s.empty() ? "" : ",", ms);
    return s;
  };
  std::cout << fmt::format(
      "{} startup after={} runs={} kept_pods={} first_answer_median_ms={:.1f} "
      "runtime_ready_median_ms={:.1f} first_answer_ms=[{}] runtime_ready_ms=[{}]\n",
      label, options.kill ? "SIGKILL" : "SIGTERM", runs->size(), options.keep_pods,
      berth::bench::Median(answer), berth::bench::Median(ready), all(answer), all(ready));
  return 0;
}

int RunStream(const berth::bench::StreamBenchOptions& options, const std::string& label) {
  auto r = berth::bench::RunStreamBench(options);
  if (!r.ok()) {
    std::cerr << "berth-bench: stream: " << r.status() << "\n";
    return 1;
  }
  auto list = [](const std::vector<double>& v, const char* fmt_one) {
    std::string all;
    for (double x : v) all += fmt::format(fmt::runtime(fmt_one), all.empty() ? "" : ",", x);
    return all;
  };
  std::cout << fmt::format("{} stream phase=exec_echo runs={} median_ms={:.1f} all_ms=[{}]\n",
                           label, r->exec_ms.size(), berth::bench::Median(r->exec_ms),
                           list(r->exec_ms, "{}{:.1f}"));
  double mb = static_cast<double>(r->transfer_bytes) / (1 << 20);
  double median_s = berth::bench::Median(r->transfer_seconds);
  std::cout << fmt::format(
      "{} stream phase=port_forward bytes={} runs={} median_s={:.3f} median_MiBps={:.1f} "
      "all_s=[{}]\n",
      label, r->transfer_bytes, r->transfer_seconds.size(), median_s,
      median_s > 0 ? mb / median_s : 0.0, list(r->transfer_seconds, "{}{:.3f}"));
  return 0;
}

int RunExec(const berth::bench::ExecBenchOptions& options, const std::string& label) {
  auto r = berth::bench::RunExecBench(options);
  if (!r.ok()) {
    std::cerr << "berth-bench: exec: " << r.status() << "\n";
    return 1;
  }
  std::string all;
  for (double x : r->ms) all += fmt::format("{}{:.2f}", all.empty() ? "" : ",", x);
  const double n = r->ms.empty() ? 1 : static_cast<double>(r->ms.size());
  std::cout << fmt::format(
      "{} exec phase=exec_sync runs={} median_ms={:.2f} cpu_ms_per_call={:.2f} "
      "daemon_cpu_ms_per_call={:.2f} helpers_cpu_ms_per_call={:.2f} all_ms=[{}]\n",
      label, r->ms.size(), berth::bench::Median(r->ms), (r->daemon_cpu_ms + r->helpers_cpu_ms) / n,
      r->daemon_cpu_ms / n, r->helpers_cpu_ms / n, all);
  return 0;
}

int RunStats(const berth::bench::StatsBenchOptions& options, const std::string& label) {
  auto r = berth::bench::RunStatsBench(options);
  if (!r.ok()) {
    std::cerr << "berth-bench: stats: " << r.status() << "\n";
    return 1;
  }
  for (const auto& c : r->rpcs) {
    std::vector<double> sorted = c.ms;
    std::sort(sorted.begin(), sorted.end());
    const double p90 =
        sorted.empty() ? 0
                       : sorted[(sorted.size() * 9) / 10 < sorted.size() ? (sorted.size() * 9) / 10
                                                                         : sorted.size() - 1];
    const double n = c.ms.empty() ? 1 : static_cast<double>(c.ms.size());
    std::cout << fmt::format(
        "{} stats rpc={} containers={} items={} items_with_cpu={} calls={} median_ms={:.2f} "
        "p90_ms={:.2f} daemon_cpu_ms_per_call={:.2f} helpers_cpu_ms_per_call={:.2f}\n",
        label, c.rpc, r->containers, c.items, c.items_with_cpu, c.ms.size(),
        berth::bench::Median(c.ms), p90, c.daemon_cpu_ms / n, c.helpers_cpu_ms / n);
  }
  if (r->poll_relists > 0) {
    std::cout << fmt::format(
        "{} stats poll seconds={:.1f} relists={} stats_rounds={} daemon_cpu_ms={:.0f} "
        "helpers_cpu_ms={:.0f} daemon_cpu_percent={:.3f}\n",
        label, r->poll_seconds, r->poll_relists, r->poll_stats_rounds, r->poll_daemon_cpu_ms,
        r->poll_helpers_cpu_ms, r->poll_daemon_cpu_ms / (r->poll_seconds * 10.0));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"berth-bench: measure any CRI endpoint"};
  app.require_subcommand(1);
  std::string label = "runtime";

  berth::bench::PullBenchOptions pull;
  auto* pull_cmd = app.add_subcommand("pull", "time RemoveImage+PullImage cycles of one image");
  pull_cmd->add_option("-r,--endpoint", pull.endpoint, "CRI endpoint, unix:///path")->required();
  pull_cmd->add_option("--image", pull.image, "image reference to pull")->required();
  pull_cmd->add_option("-n,--runs", pull.runs, "number of pulls (default 5)");
  pull_cmd->add_option("--label", label, "name printed with the result");

  berth::bench::LifecycleBenchOptions lc;
  std::string network = "cni";
  auto* lc_cmd = app.add_subcommand(
      "lifecycle", "time pod and container lifecycles, then the memory of running pods");
  lc_cmd->add_option("-r,--endpoint", lc.endpoint, "CRI endpoint, unix:///path")->required();
  lc_cmd->add_option("--image", lc.image, "image of the containers (already pulled)")->required();
  lc_cmd->add_option("-n,--iterations", lc.iterations, "lifecycle iterations (default 10)");
  lc_cmd->add_option("--pods-network", network, "cni (pod network namespace) or host")
      ->check(CLI::IsMember({"cni", "host"}));
  lc_cmd->add_option("--log-dir", lc.log_dir,
                     "directory for pod log directories (default: no logs)");
  lc_cmd->add_option("--memory-pods", lc.memory_pods,
                     "running pods for the memory measurement, 0 to skip (default 10)");
  lc_cmd->add_option("--daemon-pid", lc.daemon_pid, "pid of the runtime daemon, for its RSS");
  lc_cmd->add_option("--helper-name", lc.helper_name,
                     "program name of the per-container helper (berth-monitor, "
                     "containerd-shim-runc-v2), for their RSS");
  lc_cmd->add_option("--name-prefix", lc.name_prefix, "prefix of pod names (default bench)");
  lc_cmd->add_option("--label", label, "name printed with the results");
  berth::bench::StartupBenchOptions su;
  std::string after = "kill";
  std::string keep_network = "host";
  auto* su_cmd = app.add_subcommand(
      "startup",
      "time how soon a daemon answers Version (and reports RuntimeReady) after being killed or "
      "stopped: berth-bench startup -r ENDPOINT [options] -- DAEMON ARGS...");
  su_cmd->add_option("-r,--endpoint", su.endpoint, "the daemon's CRI socket, unix:///path")
      ->required();
  su_cmd->add_option("-n,--runs", su.runs, "restarts to time (default 5)");
  su_cmd->add_option("--after", after, "kill (SIGKILL, a crash) or stop (SIGTERM, an upgrade)")
      ->check(CLI::IsMember({"kill", "stop"}));
  su_cmd->add_option("--log", su.log_file, "file for the daemon's output")->required();
  su_cmd->add_option("--keep-pods", su.keep_pods,
                     "running pods (one container each) kept across the restarts (default 0)");
  su_cmd->add_option("--image", su.pods.image, "image of the kept pods' containers (pulled)");
  su_cmd->add_option("--pods-network", keep_network, "cni or host (default host)")
      ->check(CLI::IsMember({"cni", "host"}));
  su_cmd->add_option("--label", label, "name printed with the results");
  su_cmd->add_option("command", su.command, "the daemon's command line (after --)")->required();
  berth::bench::StreamBenchOptions st;
  std::string st_network = "cni";
  int transfer_mib = 100;
  auto* st_cmd = app.add_subcommand(
      "stream", "exec round trip (`echo hi` over SPDY) and port-forward throughput (HTTP GET)");
  st_cmd->add_option("-r,--endpoint", st.endpoint, "CRI endpoint, unix:///path")->required();
  st_cmd->add_option("--image", st.image, "busybox image of the container (already pulled)")
      ->required();
  st_cmd->add_option("-n,--exec-iterations", st.exec_iterations, "execs timed (default 20)");
  st_cmd->add_option("--transfers", st.transfer_runs, "port-forward transfers timed (default 3)");
  st_cmd->add_option("--transfer-mib", transfer_mib, "size of each transfer in MiB (default 100)");
  st_cmd->add_option("--pods-network", st_network, "cni (pod network namespace) or host")
      ->check(CLI::IsMember({"cni", "host"}));
  st_cmd->add_option("--name-prefix", st.name_prefix, "prefix of the pod name (default bench)");

  berth::bench::StatsBenchOptions sa;
  std::string sa_network = "cni";
  auto* sa_cmd = app.add_subcommand(
      "stats",
      "cost of ListContainerStats and ListPodSandboxStats with many running containers, and the "
      "daemon's CPU over the kubelet's polling pattern");
  sa_cmd->add_option("-r,--endpoint", sa.endpoint, "CRI endpoint, unix:///path")->required();
  sa_cmd->add_option("--image", sa.image, "image of the containers (already pulled)")->required();
  sa_cmd->add_option("--containers", sa.containers,
                     "running containers, one per pod (default 100)");
  sa_cmd->add_option("--pods-network", sa_network, "cni (pod network namespace) or host")
      ->check(CLI::IsMember({"cni", "host"}));
  sa_cmd->add_option("--log-dir", sa.log_dir, "directory for pod log directories (default: none)");
  sa_cmd
      ->add_option("--cgroup-root", sa.cgroup_root,
                   "cgroup parent of the pods' cgroups, removed afterwards")
      ->required();
  sa_cmd->add_option("--daemon-pid", sa.daemon_pid, "pid of the runtime daemon")->required();
  sa_cmd->add_option("--helper-name", sa.helper_name,
                     "program name of per-container helpers whose CPU also counts");
  sa_cmd->add_option("--calls", sa.calls, "back-to-back calls per RPC (default 50)");
  sa_cmd->add_option("--poll-seconds", sa.poll_seconds,
                     "duration of the kubelet polling pattern, 0 to skip (default 60)");
  sa_cmd->add_option("--name-prefix", sa.name_prefix, "prefix of pod names (default bstats)");
  st_cmd->add_option("--label", label, "name printed with the results");
  berth::bench::ExecBenchOptions ex;
  auto* ex_cmd =
      app.add_subcommand("exec", "ExecSync `echo hi`: latency and the runtime's CPU time per call");
  ex_cmd->add_option("-r,--endpoint", ex.endpoint, "CRI endpoint, unix:///path")->required();
  ex_cmd->add_option("--image", ex.image, "busybox image (already pulled)")->required();
  ex_cmd->add_option("-n,--iterations", ex.iterations, "execs timed (default 100)");
  ex_cmd->add_option("--daemon-pid", ex.daemon_pid, "pid of the runtime daemon")->required();
  ex_cmd->add_option("--helper-name", ex.helper_name,
                     "program name of the per-pod helper (shim) whose CPU also counts");
  ex_cmd->add_option("--name-prefix", ex.name_prefix, "prefix of the pod name (default bexec)");
  ex_cmd->add_option("--label", label, "name printed with the results");
  sa_cmd->add_option("--label", label, "name printed with the results");
  berth::bench::CallsBenchOptions ca;
  auto* ca_cmd = app.add_subcommand(
      "calls",
      "latency and daemon CPU of single CRI calls: the container lifecycle call by call, and "
      "status and list calls with many pods and containers present");
  ca_cmd->add_option("-r,--endpoint", ca.endpoint, "CRI endpoint, unix:///path")->required();
  ca_cmd->add_option("--image", ca.image, "busybox image (already pulled)")->required();
  ca_cmd->add_option("-n,--iterations", ca.iterations, "container lifecycles (default 20)");
  ca_cmd->add_option("--objects", ca.objects,
                     "pod and container counts for the status and list calls (default 100 1000)");
  ca_cmd->add_option("--calls", ca.calls, "back-to-back calls per RPC (default 200)");
  ca_cmd->add_option("--daemon-pid", ca.daemon_pid, "pid of the runtime daemon, for its CPU");
  ca_cmd->add_option("--name-prefix", ca.name_prefix, "prefix of pod names (default bcalls)");
  ca_cmd->add_flag("--keep-objects", ca.keep_objects,
                   "leave the pods and containers made for the status and list calls");
  ca_cmd->add_flag("--existing-objects", ca.existing_objects,
                   "make nothing: time the status and list calls against the pods and containers "
                   "the endpoint holds");
  ca_cmd->add_option("--label", label, "name printed with the results");
  CLI11_PARSE(app, argc, argv);

  if (ca_cmd->parsed()) return RunCalls(ca, label);

  if (pull_cmd->parsed()) return RunPull(pull, label);
  if (ex_cmd->parsed()) return RunExec(ex, label);
  if (su_cmd->parsed()) {
    su.kill = after == "kill";
    su.pods.host_network = keep_network == "host";
    su.pods.name_prefix = fmt::format("bench-{}", label);
    return RunStartup(su, label);
  }
  if (st_cmd->parsed()) {
    st.host_network = st_network == "host";
    st.transfer_bytes = static_cast<uint64_t>(transfer_mib) << 20;
    return RunStream(st, label);
  }
  if (sa_cmd->parsed()) {
    sa.host_network = sa_network == "host";
    return RunStats(sa, label);
  }
  lc.host_network = network == "host";
  return RunLifecycle(lc, label);
}
