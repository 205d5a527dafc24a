#include "container/deferred_remover.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <stdio.h>
#include <sys/mount.h>

#include <cerrno>

#include "common/fs.h"

namespace berth::container {

namespace fs = std::filesystem;

DeferredRemover::DeferredRemover(std::vector<fs::path> trash_dirs)
    : trash_dirs_(std::move(trash_dirs)) {
  for (const fs::path& dir : trash_dirs_) {
    Status s = MakeDirs(dir, 0700);
    if (!s.ok())
      spdlog::warn("event=trash_dir_failed dir={} error=\"{}\"", dir.string(), s.message());
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) queue_.push_back({{}, e.path()});
  }
  worker_ = std::thread([this] { Run(); });
}

DeferredRemover::~DeferredRemover() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

Status DeferredRemover::Discard(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) return OkStatus();
  const std::string name = StrCat(path.filename().string(), "-", RandomHex(4));
  for (const fs::path& dir : trash_dirs_) {
    const fs::path to = dir / name;
    if (::rename(path.c_str(), to.c_str()) == 0) {
      Enqueue({{}, to});
      return OkStatus();
    }
    if (errno != EXDEV && errno != ENOENT) break;  // ENOENT: that trash dir is gone
  }
  return RemoveAll(path);
}

Status DeferredRemover::DetachMount(const fs::path& target) {
  // O_PATH: pins the mount on top of `target` without opening a file in it.
  UniqueFd pin(::open(target.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!pin.valid() && errno != ENOENT && errno != ENOTDIR) {
    return ErrnoStatus(errno, StrCat("open ", target.string()));
  }
  if (::umount2(target.c_str(), MNT_DETACH) != 0) {
    if (errno == EINVAL || errno == ENOENT) return OkStatus();  // not a mount point
    return ErrnoStatus(errno, StrCat("unmount ", target.string()));
  }
  if (pin.valid()) Enqueue({std::move(pin), {}});
  return OkStatus();
}

void DeferredRemover::Enqueue(Job job) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_all();
}

void DeferredRemover::Flush() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

void DeferredRemover::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop_, and nothing left to delete
    Job next = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    next.pinned_mount.Reset();  // the detached file system's last reference
    if (!next.tree.empty()) {
      Status s = RemoveAll(next.tree);
      if (!s.ok()) {
        spdlog::warn("event=trash_remove_failed path={} error=\"{}\"", next.tree.string(),
                     s.message());
      }
    }
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace berth::container
