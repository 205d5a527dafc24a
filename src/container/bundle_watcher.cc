#include "container/bundle_watcher.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "monitor/protocol.h"

namespace berth::container {

StatusOr<std::unique_ptr<BundleWatcher>> BundleWatcher::Start(Callbacks callbacks) {
  std::unique_ptr<BundleWatcher> w(new BundleWatcher(std::move(callbacks)));
  w->inotify_ = UniqueFd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!w->inotify_.valid()) return ErrnoStatus(errno, "inotify_init1 for container bundles");
  w->stop_ = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!w->stop_.valid()) return ErrnoStatus(errno, "eventfd for the bundle watcher");
  w->thread_ = std::thread([p = w.get()] { p->Run(); });
  return w;
}

BundleWatcher::~BundleWatcher() {
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

Status BundleWatcher::Watch(const std::string& id, const std::filesystem::path& bundle) {
  // IN_MOVED_TO: the monitor writes both files atomically by rename.
  int wd = ::inotify_add_watch(inotify_.get(), bundle.c_str(), IN_MOVED_TO | IN_ONLYDIR);
  if (wd < 0) {
    int err = errno;
    if (err == ENOSPC) {
      return ResourceExhaustedError(
          StrCat("watch bundle ", bundle.string(),
                 ": inotify watch limit reached (raise fs.inotify.max_user_watches)"));
    }
    return ErrnoStatus(err, StrCat("watch bundle ", bundle.string()));
  }
  std::lock_guard lock(mu_);
  // The same directory watched again returns the same descriptor.
  ids_[wd] = id;
  wds_[id] = wd;
  return OkStatus();
}

void BundleWatcher::Unwatch(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = wds_.find(id);
  if (it == wds_.end()) return;
  ::inotify_rm_watch(inotify_.get(), it->second);  // the kernel then queues IN_IGNORED
  ids_.erase(it->second);
  wds_.erase(it);
}

size_t BundleWatcher::watched() const {
  std::lock_guard lock(mu_);
  return wds_.size();
}

void BundleWatcher::Run() {
  alignas(inotify_event) char buf[16 * 1024];
  for (;;) {
    pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("event=bundle_watcher_failed error=\"poll: {}\"", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    std::vector<std::pair<std::string, std::string>> hits;  // (id, file)
    bool overflow = false;
    for (;;) {
      ssize_t len = ::read(inotify_.get(), buf, sizeof buf);
      if (len < 0 && errno == EINTR) continue;
      if (len <= 0) break;
      std::lock_guard lock(mu_);
      for (char* p = buf; p < buf + len;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + ev->len;
        if (ev->mask & IN_Q_OVERFLOW) {
          overflow = true;
          continue;
        }
        if (ev->mask & IN_IGNORED) {
          // The directory went away (container removed) or was unwatched.
          auto it = ids_.find(ev->wd);
          if (it != ids_.end()) {
            wds_.erase(it->second);
            ids_.erase(it);
          }
          continue;
        }
        if (ev->len == 0) continue;
        std::string name(ev->name);
        if (name != monitor::kDefaultExitFile && name != monitor::kDefaultOomFile) continue;
        auto it = ids_.find(ev->wd);
        if (it != ids_.end()) hits.emplace_back(it->second, name);
      }
    }
    if (overflow) {
      spdlog::warn("event=bundle_watcher_overflow detail=\"inotify queue overflowed; rescanning\"");
      if (callbacks_.on_overflow) callbacks_.on_overflow();
    }
    for (const auto& [id, file] : hits) {
      if (callbacks_.on_file) callbacks_.on_file(id, file);
    }
  }
}

}  // namespace berth::container
