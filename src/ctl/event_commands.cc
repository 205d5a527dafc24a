// events: follows GetContainerEvents, as crictl's `events` (cri-tools 1.27+;
// crictl 1.26 has no such verb) does: one JSON object (default) or YAML
// document per event, until the runtime ends the stream or the user stops
// the command.
#include <memory>

#include "ctl/commands.h"
#include "ctl/go_json.h"
#include "ctl/output.h"
#include "ctl/table.h"

namespace berth::ctl {
namespace {

struct EventsOptions {
  std::string output = "json";
  std::string tmpl;
};

Status RunEvents(CommandEnv& env, const EventsOptions& o) {
  if (o.output == "json" || o.output == "yaml") {
    if (!o.tmpl.empty()) {
      return InvalidArgumentError(
          StrCat("template can't be used with ", GoQuote(o.output), " format"));
    }
  } else if (o.output == "go-template") {
    return UnimplementedError("go-template output is not supported by berthctl; use -o json");
  } else {
    return InvalidArgumentError(StrCat("don't support ", GoQuote(o.output), " format"));
  }
  ASSIGN_OR_RETURN(cri::RuntimeService::Stub * stub, env.client.runtime());
  // No deadline: the stream lasts until either side ends it.
  grpc::ClientContext ctx;
  cri::GetEventsRequest req;
  std::unique_ptr<grpc::ClientReader<cri::ContainerEventResponse>> reader =
      stub->GetContainerEvents(&ctx, req);
  cri::ContainerEventResponse event;
  while (reader->Read(&event)) {
    if (o.output == "json") {
      env.out << ProtoAsJson(event);
    } else {
      StatusOr<std::string> yaml = ProtoAsYaml(event);
      if (!yaml.ok()) {
        env.out << "failed to format container event with the error: " << yaml.status().message()
                << "\n";
      } else {
        env.out << *yaml;
      }
    }
    env.out.flush();  // a reader of a pipe sees each event at once
  }
  grpc::Status s = reader->Finish();
  if (!s.ok()) return Annotate(FromGrpcStatus(s), "getting container events");
  return OkStatus();
}

}  // namespace

void AddEventCommands(CLI::App& app, CommandSink& sink) {
  auto opts = std::make_shared<EventsOptions>();
  CLI::App* events = app.add_subcommand("events", "Stream the events of containers");
  events->alias("event");
  events->add_option("-o,--output", opts->output, "Output format, One of: json|yaml|go-template")
      ->capture_default_str();
  events->add_option("--template", opts->tmpl,
                     "The template string is only used when output is go-template (not supported "
                     "by berthctl)");
  sink.Bind(events, [opts](CommandEnv& env) { return RunEvents(env, *opts); });
}

}  // namespace berth::ctl
