// runp, stopp, rmp, pods, inspectp: the pod sandbox commands.
#include <algorithm>
#include <chrono>
#include <memory>
#include <set>

#include "ctl/commands.h"
#include "ctl/go_json.h"
#include "ctl/output.h"
#include "ctl/runtime_output.h"
#include "ctl/table.h"

namespace berth::ctl {
namespace {

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// --- runp -------------------------------------------------------------------

struct RunpOptions {
  std::string runtime_handler;
  std::string cancel_timeout;
  std::vector<std::string> args;
};

Status RunRunp(CommandEnv& env, const RunpOptions& o) {
  if (o.args.size() != 1 || o.args[0].empty()) {
    env.show_help();
    return OkStatus();
  }
  if (!o.cancel_timeout.empty()) {
    ASSIGN_OR_RETURN(auto t, ParseDurationFlag("cancel-timeout", o.cancel_timeout));
    env.client.set_runtime_timeout(t);
  }
  RETURN_IF_ERROR(env.client.runtime().status());
  StatusOr<cri::PodSandboxConfig> cfg = LoadPodSandboxConfig(o.args[0]);
  if (!cfg.ok()) return Annotate(cfg.status(), "load podSandboxConfig");
  StatusOr<std::string> id = RunPodSandbox(env.client, *cfg, o.runtime_handler);
  if (!id.ok()) return Annotate(id.status(), "run pod sandbox");
  env.out << *id << "\n";
  return OkStatus();
}

// --- stopp ------------------------------------------------------------------

struct IdsOptions {
  std::vector<std::string> args;
};

// Stops one sandbox and says so (crictl's StopPodSandbox helper).
Status StopPodAndReport(CommandEnv& env, const std::string& id) {
  if (id.empty()) return InvalidArgumentError("ID cannot be empty");
  RETURN_IF_ERROR(StopPodSandbox(env.client, id));
  env.out << "Stopped sandbox " << id << "\n";
  env.out.flush();
  return OkStatus();
}

Status RunStopp(CommandEnv& env, const IdsOptions& o) {
  if (o.args.empty()) {
    env.show_help();
    return OkStatus();
  }
  RETURN_IF_ERROR(env.client.runtime().status());
  for (const std::string& id : o.args) {
    Status s = StopPodAndReport(env, id);
    if (!s.ok()) return Annotate(s, StrCat("stopping the pod sandbox ", GoQuote(id)));
  }
  return OkStatus();
}

// --- rmp --------------------------------------------------------------------

struct RmpOptions {
  bool force = false;
  bool all = false;
  std::vector<std::string> args;
};

Status RemoveOnePod(CommandEnv& env, const RmpOptions& o, const std::string& id) {
  StatusOr<cri::PodSandboxStatusResponse> st = PodSandboxStatus(env.client, id, false);
  if (!st.ok()) {
    return Annotate(st.status(), StrCat("getting sandbox status of pod ", GoQuote(id)));
  }
  if (st->status().state() == cri::SANDBOX_READY) {
    if (!o.force) {
      return FailedPreconditionError(
          StrCat("pod sandbox ", GoQuote(id), " is running, please stop it first"));
    }
    Status stopped = StopPodAndReport(env, id);
    if (!stopped.ok()) {
      return Annotate(stopped, StrCat("stopping the pod sandbox ", GoQuote(id), " failed"));
    }
  }
  Status removed = RemovePodSandbox(env.client, id);
  if (!removed.ok()) return Annotate(removed, StrCat("removing the pod sandbox ", GoQuote(id)));
  env.out << "Removed sandbox " << id << "\n";
  env.out.flush();
  return OkStatus();
}

Status RunRmp(CommandEnv& env, const RmpOptions& o) {
  RETURN_IF_ERROR(env.client.runtime().status());
  std::vector<std::string> ids = o.args;
  if (o.all) {
    ASSIGN_OR_RETURN(cri::ListPodSandboxResponse list, ListPodSandbox(env.client, nullptr));
    ids.clear();
    for (const cri::PodSandbox& pod : list.items()) ids.push_back(pod.id());
  }
  if (ids.empty()) {
    env.show_help();
    return OkStatus();
  }
  // crictl removes the pods concurrently and urfave/cli prints each error of
  // the aggregate on a line of its own (no log prefix); here they go one
  // after the other, in order.
  bool failed = false;
  for (const std::string& id : ids) {
    Status s = RemoveOnePod(env, o, id);
    if (s.ok()) continue;
    env.err_stream() << s.message() << "\n";
    failed = true;
  }
  return failed ? UnknownError("") : OkStatus();
}

// --- pods -------------------------------------------------------------------

struct PodsOptions {
  std::string id;
  std::string name;
  std::string pod_namespace;
  std::string state;
  std::vector<std::string> labels;
  RuntimeListOptions list;
  std::string output = "table";
  bool latest = false;
  int last = 0;
};

Status RunPods(CommandEnv& env, const PodsOptions& o) {
  RETURN_IF_ERROR(env.client.runtime().status());
  ASSIGN_OR_RETURN(auto labels, ParseLabels(o.labels));
  cri::PodSandboxFilter filter;
  filter.set_id(o.id);
  if (!o.state.empty()) {
    std::string state = o.state;
    std::transform(state.begin(), state.end(), state.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (state == "ready") {
      filter.mutable_state()->set_state(cri::SANDBOX_READY);
    } else if (state == "notready") {
      filter.mutable_state()->set_state(cri::SANDBOX_NOTREADY);
    } else {
      return GoLogFatal(env, "--state should be ready or notready");
    }
  }
  filter.mutable_label_selector()->insert(labels.begin(), labels.end());
  StatusOr<cri::ListPodSandboxResponse> r = ListPodSandbox(env.client, &filter);
  if (!r.ok()) return Annotate(r.status(), "listing pod sandboxes");
  ListSelection sel;
  sel.name_regexp = o.name;
  sel.namespace_regexp = o.pod_namespace;
  sel.latest = o.latest;
  sel.last = o.last;
  std::vector<cri::PodSandbox> pods =
      SelectPods(std::vector<cri::PodSandbox>(r->items().begin(), r->items().end()), sel);
  cri::ListPodSandboxResponse selected;
  for (const cri::PodSandbox& pod : pods) *selected.add_items() = pod;
  if (o.output == "json") {
    env.out << ProtoAsJson(selected);
    return OkStatus();
  }
  if (o.output == "yaml") {
    ASSIGN_OR_RETURN(std::string text, ProtoAsYaml(selected));
    env.out << text;
    return OkStatus();
  }
  if (o.output != "table") {
    return InvalidArgumentError(
        StrCat("listing pod sandboxes: unsupported output format ", GoQuote(o.output)));
  }
  ASSIGN_OR_RETURN(std::string text, PodListText(pods, o.list, NowNanos()));
  env.out << text;
  return OkStatus();
}

// --- inspectp ---------------------------------------------------------------

struct InspectpOptions {
  std::string output;
  bool quiet = false;
  std::string tmpl;
  std::vector<std::string> args;
};

Status InspectOnePod(CommandEnv& env, const InspectpOptions& o, const std::string& id) {
  bool verbose = !o.quiet;
  if (id.empty()) return InvalidArgumentError("ID cannot be empty");
  ASSIGN_OR_RETURN(cri::PodSandboxStatusResponse r, PodSandboxStatus(env.client, id, verbose));
  if (!r.has_status()) return InternalError("the runtime returned no pod sandbox status");
  ASSIGN_OR_RETURN(std::string status, PodSandboxStatusJson(r.status()));
  ASSIGN_OR_RETURN(std::string text, InspectionOutput(o.output, status, ToStdMap(r.info()), [&] {
                     return PodSandboxStatusTable(r, verbose);
                   }));
  env.out << text;
  return OkStatus();
}

Status RunInspectp(CommandEnv& env, const InspectpOptions& o) {
  if (o.args.empty()) {
    env.show_help();
    return OkStatus();
  }
  RETURN_IF_ERROR(env.client.runtime().status());
  for (const std::string& id : o.args) {
    Status s = InspectOnePod(env, o, id);
    if (!s.ok()) return Annotate(s, StrCat("getting the pod sandbox status for ", GoQuote(id)));
  }
  return OkStatus();
}

}  // namespace

void AddPodCommands(CLI::App& app, CommandSink& sink) {
  auto runp = std::make_shared<RunpOptions>();
  CLI::App* runp_cmd = app.add_subcommand("runp", "Run a new pod");
  runp_cmd->add_option(
      "-r,--runtime", runp->runtime_handler,
      "Runtime handler to use. Available options are defined by the container runtime.");
  runp_cmd->add_option("-T,--cancel-timeout", runp->cancel_timeout,
                       "Seconds to wait for a run pod sandbox request to complete before "
                       "cancelling the request (a duration, e.g. 30s)");
  runp_cmd->add_option("pod-config", runp->args, "pod-config.[json|yaml]");
  sink.Bind(runp_cmd, [runp](CommandEnv& env) { return RunRunp(env, *runp); });

  auto stopp = std::make_shared<IdsOptions>();
  CLI::App* stopp_cmd = app.add_subcommand("stopp", "Stop one or more running pods");
  stopp_cmd->add_option("pod-id", stopp->args, "POD-ID [POD-ID...]");
  sink.Bind(stopp_cmd, [stopp](CommandEnv& env) { return RunStopp(env, *stopp); });

  auto rmp = std::make_shared<RmpOptions>();
  CLI::App* rmp_cmd = app.add_subcommand("rmp", "Remove one or more pods");
  rmp_cmd->add_flag("-f,--force", rmp->force,
                    "Force removal of the pod sandbox, disregarding if running");
  rmp_cmd->add_flag("-a,--all", rmp->all, "Remove all pods");
  rmp_cmd->add_option("pod-id", rmp->args, "POD-ID [POD-ID...]");
  sink.Bind(rmp_cmd, [rmp](CommandEnv& env) { return RunRmp(env, *rmp); });

  auto pods = std::make_shared<PodsOptions>();
  CLI::App* pods_cmd = app.add_subcommand("pods", "List pods");
  pods_cmd->add_option("--id", pods->id, "filter by pod id");
  pods_cmd->add_option("--name", pods->name, "filter by pod name regular expression pattern");
  pods_cmd->add_option("--namespace", pods->pod_namespace,
                       "filter by pod namespace regular expression pattern");
  pods_cmd->add_option("-s,--state", pods->state, "filter by pod state");
  pods_cmd->add_option("--label", pods->labels, "filter by key=value label")
      ->allow_extra_args(false);
  pods_cmd->add_flag("-v,--verbose", pods->list.verbose, "show verbose info for pods");
  pods_cmd->add_flag("-q,--quiet", pods->list.quiet, "list only pod IDs");
  pods_cmd->add_option("-o,--output", pods->output, "Output format, One of: json|yaml|table")
      ->capture_default_str();
  pods_cmd->add_flag("-l,--latest", pods->latest, "Show the most recently created pod");
  pods_cmd->add_option("-n,--last", pods->last,
                       "Show last n recently created pods. Set 0 for unlimited");
  pods_cmd->add_flag("--no-trunc", pods->list.no_trunc, "Show output without truncating the ID");
  sink.Bind(pods_cmd, [pods](CommandEnv& env) { return RunPods(env, *pods); });

  auto inspectp = std::make_shared<InspectpOptions>();
  CLI::App* inspectp_cmd = app.add_subcommand("inspectp", "Display the status of one or more pods");
  inspectp_cmd->add_option("-o,--output", inspectp->output,
                           "Output format, One of: json|yaml|go-template|table (default json)");
  inspectp_cmd->add_flag("-q,--quiet", inspectp->quiet, "Do not show verbose information");
  inspectp_cmd->add_option("--template", inspectp->tmpl,
                           "The template string is only used when output is go-template (not "
                           "supported by berthctl)");
  inspectp_cmd->add_option("pod-id", inspectp->args, "POD-ID [POD-ID...]");
  sink.Bind(inspectp_cmd, [inspectp](CommandEnv& env) { return RunInspectp(env, *inspectp); });
}

}  // namespace berth::ctl
