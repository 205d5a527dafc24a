// create, start, stop, rm, ps, inspect, update, run, exec, logs: the
// container commands.
#include <algorithm>
#include <chrono>
#include <memory>

#include "ctl/commands.h"
#include "ctl/cri_log.h"
#include "ctl/go_json.h"
#include "ctl/go_time.h"
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

std::string JoinArgs(const std::vector<std::string>& args) {
  std::string out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0) out += ' ';
    out += args[i];
  }
  return out;
}

// --- create / run -----------------------------------------------------------

struct PullFlags {
  bool no_pull = false;
  bool with_pull = false;
  std::string creds;
  std::string auth;
  std::string username;
};

// crictl's CreateContainer: loads the configs, pulls the image first when
// asked (with the pod config as pull context), then creates the container.
StatusOr<std::string> CreateContainerFlow(CommandEnv& env, const std::string& pod_id,
                                          const std::string& config_path,
                                          const std::string& pod_config_path, const PullFlags& pull,
                                          bool with_pull) {
  ASSIGN_OR_RETURN(cri::ContainerConfig config, LoadContainerConfig(config_path));
  std::optional<cri::PodSandboxConfig> pod_config;
  if (!pod_config_path.empty()) {
    ASSIGN_OR_RETURN(pod_config, LoadPodSandboxConfig(pod_config_path));
  }
  if (with_pull) {
    cri::PullImageRequest req;
    ASSIGN_OR_RETURN(bool has_auth,
                     FillPullAuth(env, pull.creds, pull.auth, pull.username, *req.mutable_auth()));
    if (!has_auth) req.clear_auth();
    *req.mutable_image()->mutable_image() = config.image().image();
    *req.mutable_image()->mutable_annotations() = config.image().annotations();
    if (pod_config) *req.mutable_sandbox_config() = *pod_config;
    RETURN_IF_ERROR(PullImage(env.client, req).status());
  }
  return CreateContainer(env.client, pod_id, config, pod_config ? &*pod_config : nullptr);
}

struct CreateOptions {
  PullFlags pull;
  std::string cancel_timeout;
  std::vector<std::string> args;
};

Status RunCreate(CommandEnv& env, const CreateOptions& o) {
  if (o.args.size() != 3) {
    env.show_help();
    return OkStatus();
  }
  if (o.pull.no_pull && o.pull.with_pull) {
    // crictl's message, typo included.
    return InvalidArgumentError("confict: no-pull and with-pull are both set");
  }
  bool with_pull =
      (!o.pull.no_pull && env.client.settings().pull_image_on_create) || o.pull.with_pull;
  if (with_pull) RETURN_IF_ERROR(env.client.images().status());
  if (!o.cancel_timeout.empty()) {
    ASSIGN_OR_RETURN(auto t, ParseDurationFlag("cancel-timeout", o.cancel_timeout));
    env.client.set_runtime_timeout(t);
  }
  RETURN_IF_ERROR(env.client.runtime().status());
  StatusOr<std::string> id =
      CreateContainerFlow(env, o.args[0], o.args[1], o.args[2], o.pull, with_pull);
  if (!id.ok()) return Annotate(id.status(), "creating container");
  env.out << *id << "\n";
  return OkStatus();
}

// Starts one container and prints its id (crictl's StartContainer helper).
Status StartAndReport(CommandEnv& env, const std::string& id) {
  if (id.empty()) return InvalidArgumentError("ID cannot be empty");
  RETURN_IF_ERROR(StartContainer(env.client, id));
  env.out << id << "\n";
  env.out.flush();
  return OkStatus();
}

struct RunOptions {
  PullFlags pull;
  std::string runtime_handler;
  std::string timeout;
  std::vector<std::string> args;
};

