// Named network namespaces for pod sandboxes, kept alive by a bind mount of
// their nsfs file, the way `ip netns add` keeps them under /run/netns. An OCI
// runtime joins one by path ("network" namespace with "path" in config.json),
// and CNI plugins get the same path as CNI_NETNS.
//
// The namespace starts with only a down `lo`; the CNI loopback plugin (which
// CniManager always runs) brings it up.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string_view>

#include "common/fs.h"
#include "common/status.h"

namespace berth::network {

// Owns one directory of pinned network namespaces (e.g. <state>/netns).
//
// Like iproute2, Create() turns the directory into a mount point (a recursive
// bind mount of itself) with shared propagation, so that the unmount done by
// Remove() propagates into mount namespaces that were cloned after the bind
// (for example a container's, before pivot_root), and the namespace is freed.
//
// Thread-safe. Nothing is undone on destruction: namespaces outlive the
// object (and the daemon) until Remove().
class NetworkNamespaces {
 public:
  explicit NetworkNamespaces(std::filesystem::path dir);

  const std::filesystem::path& dir() const { return dir_; }
  // <dir>/<name>; does not check that it exists.
  std::filesystem::path PathOf(std::string_view name) const { return dir_ / name; }

  // Creates a new, empty network namespace pinned at <dir>/<name> and returns
  // that path. ALREADY_EXISTS if the file exists; INVALID_ARGUMENT for a name
  // that is empty or not a single path component. Leaves nothing behind on
  // failure. With `userns_path` (a pinned user namespace), the network
  // namespace is owned by that user namespace (see common/userns.h).
  StatusOr<std::filesystem::path> Create(std::string_view name,
                                         const std::filesystem::path& userns_path = {});

  // Remove(PathOf(name)).
  Status Remove(std::string_view name) const;

 private:
  Status PrepareDirLocked();

  const std::filesystem::path dir_;
  std::mutex mu_;
  bool dir_ready_ = false;  // guarded by mu_
};

// Unmounts (lazily, MNT_DETACH) and unlinks a pinned namespace file.
// Idempotent: a missing file, or one that is no longer a mount, is success.
// The namespace itself is freed by the kernel once no process, open file or
// other mount refers to it.
Status RemoveNetworkNamespace(const std::filesystem::path& path);

// Whether `path` currently is a network namespace file (an nsfs mount or
// /proc/<pid>/ns/net). NOT_FOUND if the path does not exist.
StatusOr<bool> IsNetworkNamespace(const std::filesystem::path& path);

// Runs `fn` on a fresh thread that has joined the network namespace at `path`
// (setns), waits for it and returns its status. The calling thread never
// changes namespace. Sockets created inside `fn` stay in that namespace after
// it returns, so a caller can, e.g., create a listening socket inside and
// accept on it from anywhere.
Status RunInNetworkNamespace(const std::filesystem::path& path, const std::function<Status()>& fn);

// A (blocking) TCP connection to 127.0.0.1:`port`, or to [::1]:`port` when nothing
// listens on the first, inside the network namespace at `netns_path` (the
// caller's own when empty). The sockets are created on a short-lived thread
// that joined the namespace and keep it; connecting happens on the calling
// thread. UNAVAILABLE when nothing listens on the port; DEADLINE_EXCEEDED
// when the connection is not accepted within `timeout` (a full backlog).
StatusOr<UniqueFd> ConnectLoopback(const std::filesystem::path& netns_path, uint16_t port,
                                   std::chrono::milliseconds timeout);

}  // namespace berth::network
