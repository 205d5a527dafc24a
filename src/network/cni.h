// Pod networking through CNI plugins (CNI spec 1.0.0; configs of versions
// 0.4.0, 0.3.x and 0.2.0/0.1.0 work as well).
//
// SetUpPod runs ADD for two networks, in this order:
//   1. the built-in loopback network
//      {"cniVersion":"1.0.0","name":"cni-loopback","plugins":[{"type":"loopback"}]}
//      with CNI_IFNAME=lo, which brings `lo` up in the pod's namespace;
//   2. the default network of the CNI config directory (LoadDefaultNetwork),
//      with CNI_IFNAME=<options.ifname>, plugin after plugin, each getting the
//      previous plugin's result as prevResult.
// TearDownPod runs DEL for both, main network first, each list in reverse
// plugin order.
//
// Every plugin is executed with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
// CNI_IFNAME, CNI_PATH (the bin dirs joined by ':') and
//   CNI_ARGS=K8S_POD_NAMESPACE=<ns>;K8S_POD_NAME=<name>;
//            K8S_POD_INFRA_CONTAINER_ID=<id>;K8S_POD_UID=<uid>;IgnoreUnknown=1
// on top of the daemon's own environment (plugins need PATH, e.g. portmap for
// iptables). Its stdin is the plugin's entry of the list with "name" and
// "cniVersion" of the list, "prevResult" when there is one, and
// "runtimeConfig": {"portMappings": [...]} when the plugin declares
// "capabilities": {"portMappings": true}.
//
// Results are cached on disk, one JSON file per network attachment, at
//   <cache_dir>/results/<network name>-<container id>-<ifname>
// holding {"kind":"cniCacheV1","containerId","ifName","networkName",
// "config" (the conflist as a JSON object, not base64 as libcni writes it),
// "cniArgs","capabilityArgs","result"}. The layout is libcni's, so DEL works
// after a daemon restart and even when the config directory changed since.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/keyed_mutex.h"
#include "common/status.h"
#include "network/cni_config.h"

namespace berth::network {

struct PortMapping {
  int32_t host_port = 0;  // mappings with host_port <= 0 are not passed to plugins (as in the CRI)
  int32_t container_port = 0;
  std::string protocol = "tcp";  // "tcp", "udp" or "sctp"; case-insensitive
  std::string host_ip;           // empty: all host addresses
};

struct PodNetworkRequest {
  std::string container_id;  // the sandbox id: CNI_CONTAINERID and the cache key
  // The pod's network namespace path (CNI_NETNS). Required for SetUpPod. For
  // TearDownPod it may name a namespace that no longer exists (it is passed
  // as given; plugins must tolerate that) or be empty.
  std::string netns_path;
  std::string pod_name;
  std::string pod_namespace;
  std::string pod_uid;
  std::vector<PortMapping> port_mappings;
};

struct NetworkResult {
  // The pod's addresses on the main network's interface, without prefix
  // length: `ip` is the first IPv4 address (or the first address when there
  // is no IPv4), `additional_ips` the others in result order.
  std::string ip;
  std::vector<std::string> additional_ips;
  std::string network_name;
  std::string cni_version;
  std::string raw;  // the main network's final result JSON
};

// Extracts the addresses of interface `ifname` from a CNI result: `ips`
// (0.3.0 and later; an entry whose "interface" index names another interface
// or a host-side one is skipped) or `ip4`/`ip6` (0.1.0, 0.2.0).
// INVALID_ARGUMENT if the JSON is not a result; a result without addresses
// is OK and gives an empty `ip`.
StatusOr<NetworkResult> ParseCniResult(std::string_view result_json, std::string_view ifname);

struct CniOptions {
  std::filesystem::path conf_dir;     // e.g. /etc/cni/net.d
  std::vector<std::string> bin_dirs;  // e.g. {"/opt/cni/bin", "/usr/lib/cni"}; searched in order
  std::filesystem::path cache_dir;    // e.g. /var/lib/berth/cni
  std::string ifname = "eth0";
  std::chrono::milliseconds plugin_timeout = std::chrono::seconds(60);  // per plugin run
};

// Thread-safe: calls for different container ids run concurrently, calls for
// the same id one after another. Holds no resources besides the files under
// cache_dir, which outlive the object.
class CniManager {
 public:
  explicit CniManager(CniOptions options);
  ~CniManager();
  CniManager(const CniManager&) = delete;
  CniManager& operator=(const CniManager&) = delete;

  // OK when a usable default network exists (NetworkReady); otherwise
  // LoadDefaultNetwork's FAILED_PRECONDITION.
  Status Ready() const;

  // ADD for loopback and the default network. On any failure everything that
  // was added is deleted again (DEL of both lists) before returning the error,
  // which names the plugin, the network and the plugin's own message.
  // ALREADY_EXISTS if a cached result for this container and network exists
  // (tear down first). FAILED_PRECONDITION if there is no usable config.
  StatusOr<NetworkResult> SetUpPod(const PodNetworkRequest& request);

  // DEL for every network this container was added to, found through the
  // cache (config, port mappings and result are taken from there, so a
  // changed config directory or a restart does not matter); without a cache
  // entry, DEL of the current default network with the request alone. Then
  // the cache entries are removed. An unreadable cache entry counts as
  // missing (and is removed once DEL succeeded), so it cannot block teardown.
  // Idempotent, so StopPodSandbox can call it any number of times (the CRI
  // requires StopPodSandbox to succeed for already stopped or removed
  // sandboxes): a missing cache, a removed namespace and a second call are
  // all OK. If no cache exists and no usable config either, there is nothing
  // to run and it returns OK. A failing DEL keeps the cache entry so that a
  // later call retries.
  Status TearDownPod(const PodNetworkRequest& request);

  // The main network's result of a pod set up earlier (read from the cache,
  // so it survives restarts). NOT_FOUND if there is none.
  StatusOr<NetworkResult> CachedResult(const std::string& container_id) const;

 private:
  const CniOptions options_;
  std::unique_ptr<KeyedMutex> locks_;  // per pod (container id)
};

}  // namespace berth::network