Status RunRun(CommandEnv& env, const RunOptions& o) {
  if (o.args.size() != 2) {
    env.show_help();
    return OkStatus();
  }
  if (o.pull.no_pull && o.pull.with_pull) {
    return InvalidArgumentError("confict: no-pull and with-pull are both set");
  }
  bool with_pull =
      (!env.client.settings().disable_pull_on_run && !o.pull.no_pull) || o.pull.with_pull;
  if (with_pull) RETURN_IF_ERROR(env.client.images().status());
  if (!o.timeout.empty()) {
    ASSIGN_OR_RETURN(auto t, ParseDurationFlag("timeout", o.timeout));
    env.client.set_runtime_timeout(t);
  }
  RETURN_IF_ERROR(env.client.runtime().status());
  auto run = [&]() -> Status {
    StatusOr<cri::PodSandboxConfig> pod_config = LoadPodSandboxConfig(o.args[1]);
    if (!pod_config.ok()) return Annotate(pod_config.status(), "load podSandboxConfig");
    StatusOr<std::string> pod_id = RunPodSandbox(env.client, *pod_config, o.runtime_handler);
    if (!pod_id.ok()) return Annotate(pod_id.status(), "run pod sandbox");
    StatusOr<std::string> id =
        CreateContainerFlow(env, *pod_id, o.args[0], o.args[1], o.pull, with_pull);
    if (!id.ok()) return Annotate(id.status(), "creating container failed");
    Status started = StartAndReport(env, *id);
    if (!started.ok()) return Annotate(started, StrCat("starting the container ", GoQuote(*id)));
    return OkStatus();
  };
  Status s = run();
  if (!s.ok()) return Annotate(s, "running container");
  return OkStatus();
}

// --- start / stop / update ----------------------------------------------------

struct IdsOptions {
  std::vector<std::string> args;
};

Status RunStart(CommandEnv& env, const IdsOptions& o) {
  if (o.args.empty()) return InvalidArgumentError("ID cannot be empty");
  RETURN_IF_ERROR(env.client.runtime().status());
  for (const std::string& id : o.args) {
    Status s = StartAndReport(env, id);
    if (!s.ok()) return Annotate(s, StrCat("starting the container ", GoQuote(id)));
  }
  return OkStatus();
}

Status StopAndReport(CommandEnv& env, const std::string& id, int64_t timeout) {
  if (id.empty()) return InvalidArgumentError("ID cannot be empty");
  RETURN_IF_ERROR(StopContainer(env.client, id, timeout));
  env.out << id << "\n";
  env.out.flush();
  return OkStatus();
}

struct StopOptions {
  int64_t timeout = 0;
  std::vector<std::string> args;
};

Status RunStop(CommandEnv& env, const StopOptions& o) {
  if (o.args.empty()) return InvalidArgumentError("ID cannot be empty");
  RETURN_IF_ERROR(env.client.runtime().status());
  for (const std::string& id : o.args) {
    Status s = StopAndReport(env, id, o.timeout);
    if (!s.ok()) return Annotate(s, StrCat("stopping the container ", GoQuote(id)));
  }
  return OkStatus();
}

struct UpdateOptions {
  int64_t cpu_count = 0;    // Windows only; accepted and ignored
  int64_t cpu_maximum = 0;  // Windows only; accepted and ignored
  int64_t cpu_period = 0;
  int64_t cpu_quota = 0;
  int64_t cpu_shares = 0;
  int64_t memory = 0;
  std::string cpuset_cpus;
  std::string cpuset_mems;
  std::vector<std::string> args;
};

Status RunUpdate(CommandEnv& env, const UpdateOptions& o) {
  if (o.args.empty()) return InvalidArgumentError("ID cannot be empty");
  RETURN_IF_ERROR(env.client.runtime().status());
  // Zero means "not specified" in CRI, so every value is sent as given.
  cri::LinuxContainerResources linux;
  linux.set_cpu_period(o.cpu_period);
  linux.set_cpu_quota(o.cpu_quota);
  linux.set_cpu_shares(o.cpu_shares);
  linux.set_cpuset_cpus(o.cpuset_cpus);
  linux.set_cpuset_mems(o.cpuset_mems);
  linux.set_memory_limit_in_bytes(o.memory);
  for (const std::string& id : o.args) {
    Status s = id.empty() ? InvalidArgumentError("ID cannot be empty")
                          : UpdateContainerResources(env.client, id, linux);
    if (!s.ok()) return Annotate(s, StrCat("updating container resources for ", GoQuote(id)));
    env.out << id << "\n";
  }
  return OkStatus();
}

