// stats, statsp (crictl v1.26's flags and output), metricdescs and metricsp
// (crictl v1.30's): resource usage of containers and pods.
// clang-format off
#include "ctl/commands.h"  // first: the CRI header's Signal enum clashes with <signal.h>
// clang-format on

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <thread>

#include "ctl/output.h"
#include "ctl/stats_output.h"

namespace berth::ctl {
namespace {

// -w/--watch: redraws every 500 ms (crictl's ticker) until SIGINT or SIGTERM,
// then exits 0 as crictl does. The signals are blocked while watching and
// taken with sigtimedwait, so no handler and no global flag are needed; a
// second signal after the loop ended is delivered normally.
class Interrupts {
 public:
  Interrupts() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~Interrupts() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  Interrupts(const Interrupts&) = delete;
  Interrupts& operator=(const Interrupts&) = delete;

  // Waits up to `d`; true when a signal came.
  bool Wait(std::chrono::milliseconds d) {
    timespec ts{static_cast<time_t>(d.count() / 1000),
                static_cast<long>(d.count() % 1000) * 1'000'000};
    for (;;) {
      int sig = sigtimedwait(&set_, nullptr, &ts);
      if (sig > 0) return true;
      if (errno != EINTR) return false;
    }
  }

 private:
  sigset_t set_, old_;
};

// Runs `display` once, or on crictl's 500 ms ticker until interrupted: ticks
// fall on a fixed grid; one that comes while a display runs is kept and runs
// at once, later ones are dropped (a Go ticker's channel holds one tick).
Status Display(bool watch, const std::function<Status(Interrupts*)>& display) {
  if (!watch) return display(nullptr);
  using Clock = std::chrono::steady_clock;
  constexpr auto kPeriod = std::chrono::milliseconds(500);
  Interrupts interrupts;
  const Clock::time_point start = Clock::now();
  Clock::time_point received = start;
  for (;;) {
    const Clock::time_point tick = start + ((received - start) / kPeriod + 1) * kPeriod;
    const Clock::time_point now = Clock::now();
    const auto wait = tick > now ? std::chrono::ceil<std::chrono::milliseconds>(tick - now)
                                 : std::chrono::milliseconds(0);
    if (interrupts.Wait(wait)) return OkStatus();
    received = Clock::now();
    Status s = display(&interrupts);
    if (s.code() == StatusCode::kCancelled) return OkStatus();
    RETURN_IF_ERROR(s);
  }
}

// Sleeps for crictl's sample duration; while watching, an interrupt cancels.
Status SampleSleep(std::chrono::seconds d, Interrupts* interrupts) {
  if (d.count() <= 0) return OkStatus();
  if (interrupts == nullptr) {
    std::this_thread::sleep_for(d);
    return OkStatus();
  }
  if (interrupts->Wait(d)) return CancelledError("interrupted");
  return OkStatus();
}

// --- stats ------------------------------------------------------------------

struct StatsOptions {
  bool all = false;
  std::string id;
  std::string pod;
  std::vector<std::string> labels;
  std::string output;
  int seconds = 1;
  bool watch = false;
  std::vector<std::string> args;
};

Status ShowContainerStats(CommandEnv& env, const StatsOptions& o,
                          const cri::ContainerStatsFilter& filter, Interrupts* interrupts) {
  ASSIGN_OR_RETURN(cri::ListContainerStatsResponse before, ListContainerStats(env.client, filter));
  SortContainerStats(before);
  if (o.output == "json") {
    env.out << ProtoAsJson(before) << std::flush;
    return OkStatus();
  }
  if (o.output == "yaml") {
    ASSIGN_OR_RETURN(std::string text, ProtoAsYaml(before));
    env.out << text << std::flush;
    return OkStatus();
  }
  RETURN_IF_ERROR(SampleSleep(std::chrono::seconds(o.seconds), interrupts));
  ASSIGN_OR_RETURN(cri::ListContainerStatsResponse after, ListContainerStats(env.client, filter));
  SortContainerStats(after);
  ASSIGN_OR_RETURN(std::string text, ContainerStatsTable(before, after, o.all));
  env.out << text << std::flush;
  return OkStatus();
}

Status RunStats(CommandEnv& env, const StatsOptions& o) {
  if (o.args.size() > 1) {
    env.show_help();
    return OkStatus();
  }
  RETURN_IF_ERROR(env.client.runtime().status());
  cri::ContainerStatsFilter filter;
  filter.set_id(!o.id.empty() ? o.id : (o.args.empty() ? "" : o.args[0]));
  filter.set_pod_sandbox_id(o.pod);
  ASSIGN_OR_RETURN(auto labels, ParseLabels(o.labels));
  filter.mutable_label_selector()->insert(labels.begin(), labels.end());
  Status s = Display(o.watch, [&](Interrupts* i) { return ShowContainerStats(env, o, filter, i); });
  if (!s.ok()) return Annotate(s, "get container stats");
  return OkStatus();
}

// --- statsp -----------------------------------------------------------------

struct StatspOptions {
  std::string id;
  std::vector<std::string> labels;
  std::string output;
  int seconds = 1;
  bool watch = false;
  std::vector<std::string> args;
};

StatusOr<cri::ListPodSandboxStatsResponse> SortedPodStats(CommandEnv& env,
                                                          const cri::PodSandboxStatsFilter& f) {
  StatusOr<cri::ListPodSandboxStatsResponse> r = ListPodSandboxStats(env.client, f);
  if (!r.ok()) return Annotate(r.status(), "list pod sandbox stats");
  SortPodStats(*r);
  return r;
}

Status ShowPodStats(CommandEnv& env, const StatspOptions& o, const cri::PodSandboxStatsFilter& f,
                    Interrupts* interrupts) {
  ASSIGN_OR_RETURN(cri::ListPodSandboxStatsResponse before, SortedPodStats(env, f));
  if (o.output == "json") {
    env.out << ProtoAsJson(before) << std::flush;
    return OkStatus();
  }
  if (o.output == "yaml") {
    ASSIGN_OR_RETURN(std::string text, ProtoAsYaml(before));
    env.out << text << std::flush;
    return OkStatus();
  }
  RETURN_IF_ERROR(SampleSleep(std::chrono::seconds(o.seconds), interrupts));
  ASSIGN_OR_RETURN(cri::ListPodSandboxStatsResponse after, SortedPodStats(env, f));
  ASSIGN_OR_RETURN(std::string text, PodStatsTable(before, after));
  env.out << text << std::flush;
  return OkStatus();
}

Status RunStatsp(CommandEnv& env, const StatspOptions& o) {
  if (o.args.size() > 1) {
    env.show_help();
    return OkStatus();
  }
  RETURN_IF_ERROR(env.client.runtime().status());
  cri::PodSandboxStatsFilter filter;
  filter.set_id(!o.id.empty() ? o.id : (o.args.empty() ? "" : o.args[0]));
  StatusOr<std::map<std::string, std::string>> labels = ParseLabels(o.labels);
  if (!labels.ok()) return Annotate(labels.status(), "parse pod labels");
  filter.mutable_label_selector()->insert(labels->begin(), labels->end());
  Status s = Display(o.watch, [&](Interrupts* i) { return ShowPodStats(env, o, filter, i); });
  // crictl names the display step only outside watch mode.
  if (!s.ok() && !o.watch) s = Annotate(s, "display pod stats");
  if (!s.ok()) return Annotate(s, "get pod stats");
  return OkStatus();
}

// --- metricdescs, metricsp ------------------------------------------------------

struct MetricsOptions {
  std::string output;
  bool watch = false;
  std::vector<std::string> args;
};

// "" and json print JSON, yaml YAML; crictl shows the help for anything else.
bool MetricsOutputOk(const std::string& output) {
  return output.empty() || output == "json" || output == "yaml";
}

Status PrintProto(CommandEnv& env, const std::string& output,
                  const google::protobuf::Message& msg) {
  if (output == "yaml") {
    ASSIGN_OR_RETURN(std::string text, ProtoAsYaml(msg));
    env.out << text << std::flush;
  } else {
    env.out << ProtoAsJson(msg) << std::flush;
  }
  return OkStatus();
}

Status RunMetricDescs(CommandEnv& env, const MetricsOptions& o) {
  if (!o.args.empty() || !MetricsOutputOk(o.output)) {
    env.show_help();
    return OkStatus();
  }
  RETURN_IF_ERROR(env.client.runtime().status());
  StatusOr<cri::ListMetricDescriptorsResponse> r = ListMetricDescriptors(env.client);
  if (!r.ok()) {
    return Annotate(Annotate(r.status(), "list metric descriptors"), "get metric descriptors");
  }
  return PrintProto(env, o.output, *r);
}

Status RunMetricsp(CommandEnv& env, const MetricsOptions& o) {
  if (!o.args.empty() || !MetricsOutputOk(o.output)) {
    env.show_help();
    return OkStatus();
  }
  RETURN_IF_ERROR(env.client.runtime().status());
  Status s = Display(o.watch, [&](Interrupts*) -> Status {
    StatusOr<cri::ListPodSandboxMetricsResponse> r = ListPodSandboxMetrics(env.client);
    if (!r.ok()) return Annotate(r.status(), "list pod sandbox metrics");
    return PrintProto(env, o.output, *r);
  });
  if (!s.ok()) return Annotate(s, "get pod metrics");
  return OkStatus();
}

}  // namespace

void AddStatsCommands(CLI::App& app, CommandSink& sink) {
  auto stats = std::make_shared<StatsOptions>();
  CLI::App* stats_cmd = app.add_subcommand("stats", "List container(s) resource usage statistics");
  stats_cmd->add_flag("-a,--all", stats->all, "Show all containers (default shows just running)");
  stats_cmd->add_option("--id", stats->id, "Filter by container id");
  stats_cmd->add_option("-p,--pod", stats->pod, "Filter by pod id");
  stats_cmd->add_option("--label", stats->labels, "Filter by key=value label")
      ->allow_extra_args(false);
  stats_cmd->add_option("-o,--output", stats->output, "Output format, One of: json|yaml|table");
  stats_cmd->add_option("-s,--seconds", stats->seconds, "Sample duration for CPU usage in seconds")
      ->capture_default_str();
  stats_cmd->add_flag("-w,--watch", stats->watch, "Watch pod resources");
  stats_cmd->add_option("ID", stats->args, "[ID]");
  sink.Bind(stats_cmd, [stats](CommandEnv& env) { return RunStats(env, *stats); });

  auto statsp = std::make_shared<StatspOptions>();
  CLI::App* statsp_cmd = app.add_subcommand("statsp", "List pod resource usage statistics");
  statsp_cmd->add_option("--id", statsp->id, "Filter by pod id");
  statsp_cmd->add_option("--label", statsp->labels, "Filter by key=value label")
      ->allow_extra_args(false);
  statsp_cmd->add_option("-o,--output", statsp->output, "Output format, One of: json|yaml|table");
  statsp_cmd
      ->add_option("-s,--seconds", statsp->seconds, "Sample duration for CPU usage in seconds")
      ->capture_default_str();
  statsp_cmd->add_flag("-w,--watch", statsp->watch, "Watch pod resources");
  statsp_cmd->add_option("ID", statsp->args, "[ID]");
  sink.Bind(statsp_cmd, [statsp](CommandEnv& env) { return RunStatsp(env, *statsp); });

  auto descs = std::make_shared<MetricsOptions>();
  CLI::App* descs_cmd = app.add_subcommand(
      "metricdescs",
      "List metric descriptors. Returns information about the metrics available through the CRI.");
  descs_cmd->add_option("-o,--output", descs->output, "Output format, One of: json|yaml");
  descs_cmd->add_option("args", descs->args);
  sink.Bind(descs_cmd, [descs](CommandEnv& env) { return RunMetricDescs(env, *descs); });

  auto metricsp = std::make_shared<MetricsOptions>();
  CLI::App* metricsp_cmd = app.add_subcommand(
      "metricsp",
      "List pod metrics. Metrics are unstructured key/value pairs gathered by CRI meant to "
      "replace cAdvisor's /metrics/cadvisor endpoint.");
  metricsp_cmd->add_option("-o,--output", metricsp->output, "Output format, One of: json|yaml");
  metricsp_cmd->add_flag("-w,--watch", metricsp->watch, "Watch pod metrics");
  metricsp_cmd->add_option("args", metricsp->args);
  sink.Bind(metricsp_cmd, [metricsp](CommandEnv& env) { return RunMetricsp(env, *metricsp); });
}

}  // namespace berth::ctl
