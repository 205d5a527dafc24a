// Stop signal names. The real-time names follow moby's (and so containerd's)
// table: SIGRTMIN is glibc's 34, SIGRTMIN+15 is 49, SIGRTMAX-14 is 50 and
// SIGRTMAX is 64, which is also how the CRI's Signal enum counts them.
#include <signal.h>

#include <map>
#include <string>

#include "container/container_manager.h"

namespace berth::container {

namespace {

constexpr int kRtMin = 34, kRtMax = 64;

const std::map<std::string, int, std::less<>>& Signals() {
  static const auto* const kSignals = new std::map<std::string, int, std::less<>>{
      {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"BUS", SIGBUS},       {"CHLD", SIGCHLD},
      {"CLD", SIGCHLD},  {"CONT", SIGCONT}, {"FPE", SIGFPE},       {"HUP", SIGHUP},
      {"ILL", SIGILL},   {"INT", SIGINT},   {"IO", SIGIO},         {"IOT", SIGABRT},
      {"KILL", SIGKILL}, {"PIPE", SIGPIPE}, {"POLL", SIGIO},       {"PROF", SIGPROF},
      {"PWR", SIGPWR},   {"QUIT", SIGQUIT}, {"SEGV", SIGSEGV},     {"STKFLT", SIGSTKFLT},
      {"STOP", SIGSTOP}, {"SYS", SIGSYS},   {"TERM", SIGTERM},     {"TRAP", SIGTRAP},
      {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
      {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"VTALRM", SIGVTALRM}, {"WINCH", SIGWINCH},
      {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ}};
  return *kSignals;
}

// "15" -> 15; -1 unless all digits, at most two.
int SmallNumber(std::string_view s) {
  if (s.empty() || s.size() > 2) return -1;
  int n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

StatusOr<int> ParseSignal(std::string_view name) {
  std::string_view s = name;
  if (s.starts_with("SIG")) s.remove_prefix(3);
  if (auto it = Signals().find(s); it != Signals().end()) return it->second;
  int n = -1;
  if (s.starts_with("RTMIN")) {
    std::string_view rest = s.substr(5);
    if (rest.empty()) {
      n = kRtMin;
    } else if (rest[0] == '+' && SmallNumber(rest.substr(1)) >= 0) {
      n = kRtMin + SmallNumber(rest.substr(1));
    }
  } else if (s.starts_with("RTMAX")) {
    std::string_view rest = s.substr(5);
    if (rest.empty()) {
      n = kRtMax;
    } else if (rest[0] == '-' && SmallNumber(rest.substr(1)) >= 0) {
      n = kRtMax - SmallNumber(rest.substr(1));
    }
  } else {
    n = SmallNumber(s);
  }
  if (n < 1 || n > kRtMax) return InvalidArgumentError(StrCat("unknown signal \"", name, "\""));
  return n;
}

std::string SignalName(int signal) {
  // First name in the table wins for aliases: the table lists CHLD before
  // CLD, and IO before POLL; ABRT is listed before IOT.
  static const auto* const kNames = [] {
    auto* m = new std::map<int, std::string>;
    for (const auto& [name, n] : Signals()) {
      if (name == "CLD" || name == "POLL" || name == "IOT") continue;
      (*m)[n] = StrCat("SIG", name);
    }
    return m;
  }();
  if (auto it = kNames->find(signal); it != kNames->end()) return it->second;
  if (signal == kRtMin) return "SIGRTMIN";
  if (signal == kRtMax) return "SIGRTMAX";
  if (signal > kRtMin && signal <= kRtMin + 15) return StrCat("SIGRTMIN+", signal - kRtMin);
  if (signal > kRtMin + 15 && signal < kRtMax) return StrCat("SIGRTMAX-", kRtMax - signal);
  return "";
}

std::string EffectiveStopSignal(const std::string& configured, const std::string& image) {
  for (const std::string* s : {&configured, &image}) {
    if (s->empty()) continue;
    auto n = ParseSignal(*s);
    if (!n.ok()) continue;  // an image's unusable StopSignal: stopped with SIGTERM
    std::string name = SignalName(*n);
    return name.empty() ? StrCat(*n) : name;
  }
  return "SIGTERM";
}

}  // namespace berth::container