// --- rm -----------------------------------------------------------------------

struct RmOptions {
  bool force = false;
  bool all = false;
  std::vector<std::string> args;
};

Status RunRm(CommandEnv& env, const RmOptions& o) {
  RETURN_IF_ERROR(env.client.runtime().status());
  std::vector<std::string> ids = o.args;
  if (o.all) {
    ASSIGN_OR_RETURN(cri::ListContainersResponse list, ListContainers(env.client, nullptr));
    ids.clear();
    for (const cri::Container& c : list.containers()) ids.push_back(c.id());
  }
  if (ids.empty()) {
    env.show_help();
    return OkStatus();
  }
  bool errored = false;
  for (const std::string& id : ids) {
    StatusOr<cri::ContainerStatusResponse> st = ContainerStatus(env.client, id, false);
    if (!st.ok()) {
      env.log.Error(st.status().message());
      errored = true;
      continue;
    }
    if (st->status().state() == cri::CONTAINER_RUNNING) {
      if (!o.force) {
        env.log.Error(StrCat("container ", GoQuote(id), " is running, please stop it first"));
        errored = true;
        continue;
      }
      Status stopped = StopAndReport(env, id, 0);
      if (!stopped.ok()) {
        env.log.Error(
            StrCat("stopping the container ", GoQuote(id), " failed: ", stopped.message()));
        errored = true;
        continue;
      }
    }
    Status removed = RemoveContainer(env.client, id);
    if (!removed.ok()) {
      env.log.Error(StrCat("removing container ", GoQuote(id), " failed: ", removed.message()));
      errored = true;
      continue;
    }
    env.out << id << "\n";
    env.out.flush();
  }
  if (errored) return UnknownError("unable to remove container(s)");
  return OkStatus();
}

// --- ps -----------------------------------------------------------------------

struct PsOptions {
  std::string id;
  std::string pod;
  std::string name;
  std::string image;
  std::string state;
  std::vector<std::string> labels;
  RuntimeListOptions list;
  std::string output = "table";
  bool all = false;
  bool latest = false;
  int last = 0;
  bool resolve_image_path = false;
  std::vector<std::string> args;
};

// crictl's matchesImage: both names resolve to the same image id.
StatusOr<bool> MatchesImage(CriClient& client, const std::string& image,
                            const std::string& container_image) {
  if (image.empty()) return true;
  ASSIGN_OR_RETURN(cri::ImageStatusResponse a, ImageStatus(client, image, false));
  ASSIGN_OR_RETURN(cri::ImageStatusResponse b, ImageStatus(client, container_image, false));
  if (!a.has_image() || !b.has_image()) return false;
  return a.image().id() == b.image().id();
}

Status ListContainersCommand(CommandEnv& env, const PsOptions& o) {
  ASSIGN_OR_RETURN(auto labels, ParseLabels(o.labels));
  cri::ContainerFilter filter;
  filter.set_id(o.id);
  filter.set_pod_sandbox_id(o.pod);
  if (!o.all && o.state.empty()) filter.mutable_state()->set_state(cri::CONTAINER_RUNNING);
  if (!o.state.empty()) {
    std::string state = o.state;
    std::transform(state.begin(), state.end(), state.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (state == "created") {
      filter.mutable_state()->set_state(cri::CONTAINER_CREATED);
    } else if (state == "running") {
      filter.mutable_state()->set_state(cri::CONTAINER_RUNNING);
    } else if (state == "exited") {
      filter.mutable_state()->set_state(cri::CONTAINER_EXITED);
    } else if (state == "unknown") {
      filter.mutable_state()->set_state(cri::CONTAINER_UNKNOWN);
    } else {
      return GoLogFatal(env, "--state should be one of created, running, exited or unknown");
    }
  }
  // --latest and --last look at containers in every state.
  if (o.latest || o.last > 0) filter.clear_state();
  filter.mutable_label_selector()->insert(labels.begin(), labels.end());
  ASSIGN_OR_RETURN(cri::ListContainersResponse r, ListContainers(env.client, &filter));
  ListSelection sel;
  sel.name_regexp = o.name;
  sel.latest = o.latest;
  sel.last = o.last;
  std::vector<cri::Container> containers = SelectContainers(
      std::vector<cri::Container>(r.containers().begin(), r.containers().end()), sel);
  cri::ListContainersResponse selected;
  for (const cri::Container& c : containers) *selected.add_containers() = c;
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
    return InvalidArgumentError(StrCat("unsupported output format ", GoQuote(o.output)));
  }
  // --image only filters the table forms, as in crictl.
  std::vector<cri::Container> shown;
  for (const cri::Container& c : containers) {
    StatusOr<bool> match = MatchesImage(env.client, o.image, c.image().image());
    if (!match.ok()) return Annotate(match.status(), "check image match");
    if (*match) shown.push_back(c);
  }
  ImageResolver resolve;
  if (o.resolve_image_path) {
    resolve = [&env](const std::string& image) -> StatusOr<std::string> {
      StatusOr<cri::ImageStatusResponse> st = ImageStatus(env.client, image, false);
      if (!st.ok()) {
        return Status(st.status().code(),
                      StrCat("failed to fetch repo image ", st.status().message()));
      }
      if (st->has_image() && st->image().repo_tags_size() > 0) return st->image().repo_tags(0);
      return image;
    };
  }
  ASSIGN_OR_RETURN(std::string text, ContainerListText(shown, o.list, NowNanos(), resolve));
  env.out << text;
  return OkStatus();
}

