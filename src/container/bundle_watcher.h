// Watches container bundle directories for the files berth-monitor renames
// into place there: `exit` (the container's init exited) and `oom` (its
// memory cgroup counted a new OOM kill). One inotify instance and one thread
// for all containers: a watch costs the kernel about a kilobyte and berthd no
// file descriptor, there are no wake-ups but the renames themselves, and the
// files are the monitor's own record, written whether or not berthd is up, so
// nothing depends on PIDs that could be reused while berthd was down. See
// docs/architecture.md ("Exits and OOM kills arrive by themselves").
//
// Thread-safe. Callbacks run on the watcher's thread, without its lock held:
// they may call Watch/Unwatch.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/fs.h"
#include "common/status.h"

namespace berth::container {

class BundleWatcher {
 public:
  struct Callbacks {
    // `file` is "exit" or "oom".
    std::function<void(const std::string& id, const std::string& file)> on_file;
    // The kernel's event queue overflowed: events were lost, look at every
    // container again.
    std::function<void()> on_overflow;
  };

  static StatusOr<std::unique_ptr<BundleWatcher>> Start(Callbacks callbacks);
  ~BundleWatcher();  // stops and joins the thread
  BundleWatcher(const BundleWatcher&) = delete;
  BundleWatcher& operator=(const BundleWatcher&) = delete;

  // Starts watching container `id`'s bundle. A file that was already there
  // before the call produces no callback: the caller checks for it after
  // Watch returns.
  Status Watch(const std::string& id, const std::filesystem::path& bundle);
  // Stops watching `id` (no-op when not watched).
  void Unwatch(const std::string& id);
  size_t watched() const;

 private:
  explicit BundleWatcher(Callbacks callbacks) : callbacks_(std::move(callbacks)) {}
  void Run();

  Callbacks callbacks_;
  UniqueFd inotify_;
  UniqueFd stop_;  // eventfd
  mutable std::mutex mu_;
  std::map<int, std::string> ids_;  // watch descriptor -> container id
  std::map<std::string, int> wds_;  // container id -> watch descriptor
  std::thread thread_;
};

}  // namespace berth::container
