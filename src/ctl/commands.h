// How berthctl commands plug into the CLI. Each command group (runtime,
// images, later pods, containers, streaming) lives in its own file and adds
// its subcommands with one Add*Commands function; app.cc calls them all.
// A subcommand's CLI11 callback only records which Action to run; the action
// runs after the global flags are resolved, with a CommandEnv.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <istream>
#include <ostream>
#include <string>
#include <string_view>

#include "common/status.h"
#include "ctl/client.h"
#include "ctl/log.h"

namespace berth::ctl {

// What a running command may use. Owned by the app for one invocation.
struct CommandEnv {
  std::ostream& out;
  std::istream& in;
  Logger& log;
  CriClient& client;
  // Reads a secret after printing `prompt` (no echo on a terminal).
  std::function<StatusOr<std::string>(std::string_view prompt)> read_password;
  // Shows the help text of the command being run (crictl does this for
  // wrong argument counts, then exits 0).
  std::function<void()> show_help;
};

// A command body. Its error is printed by the app as a fatal log line (the
// message is what crictl would print) and the process exits 1.
using Action = std::function<Status(CommandEnv&)>;

// Receives the action of the subcommand the user picked.
class CommandSink {
 public:
  // Registers `action` to run when `sub` is selected on the command line.
  void Bind(CLI::App* sub, Action action);
  const Action* selected() const { return selected_ ? &selected_ : nullptr; }
  CLI::App* selected_app() const { return selected_app_; }

 private:
  Action selected_;
  CLI::App* selected_app_ = nullptr;
};

// version, info
void AddRuntimeCommands(CLI::App& app, CommandSink& sink);
// pull, images, inspecti, rmi, imagefsinfo
void AddImageCommands(CLI::App& app, CommandSink& sink);

// Loads a PodSandboxConfig from a JSON or YAML file (crictl's
// loadPodSandboxConfig; snake_case and lowerCamelCase keys both work).
StatusOr<::runtime::v1::PodSandboxConfig> LoadPodSandboxConfig(const std::string& path);

// crictl's parseLabelStringSlice: "k=v" items into a map; an item without
// exactly one '=' is "incorrectly specified label: <item>".
StatusOr<std::map<std::string, std::string>> ParseLabels(const std::vector<std::string>& items);

}  // namespace berth::ctl