Status RunPs(CommandEnv& env, const PsOptions& o) {
  if (!o.args.empty()) {
    env.show_help();
    return OkStatus();
  }
  RETURN_IF_ERROR(env.client.runtime().status());
  RETURN_IF_ERROR(env.client.images().status());
  Status s = ListContainersCommand(env, o);
  if (!s.ok() && !s.message().empty()) return Annotate(s, "listing containers");
  return s;
}

// --- inspect ------------------------------------------------------------------

struct InspectOptions {
  std::string output;
  bool quiet = false;
  std::string tmpl;
  std::vector<std::string> args;
};

Status InspectOneContainer(CommandEnv& env, const InspectOptions& o, const std::string& id) {
  bool verbose = !o.quiet;
  if (id.empty()) return InvalidArgumentError("ID cannot be empty");
  ASSIGN_OR_RETURN(cri::ContainerStatusResponse r, ContainerStatus(env.client, id, verbose));
  if (!r.has_status()) return InternalError("the runtime returned no container status");
  ASSIGN_OR_RETURN(std::string status, ContainerStatusJson(r.status()));
  ASSIGN_OR_RETURN(std::string text, InspectionOutput(o.output, status, ToStdMap(r.info()), [&] {
                     return ContainerStatusTable(r, verbose, NowNanos());
                   }));
  env.out << text;
  return OkStatus();
}

Status RunInspect(CommandEnv& env, const InspectOptions& o) {
  if (o.args.empty()) return InvalidArgumentError("ID cannot be empty");
  RETURN_IF_ERROR(env.client.runtime().status());
  for (const std::string& id : o.args) {
    Status s = InspectOneContainer(env, o, id);
    if (!s.ok()) return Annotate(s, StrCat("getting the status of the container ", GoQuote(id)));
  }
  return OkStatus();
}

// --- exec ---------------------------------------------------------------------

struct ExecOptions {
  bool sync = false;
  int64_t timeout = 0;
  bool tty = false;
  bool interactive = false;
  CLI::App* cmd = nullptr;  // the container id and command are its remaining arguments
};

Status RunExec(CommandEnv& env, const ExecOptions& o) {
  std::vector<std::string> args = o.cmd->remaining();
  if (args.size() < 2) {
    env.show_help();
    return OkStatus();
  }
  std::vector<std::string> cmd(args.begin() + 1, args.end());
  if (!o.sync) return RunStreamingExec(env, args[0], cmd, o.tty, o.interactive);
  RETURN_IF_ERROR(env.client.runtime().status());
  StatusOr<cri::ExecSyncResponse> r = ExecSync(env.client, args[0], cmd, o.timeout);
  if (!r.ok()) return Annotate(r.status(), "execing command in container synchronously");
  if (r->exit_code() != 0) {
    // crictl reports a failed command as an error and prints no output.
    return UnknownError(StrCat("execing command in container synchronously: command '",
                               JoinArgs(cmd), "' exited with ", r->exit_code(), ": ", r->stderr()));
  }
  env.out << r->stdout() << "\n" << r->stderr() << "\n";
  return OkStatus();
}

