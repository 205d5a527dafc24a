// main() of berth-monitor. It lives beside the monitor (not in src/cmd) so the
// binary's small link line stays in one CMakeLists.txt.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "monitor/monitor.h"

namespace {

void CloseInheritedFds(int keep) {
  // Whatever the spawner leaked must not be held for the container's lifetime.
  if (keep < 0) {
    close_range(3, ~0U, 0);
    return;
  }
  if (keep > 3) close_range(3, static_cast<unsigned>(keep) - 1, 0);
  close_range(static_cast<unsigned>(keep) + 1, ~0U, 0);
}

const char* ErrnoDesc(int err) {
  const char* d = strerrordesc_np(err);
  return d != nullptr ? d : "unknown error";
}

void ReportEarly(int sync_fd, const std::string& msg) {
  std::string line = std::string(berth::monitor::kSyncError) + " berth-monitor: " + msg + "\n";
  std::string text = "berth-monitor: " + msg + "\n";
  ssize_t n = write(2, text.data(), text.size());
  if (sync_fd >= 0) n = write(sync_fd, line.data(), line.size());
  (void)n;
}

}  // namespace

int main(int argc, char** argv) {
  berth::monitor::MonitorConfig cfg;
  bool info_only = false;
  std::string err = berth::monitor::ParseMonitorArgs(argc, argv, &cfg, &info_only);
  if (info_only) return 0;
  if (!err.empty()) {
    ReportEarly(cfg.sync_fd, err);
    return 2;
  }
  CloseInheritedFds(cfg.sync_fd);
  // Detach: the spawner reaps this first process at once; the second one
  // leads a new session, so it is nobody's child and no signal to the
  // spawner's process group or session reaches it.
  pid_t pid = fork();
  if (pid < 0) {
    ReportEarly(cfg.sync_fd, std::string("fork: ") + ErrnoDesc(errno));
    return 1;
  }
  if (pid > 0) _exit(0);
  if (setsid() < 0) {
    ReportEarly(cfg.sync_fd, std::string("setsid: ") + ErrnoDesc(errno));
    _exit(1);
  }
  _exit(berth::monitor::RunMonitor(cfg));
}
