// How berthctl commands plug into the CLI. Each command group (runtime,
// images, later pods, containers, streaming) lives in its own file and adds
// its subcommands with one Add*Commands function; app.cc calls them all.
// A subcommand's CLI11 callback only records which Action to run; the action
// runs after the global flags are resolved, with a CommandEnv.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
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
  // Standard error, for output that crictl writes there (stderr log lines
  // of `logs`); null means `out`.
  std::ostream* err = nullptr;
  // out, in and err are the process's stdio: streaming commands use file
  // descriptors 0-2 and the terminal directly.
  bool real_stdio = false;
  std::ostream& err_stream() { return err != nullptr ? *err : out; }
};

// A command body. Its error is printed by the app as a fatal log line (the
// message is what crictl would print) and the process exits 1. An error with
// an empty message exits 1 silently: the command printed its diagnostics
// itself, where crictl does not use its log (Go's log.Fatalf, urfave/cli's
// one line per error of an aggregate).
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
// events
void AddEventCommands(CLI::App& app, CommandSink& sink);
// pull, images, inspecti, rmi, imagefsinfo
void AddImageCommands(CLI::App& app, CommandSink& sink);
// runp, stopp, rmp, pods, inspectp
void AddPodCommands(CLI::App& app, CommandSink& sink);
// create, start, stop, rm, ps, inspect, update, run, exec, logs
void AddContainerCommands(CLI::App& app, CommandSink& sink);
// attach, port-forward (exec's streaming half is RunStreamingExec)
void AddStreamCommands(CLI::App& app, CommandSink& sink);
// exec without -s: runs `cmd` through the runtime's streaming server.
Status RunStreamingExec(CommandEnv& env, const std::string& id, const std::vector<std::string>& cmd,
                        bool tty, bool interactive);
// stats, statsp, metricdescs, metricsp
void AddStatsCommands(CLI::App& app, CommandSink& sink);
// completion bash|zsh: scripts generated from `app`'s subcommands and flags.
void AddCompletionCommands(CLI::App& app, CommandSink& sink);

// Loads a PodSandboxConfig from a JSON or YAML file (crictl's
// loadPodSandboxConfig; snake_case and lowerCamelCase keys both work).
StatusOr<::runtime::v1::PodSandboxConfig> LoadPodSandboxConfig(const std::string& path);

// Loads a ContainerConfig the same way (crictl's loadContainerConfig).
StatusOr<::runtime::v1::ContainerConfig> LoadContainerConfig(const std::string& path);

// crictl's getAuth for pulls: --username prompts for the password through
// env.read_password; --creds ("user[:password]") and --auth exclude each
// other. Returns false (and leaves `auth` alone) when none is given.
StatusOr<bool> FillPullAuth(CommandEnv& env, const std::string& creds, const std::string& auth,
                            const std::string& username, ::runtime::v1::AuthConfig& out);

// A Go duration given to a command flag (urfave/cli's DurationFlag), e.g.
// "30s"; an unparsable value reads "invalid value \"x\" for flag -<flag>: parse
// error".
StatusOr<std::chrono::milliseconds> ParseDurationFlag(std::string_view flag,
                                                      const std::string& value);

// Prints `msg` on env's stderr the way Go's log.Fatalf does ("2006/01/02
// 15:04:05 msg", local time) and returns the silent error.
Status GoLogFatal(CommandEnv& env, std::string_view msg);

// crictl's parseLabelStringSlice: "k=v" items into a map; an item without
// exactly one '=' is "incorrectly specified label: <item>".
StatusOr<std::map<std::string, std::string>> ParseLabels(const std::vector<std::string>& items);

}  // namespace berth::ctl