// --- logs ---------------------------------------------------------------------

struct LogsOptions {
  bool follow = false;
  bool previous = false;
  int64_t tail = -1;
  int64_t limit_bytes = -1;
  std::string since;
  bool timestamps = false;
  std::vector<std::string> args;
};

Status RunLogs(CommandEnv& env, const LogsOptions& o) {
  if (o.args.empty() || o.args[0].empty()) return InvalidArgumentError("ID cannot be empty");
  if (o.args.size() > 1) {
    env.show_help();
    return OkStatus();
  }
  const std::string& id = o.args[0];
  RETURN_IF_ERROR(env.client.runtime().status());
  LogReadOptions read;
  read.tail = o.tail;
  read.limit_bytes = o.limit_bytes;
  read.follow = o.follow;
  read.timestamps = o.timestamps;
  if (!o.since.empty()) {
    ASSIGN_OR_RETURN(read.since_unix_nanos,
                     ParseSinceTime(o.since, std::chrono::system_clock::now()));
  }
  ASSIGN_OR_RETURN(cri::ContainerStatusResponse st, ContainerStatus(env.client, id, false));
  std::string path = st.status().log_path();
  if (path.empty()) return FailedPreconditionError("The container has not set log path");
  if (o.previous) {
    uint32_t attempt = st.status().metadata().attempt();
    if (attempt == 0) {
      return NotFoundError(
          StrCat("Previous terminated container ", st.status().metadata().name(), " not found"));
    }
    // <dir>/<attempt>.log holds each attempt's log; the previous one is attempt-1.
    size_t slash = path.rfind('/');
    size_t dot = path.rfind('.');
    std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    std::string ext = dot == std::string::npos ? "" : path.substr(dot);
    path = StrCat(dir, attempt - 1, ext);
  }
  LogFollowHooks hooks;
  std::string container_id = st.status().id();
  hooks.container_running = [&env, container_id]() -> StatusOr<bool> {
    ASSIGN_OR_RETURN(cri::ContainerStatusResponse now,
                     ContainerStatus(env.client, container_id, false));
    if (!now.has_status()) return InternalError("container status is nil");
    return now.status().state() == cri::CONTAINER_RUNNING;
  };
  return ReadCriLog(path, read, env.out, env.err_stream(), hooks);
}

}  // namespace

