// version, info: the runtime-wide commands.
#include <memory>
#include <nlohmann/json.hpp>

#include "ctl/commands.h"
#include "ctl/go_json.h"
#include "ctl/output.h"

namespace berth::ctl {
namespace {

// The CRI API version crictl v1.26 asks for.
constexpr char kCriApiVersion[] = "v1";

Status RunVersion(CommandEnv& env) {
  // Like crictl, an unusable endpoint is reported before any RPC context.
  RETURN_IF_ERROR(env.client.runtime().status());
  StatusOr<cri::VersionResponse> r = Version(env.client, kCriApiVersion);
  if (!r.ok()) return Annotate(r.status(), "getting the runtime version");
  // Go's Println puts a space between its operands, hence two spaces.
  env.out << "Version:  " << r->version() << "\n"
          << "RuntimeName:  " << r->runtime_name() << "\n"
          << "RuntimeVersion:  " << r->runtime_version() << "\n"
          << "RuntimeApiVersion:  " << r->runtime_api_version() << "\n";
  return OkStatus();
}

struct InfoOptions {
  std::string output = "json";
  bool quiet = false;
  std::string tmpl;
};

Status RunInfo(CommandEnv& env, const InfoOptions& o) {
  RETURN_IF_ERROR(env.client.runtime().status());
  StatusOr<cri::StatusResponse> r = RuntimeStatus(env.client, !o.quiet);
  if (!r.ok()) return Annotate(r.status(), "getting status of runtime");
  // As crictl 1.29 and later: the runtime handlers and the runtime-wide
  // features beside the status, as Go's encoding/json writes the CRI structs
  // (snake_case, false and empty fields left out), each only when the
  // runtime sent it; an info key of the same name wins, as in crictl.
  std::map<std::string, std::string> info = ToStdMap(r->info());
  if (r->runtime_handlers_size() > 0 && !info.contains("runtimeHandlers")) {
    nlohmann::json handlers = nlohmann::json::array();
    for (const auto& h : r->runtime_handlers()) {
      nlohmann::json out = nlohmann::json::object();
      if (!h.name().empty()) out["name"] = h.name();
      if (h.has_features()) {
        nlohmann::json f = nlohmann::json::object();
        if (h.features().recursive_read_only_mounts()) f["recursive_read_only_mounts"] = true;
        if (h.features().user_namespaces()) f["user_namespaces"] = true;
        out["features"] = f;
      }
      handlers.push_back(out);
    }
    info["runtimeHandlers"] = handlers.dump();
  }
  if (r->has_features() && !info.contains("features")) {
    nlohmann::json f = nlohmann::json::object();
    if (r->features().supplemental_groups_policy()) f["supplemental_groups_policy"] = true;
    if (r->features().user_namespaces_host_network()) f["user_namespaces_host_network"] = true;
    info["features"] = f.dump();
  }
  StatusOr<std::string> text = StatusInfoOutput(MarshalProtoJson(r->status()), info, o.output);
  if (!text.ok()) return Annotate(text.status(), "getting status of runtime");
  env.out << *text;
  return OkStatus();
}

}  // namespace

void AddRuntimeCommands(CLI::App& app, CommandSink& sink) {
  CLI::App* version = app.add_subcommand("version", "Display runtime version information");
  sink.Bind(version, RunVersion);

  auto info_opts = std::make_shared<InfoOptions>();
  CLI::App* info = app.add_subcommand("info", "Display information of the container runtime");
  info->add_option("-o,--output", info_opts->output, "Output format, One of: json|yaml|go-template")
      ->capture_default_str();
  info->add_flag("-q,--quiet", info_opts->quiet, "Do not show verbose information");
  info->add_option("--template", info_opts->tmpl,
                   "The template string is only used when output is go-template (not supported "
                   "by berthctl)");
  sink.Bind(info, [info_opts](CommandEnv& env) { return RunInfo(env, *info_opts); });
}

}  // namespace berth::ctl
