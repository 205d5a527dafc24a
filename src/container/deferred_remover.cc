#include "container/deferred_remover.h"

#include <spdlog/spdlog.h>
#include <stdio.h>

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
    for (const auto& e : fs::directory_iterator(dir, ec)) queue_.push_back(e.path());
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
      {
        std::lock_guard lock(mu_);
        queue_.push_back(to);
      }
      cv_.notify_all();
      return OkStatus();
    }
    if (errno != EXDEV && errno != ENOENT) break;  // ENOENT: that trash dir is gone
  }
  return RemoveAll(path);
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
    fs::path next = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    Status s = RemoveAll(next);
    if (!s.ok())
      spdlog::warn("event=trash_remove_failed path={} error=\"{}\"", next.string(), s.message());
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace berth::container
