// Deletes directory trees off the caller's path: Discard renames a tree into a
// trash directory on the same filesystem (one rename, whatever the tree holds)
// and a worker thread deletes it. RemoveContainer uses it for the bundle and
// the writable layer, whose deletion costs a journal update per file and
// grows with what the container wrote; containerd likewise leaves snapshot
// deletion to its garbage collector.
//
// DetachMount takes a mount out of the mount table at once and leaves the
// file system's teardown to the same worker: the last reference to an
// overlay's superblock syncs its whole upper file system (the host's), which
// under write load costs tens of milliseconds that RemoveContainer need not
// wait for.
//
// Thread-safe. The destructor deletes what is still queued, then joins the
// worker. What a crash leaves in the trash directories is deleted by the next
// instance (the constructor queues it).
#pragma once

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/status.h"

namespace berth::container {

class DeferredRemover {
 public:
  // `trash_dirs` are created if missing; anything in them is queued.
  explicit DeferredRemover(std::vector<std::filesystem::path> trash_dirs);
  ~DeferredRemover();
  DeferredRemover(const DeferredRemover&) = delete;
  DeferredRemover& operator=(const DeferredRemover&) = delete;

  // Moves `path` into the trash directory on its filesystem (the first of
  // `trash_dirs` a rename works to) and queues its deletion. OK when `path`
  // does not exist. When no rename works it is deleted here.
  Status Discard(const std::filesystem::path& path);
  // Unmounts `target` lazily (MNT_DETACH) while a file descriptor pins the
  // mount, and queues that descriptor: the worker closes it, so the file
  // system's final sync and teardown run there, before anything discarded
  // after this call is deleted. No process sees the mount after this returns
  // (a crash closes the descriptor too). OK when `target` is not a mount
  // point or does not exist.
  Status DetachMount(const std::filesystem::path& target);
  // Blocks until the queue is empty (tests, shutdown).
  void Flush();

 private:
  // One queued job: a pinned, detached mount to release, or a tree to delete.
  struct Job {
    UniqueFd pinned_mount;
    std::filesystem::path tree;
  };
  void Run();
  void Enqueue(Job job);

  std::vector<std::filesystem::path> trash_dirs_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread worker_;  // last: started once the members above exist
};

}  // namespace berth::container
