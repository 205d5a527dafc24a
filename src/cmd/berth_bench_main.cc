// berth-bench: measures a CRI endpoint (Berth, containerd, CRI-O alike).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>

#include "bench/pull_bench.h"

int main(int argc, char** argv) {
  CLI::App app{"berth-bench: measure any CRI endpoint"};
  app.require_subcommand(1);
  berth::bench::PullBenchOptions pull;
  std::string label = "runtime";
  auto* pull_cmd = app.add_subcommand("pull", "time RemoveImage+PullImage cycles of one image");
  pull_cmd->add_option("-r,--endpoint", pull.endpoint, "CRI endpoint, unix:///path")->required();
  pull_cmd->add_option("--image", pull.image, "image reference to pull")->required();
  pull_cmd->add_option("-n,--runs", pull.runs, "number of pulls (default 5)");
  pull_cmd->add_option("--label", label, "name printed with the result");
  CLI11_PARSE(app, argc, argv);

  if (pull_cmd->parsed()) {
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
  }
  return 0;
}
