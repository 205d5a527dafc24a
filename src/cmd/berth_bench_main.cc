// berth-bench: measures a CRI endpoint (Berth, containerd, CRI-O alike).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <vector>

#include "bench/lifecycle_bench.h"
#include "bench/pull_bench.h"
#include "bench/startup_bench.h"

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
  berth::bench::StartupBenchOptions st;
  std::string after = "kill";
  std::string keep_network = "host";
  auto* st_cmd = app.add_subcommand(
      "startup",
      "time how soon a daemon answers Version (and reports RuntimeReady) after being killed or "
      "stopped: berth-bench startup -r ENDPOINT [options] -- DAEMON ARGS...");
  st_cmd->add_option("-r,--endpoint", st.endpoint, "the daemon's CRI socket, unix:///path")
      ->required();
  st_cmd->add_option("-n,--runs", st.runs, "restarts to time (default 5)");
  st_cmd->add_option("--after", after, "kill (SIGKILL, a crash) or stop (SIGTERM, an upgrade)")
      ->check(CLI::IsMember({"kill", "stop"}));
  st_cmd->add_option("--log", st.log_file, "file for the daemon's output")->required();
  st_cmd->add_option("--keep-pods", st.keep_pods,
                     "running pods (one container each) kept across the restarts (default 0)");
  st_cmd->add_option("--image", st.pods.image, "image of the kept pods' containers (pulled)");
  st_cmd->add_option("--pods-network", keep_network, "cni or host (default host)")
      ->check(CLI::IsMember({"cni", "host"}));
  st_cmd->add_option("--label", label, "name printed with the results");
  st_cmd->add_option("command", st.command, "the daemon's command line (after --)")->required();
  CLI11_PARSE(app, argc, argv);

  if (pull_cmd->parsed()) return RunPull(pull, label);
  if (st_cmd->parsed()) {
    st.kill = after == "kill";
    st.pods.host_network = keep_network == "host";
    st.pods.name_prefix = fmt::format("bench-{}", label);
    return RunStartup(st, label);
  }
  lc.host_network = network == "host";
  return RunLifecycle(lc, label);
}
