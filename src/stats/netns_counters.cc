#include "stats/netns_counters.h"

#include <fcntl.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "common/fs.h"

namespace berth::stats {

namespace {

int64_t WallNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

StatusOr<NetworkSample> ReadHere(const std::string& path) {
  UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) return ErrnoStatus(errno, StrCat("open network namespace ", path));
  if (::setns(ns.get(), CLONE_NEWNET) != 0) {
    return ErrnoStatus(errno, StrCat("join network namespace ", path));
  }
  NetworkSample sample;
  sample.wall_ns = WallNs();
  ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/thread-self/net/dev"));
  for (InterfaceCounters& c : ParseNetDev(text)) {
    if (c.name != "lo") sample.interfaces.push_back(std::move(c));
  }
  return sample;
}

}  // namespace

std::vector<StatusOr<NetworkSample>> ReadNetworkNamespaces(const std::vector<std::string>& paths) {
  std::vector<StatusOr<NetworkSample>> out;
  if (paths.empty()) return out;
  out.reserve(paths.size());
  std::thread reader([&] {
    for (const std::string& p : paths) out.push_back(ReadHere(p));
  });
  reader.join();
  return out;
}

}  // namespace berth::stats
