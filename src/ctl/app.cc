#include "ctl/app.h"

#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "ctl/commands.h"
#include "ctl/endpoint.h"
#include "ctl/go_time.h"
#include "ctl/table.h"

namespace berth::ctl {
namespace {

constexpr std::string_view kVersion = "0.1.0";

std::optional<std::string> RealGetenv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

// Prompts on stdout and reads one line from stdin with echo off when stdin
// is a terminal.
StatusOr<std::string> ReadPasswordFromTerminal(std::string_view prompt) {
  std::cout << prompt << std::flush;
  termios old{};
  bool tty = isatty(STDIN_FILENO) != 0 && tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  bool ok = static_cast<bool>(std::getline(std::cin, line));
  if (tty) tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
  std::cout << "\n" << std::flush;
  if (!ok) return InvalidArgumentError("no password given on standard input");
  return line;
}

}  // namespace

void CommandSink::Bind(CLI::App* sub, Action action) {
  sub->callback([this, sub, action = std::move(action)]() {
    selected_ = action;
    selected_app_ = sub;
  });
}

StatusOr<std::chrono::milliseconds> ParseDurationFlag(std::string_view flag,
                                                      const std::string& value) {
  StatusOr<std::chrono::milliseconds> d = ParseGoDuration(value);
  if (!d.ok()) {
    return InvalidArgumentError(
        StrCat("invalid value ", GoQuote(value), " for flag -", flag, ": parse error"));
  }
  return *d;
}

Status GoLogFatal(CommandEnv& env, std::string_view msg) {
  env.err_stream() << GoStdLogPrefix(std::chrono::system_clock::now()) << msg << "\n";
  return UnknownError("");
}

int Run(const std::vector<std::string>& args, const AppIO& io) {
  std::ostream& out = *io.out;
  std::ostream& err = *io.err;
  CLI::App app{"berthctl: client for CRI (crictl-compatible)", "berthctl"};
  app.set_version_flag("-v,--version", StrCat("berthctl version ", kVersion));
  app.require_subcommand(0, 1);
  app.fallthrough();

  std::string config, runtime_endpoint, image_endpoint, timeout;
  bool debug = false;
  auto* config_opt = app.add_option(
      "-c,--config", config,
      StrCat("Location of the client config file (default: ", kDefaultConfigPath,
             "; env CRI_CONFIG_FILE). If it does not exist, crictl.yaml next to the binary is "
             "used"));
  auto* runtime_opt =
      app.add_option("-r,--runtime-endpoint", runtime_endpoint,
                     StrCat("Endpoint of the CRI runtime service (default: ", kDefaultEndpoint,
                            "; env CONTAINER_RUNTIME_ENDPOINT)"));
  auto* image_opt =
      app.add_option("-i,--image-endpoint", image_endpoint,
                     "Endpoint of the CRI image service (default: the runtime endpoint; env "
                     "IMAGE_SERVICE_ENDPOINT)");
  auto* timeout_opt = app.add_option(
      "-t,--timeout", timeout,
      "Timeout of connecting to the server (e.g. 2s, 20s); 0 or less is set to the default (2s)");
  auto* debug_opt = app.add_flag("-D,--debug", debug, "Enable debug mode");
  for (CLI::Option* o : {config_opt, runtime_opt, image_opt, timeout_opt}) o->take_last();

  CommandSink sink;
  AddRuntimeCommands(app, sink);
  AddEventCommands(app, sink);
  AddImageCommands(app, sink);
  AddPodCommands(app, sink);
  AddContainerCommands(app, sink);
  AddStreamCommands(app, sink);
  AddStatsCommands(app, sink);
  AddCompletionCommands(app, sink);

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e, out, err);
    return code == 0 ? 0 : 1;
  }
  if (sink.selected() == nullptr) {
    out << app.help();
    return 0;
  }

  auto getenv = io.getenv ? io.getenv : RealGetenv;
  GlobalFlags flags;
  auto flag_or_env = [&](CLI::Option* opt, const std::string& value,
                         const char* env) -> std::optional<std::string> {
    if (opt->count() > 0) return value;
    return getenv(env);
  };
  flags.config = flag_or_env(config_opt, config, "CRI_CONFIG_FILE");
  flags.runtime_endpoint = flag_or_env(runtime_opt, runtime_endpoint, "CONTAINER_RUNTIME_ENDPOINT");
  flags.image_endpoint = flag_or_env(image_opt, image_endpoint, "IMAGE_SERVICE_ENDPOINT");
  if (timeout_opt->count() > 0) flags.timeout = timeout;
  if (debug_opt->count() > 0) flags.debug = debug;

  Logger log(err, io.err_is_terminal, flags.debug.value_or(false));
  std::optional<ConfigFile> file;
  StatusOr<ConfigFile> loaded =
      LoadConfigFile(flags.config.value_or(std::string(kDefaultConfigPath)), io.exe_dir);
  if (loaded.ok()) {
    file = *loaded;
  } else if (flags.config.has_value()) {
    // Only a config file the user named is required to load.
    log.Fatal(loaded.status().message());
    return 1;
  }
  StatusOr<Settings> settings = ResolveSettings(flags, file);
  if (!settings.ok()) {
    log.Fatal(settings.status().message());
    return 1;
  }
  log.set_debug(settings->debug);

  CriClient client(*settings, log);
  CommandEnv env{out,    *io.in,           log,
                 client, io.read_password, [&out, &sink]() { out << sink.selected_app()->help(); },
                 &err};
  env.real_stdio = io.real_stdio;
  if (!env.read_password) {
    env.read_password = [&io, &out](std::string_view prompt) -> StatusOr<std::string> {
      out << prompt;
      std::string line;
      if (!std::getline(*io.in, line)) {
        return InvalidArgumentError("no password given on standard input");
      }
      out << "\n";
      return line;
    };
  }
  Status s = (*sink.selected())(env);
  out.flush();
  if (!s.ok()) {
    // An empty message: the command already printed its diagnostics.
    if (!s.message().empty()) log.Fatal(s.message());
    return 1;
  }
  return 0;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  AppIO io;
  io.out = &std::cout;
  io.err = &std::cerr;
  io.in = &std::cin;
  io.err_is_terminal = isatty(STDERR_FILENO) != 0;
  io.real_stdio = true;
  io.getenv = RealGetenv;
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  io.exe_dir = ec ? std::string(".") : exe.parent_path().string();
  io.read_password = ReadPasswordFromTerminal;
  return Run(args, io);
}

}  // namespace berth::ctl
