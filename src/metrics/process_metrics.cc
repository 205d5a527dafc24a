#include "metrics/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace berth::metrics {

namespace {

std::string Slurp(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Seconds since the epoch at which the host booted ("btime" of /proc/stat).
std::optional<uint64_t> BootTime() {
  std::string text = Slurp("/proc/stat");
  size_t pos = text.find("\nbtime ");
  if (pos == std::string::npos) return std::nullopt;
  return std::strtoull(text.c_str() + pos + 7, nullptr, 10);
}

void AddGauge(std::vector<Family>& out, const char* name, const char* help, double v,
              MetricType type = MetricType::kGauge) {
  out.push_back({name, help, type, {{"", {}, v}}});
}

}  // namespace

std::optional<ProcStat> ParseProcStat(std::string_view text) {
  // "pid (comm) state ppid ...": comm ends at the last ')'.
  size_t close = text.rfind(')');
  if (close == std::string_view::npos || close + 2 >= text.size()) return std::nullopt;
  std::string rest(text.substr(close + 2));
  std::istringstream in(rest);
  std::vector<std::string> f;  // f[0] is field 3 (state)
  std::string tok;
  while (in >> tok) f.push_back(tok);
  if (f.size() < 22) return std::nullopt;
  auto num = [&](size_t field) -> std::optional<uint64_t> {
    const std::string& s = f[field - 3];
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    return std::strtoull(s.c_str(), nullptr, 10);
  };
  ProcStat st;
  auto utime = num(14), stime = num(15), threads = num(20), start = num(22), vsize = num(23),
       rss = num(24);
  if (!utime || !stime || !threads || !start || !vsize || !rss) return std::nullopt;
  st.utime_ticks = *utime;
  st.stime_ticks = *stime;
  st.threads = *threads;
  st.start_ticks = *start;
  st.vsize_bytes = *vsize;
  st.rss_pages = *rss;
  return st;
}

void CollectProcessMetrics(std::vector<Family>& out) {
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (auto st = ParseProcStat(Slurp("/proc/self/stat")); st && ticks > 0 && page > 0) {
    AddGauge(out, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
             static_cast<double>(st->utime_ticks + st->stime_ticks) / static_cast<double>(ticks),
             MetricType::kCounter);
    AddGauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
             static_cast<double>(st->rss_pages) * static_cast<double>(page));
    AddGauge(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
             static_cast<double>(st->vsize_bytes));
    AddGauge(out, "process_threads", "Number of OS threads in the process.",
             static_cast<double>(st->threads));
    if (auto boot = BootTime()) {
      AddGauge(out, "process_start_time_seconds",
               "Start time of the process since unix epoch in seconds.",
               static_cast<double>(*boot) +
                   static_cast<double>(st->start_ticks) / static_cast<double>(ticks));
    }
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    int n = 0;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
    AddGauge(out, "process_open_fds", "Number of open file descriptors.",
             n - 1);  // minus the DIR's own
  }
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    AddGauge(out, "process_max_fds", "Maximum number of open file descriptors.",
             static_cast<double>(lim.rlim_cur));
  }
}

}  // namespace berth::metrics