void AddContainerCommands(CLI::App& app, CommandSink& sink) {
  auto add_pull_flags = [](CLI::App* cmd, PullFlags& f, bool for_run) {
    cmd->add_flag("--no-pull", f.no_pull,
                  for_run ? "Do not pull the image (overrides disable-pull-on-run=false in config)"
                          : "Do not pull the image on container creation (overrides "
                            "pull-image-on-create=true in config)");
    cmd->add_flag("--with-pull", f.with_pull,
                  for_run ? "Pull the image (overrides disable-pull-on-run=true in config)"
                          : "Pull the image on container creation (overrides "
                            "pull-image-on-create=false in config)");
    cmd->add_option("--creds", f.creds, "Use USERNAME[:PASSWORD] for accessing the registry");
    cmd->add_option("--auth", f.auth,
                    "Use AUTH_STRING for accessing the registry. AUTH_STRING is a base64 "
                    "encoded 'USERNAME[:PASSWORD]'");
    cmd->add_option("--username", f.username,
                    "Use USERNAME for accessing the registry. The password will be requested "
                    "on the command line");
  };

  auto create = std::make_shared<CreateOptions>();
  CLI::App* create_cmd = app.add_subcommand("create", "Create a new container");
  add_pull_flags(create_cmd, create->pull, false);
  create_cmd->add_option("-T,--cancel-timeout", create->cancel_timeout,
                         "Seconds to wait for a container create request to complete before "
                         "cancelling the request (a duration, e.g. 30s)");
  create_cmd->add_option("args", create->args,
                         "POD container-config.[json|yaml] pod-config.[json|yaml]");
  sink.Bind(create_cmd, [create](CommandEnv& env) { return RunCreate(env, *create); });

  auto start = std::make_shared<IdsOptions>();
  CLI::App* start_cmd = app.add_subcommand("start", "Start one or more created containers");
  start_cmd->add_option("container-id", start->args, "CONTAINER-ID [CONTAINER-ID...]");
  sink.Bind(start_cmd, [start](CommandEnv& env) { return RunStart(env, *start); });

  auto update = std::make_shared<UpdateOptions>();
  CLI::App* update_cmd = app.add_subcommand("update", "Update one or more running containers");
  update_cmd->add_option("--cpu-count", update->cpu_count,
                         "(Windows only) Number of CPUs available to the container");
  update_cmd->add_option("--cpu-maximum", update->cpu_maximum,
                         "(Windows only) Portion of CPU cycles specified as a percentage * 100");
  update_cmd->add_option("--cpu-period", update->cpu_period,
                         "CPU CFS period to be used for hardcapping (in usecs). 0 to use system "
                         "default");
  update_cmd->add_option("--cpu-quota", update->cpu_quota,
                         "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period");
  update_cmd->add_option("--cpu-share", update->cpu_shares,
                         "CPU shares (relative weight vs. other containers)");
  update_cmd->add_option("--memory", update->memory, "Memory limit (in bytes)");
  update_cmd->add_option("--cpuset-cpus", update->cpuset_cpus, "CPU(s) to use");
  update_cmd->add_option("--cpuset-mems", update->cpuset_mems, "Memory node(s) to use");
  update_cmd->add_option("container-id", update->args, "CONTAINER-ID [CONTAINER-ID...]");
  sink.Bind(update_cmd, [update](CommandEnv& env) { return RunUpdate(env, *update); });

  auto stop = std::make_shared<StopOptions>();
  CLI::App* stop_cmd = app.add_subcommand("stop", "Stop one or more running containers");
  stop_cmd->add_option("-t,--timeout", stop->timeout,
                       "Seconds to wait to kill the container after a graceful stop is requested");
  stop_cmd->add_option("container-id", stop->args, "CONTAINER-ID [CONTAINER-ID...]");
  sink.Bind(stop_cmd, [stop](CommandEnv& env) { return RunStop(env, *stop); });

  auto rm = std::make_shared<RmOptions>();
  CLI::App* rm_cmd = app.add_subcommand("rm", "Remove one or more containers");
  rm_cmd->add_flag("-f,--force", rm->force,
                   "Force removal of the container, disregarding if running");
  rm_cmd->add_flag("-a,--all", rm->all, "Remove all containers");
  rm_cmd->add_option("container-id", rm->args, "CONTAINER-ID [CONTAINER-ID...]");
  sink.Bind(rm_cmd, [rm](CommandEnv& env) { return RunRm(env, *rm); });

  auto inspect = std::make_shared<InspectOptions>();
  CLI::App* inspect_cmd =
      app.add_subcommand("inspect", "Display the status of one or more containers");
  inspect_cmd->add_option("-o,--output", inspect->output,
                          "Output format, One of: json|yaml|go-template|table (default json)");
  inspect_cmd->add_flag("-q,--quiet", inspect->quiet, "Do not show verbose information");
  inspect_cmd->add_option("--template", inspect->tmpl,
                          "The template string is only used when output is go-template (not "
                          "supported by berthctl)");
  inspect_cmd->add_option("container-id", inspect->args, "CONTAINER-ID [CONTAINER-ID...]");
  sink.Bind(inspect_cmd, [inspect](CommandEnv& env) { return RunInspect(env, *inspect); });

  auto ps = std::make_shared<PsOptions>();
  CLI::App* ps_cmd = app.add_subcommand("ps", "List containers");
  ps_cmd->add_flag("-v,--verbose", ps->list.verbose, "Show verbose information for containers");
  ps_cmd->add_option("--id", ps->id, "Filter by container id");
  ps_cmd->add_option("--name", ps->name, "filter by container name regular expression pattern");
  ps_cmd->add_option("-p,--pod", ps->pod, "Filter by pod id");
  ps_cmd->add_option("--image", ps->image, "Filter by container image");
  ps_cmd->add_option("-s,--state", ps->state, "Filter by container state");
  ps_cmd->add_option("--label", ps->labels, "Filter by key=value label")->allow_extra_args(false);
  ps_cmd->add_flag("-q,--quiet", ps->list.quiet, "Only display container IDs");
  ps_cmd->add_option("-o,--output", ps->output, "Output format, One of: json|yaml|table")
      ->capture_default_str();
  ps_cmd->add_flag("-a,--all", ps->all, "Show all containers");
  ps_cmd->add_flag("-l,--latest", ps->latest,
                   "Show the most recently created container (includes all states)");
  ps_cmd->add_option("-n,--last", ps->last,
                     "Show last n recently created containers (includes all states). Set 0 for "
                     "unlimited.");
  ps_cmd->add_flag("--no-trunc", ps->list.no_trunc, "Show output without truncating the ID");
  ps_cmd->add_flag("-r,--resolve-image-path", ps->resolve_image_path,
                   "Show image path instead of image id");
  ps_cmd->add_option("extra", ps->args, "")->group("");  // only to show help, like crictl
  sink.Bind(ps_cmd, [ps](CommandEnv& env) { return RunPs(env, *ps); });

  auto run = std::make_shared<RunOptions>();
  CLI::App* run_cmd = app.add_subcommand("run", "Run a new container inside a sandbox");
  add_pull_flags(run_cmd, run->pull, true);
  run_cmd->add_option(
      "-r,--runtime", run->runtime_handler,
      "Runtime handler to use. Available options are defined by the container runtime.");
  run_cmd->add_option("-t,--timeout", run->timeout,
                      "Seconds to wait for a container create request before cancelling the "
                      "request (a duration, e.g. 30s)");
  run_cmd->add_option("args", run->args, "container-config.[json|yaml] pod-config.[json|yaml]");
  sink.Bind(run_cmd, [run](CommandEnv& env) { return RunRun(env, *run); });

  auto exec = std::make_shared<ExecOptions>();
  CLI::App* exec_cmd = app.add_subcommand("exec", "Run a command in a running container");
  exec_cmd->add_flag("-s,--sync", exec->sync, "Run the command synchronously");
  exec_cmd->add_option("--timeout", exec->timeout, "Timeout in seconds");
  exec_cmd->add_flag("-t,--tty", exec->tty, "Allocate a pseudo-TTY");
  exec_cmd->add_flag("-i,--interactive", exec->interactive, "Keep STDIN open");
  // Like Go's flag parsing, options end at the container id: everything
  // after it is the command and its own arguments.
  // (fallthrough would hand the id to the top-level command instead).
  exec_cmd->prefix_command();
  exec_cmd->fallthrough(false);
  exec_cmd->footer("Arguments: CONTAINER-ID COMMAND [ARG...]");
  exec->cmd = exec_cmd;
  sink.Bind(exec_cmd, [exec](CommandEnv& env) { return RunExec(env, *exec); });

  auto logs = std::make_shared<LogsOptions>();
  CLI::App* logs_cmd = app.add_subcommand("logs", "Fetch the logs of a container");
  logs_cmd->add_flag("-f,--follow", logs->follow, "Follow log output");
  logs_cmd->add_flag(
      "-p,--previous", logs->previous,
      "Print the logs for the previous instance of the container in a pod if it exists");
  logs_cmd->add_option("--tail", logs->tail,
                       "Number of lines to show from the end of the logs. Defaults to all");
  logs_cmd->add_option("--limit-bytes", logs->limit_bytes,
                       "Maximum bytes of logs to return. Defaults to no limit");
  logs_cmd->add_option("--since", logs->since,
                       "Show logs since timestamp (e.g. 2013-01-02T13:23:37) or relative (e.g. "
                       "42m for 42 minutes)");
  logs_cmd->add_flag("-t,--timestamps", logs->timestamps, "Show timestamps");
  logs_cmd->add_option("container-id", logs->args, "CONTAINER-ID");
  sink.Bind(logs_cmd, [logs](CommandEnv& env) { return RunLogs(env, *logs); });
}

}  // namespace berth::ctl
