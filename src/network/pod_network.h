// The default pod network: when the kubelet tells the runtime its node's pod
// CIDR (CRI UpdateRuntimeConfig) and the CNI configuration directory holds no
// network config, berthd writes one for that CIDR from a template, so a
// single-node cluster needs no CNI add-on. containerd's `conf_template` is the
// model; Berth's templates use simple placeholders instead of Go templates:
//
//   {{.PodCIDR}}        the first CIDR, e.g. 10.244.0.0/24
//   {{.PodCIDRRanges}}  host-local "ranges", JSON: [[{"subnet":"10.244.0.0/24"}],
//                       [{"subnet":"fd00:10:244::/64"}]] (one range set per CIDR)
//   {{.Routes}}         JSON: [{"dst":"0.0.0.0/0"}] and/or [{"dst":"::/0"}], per family
//   {{.IPAMDataDir}}    where host-local keeps its leases (under berthd's state
//                       directory, so a reboot, which ends every pod, clears them)
//
// The built-in template is a bridge ("berth0", gateway, IP masquerading,
// hairpin) with host-local addresses, portmap for hostPort, and loopback.
// berthd brings up `lo` in every pod itself (network/cni.h); loopback is in
// the list anyway so that the file is a complete pod network for any runtime
// reading the directory (a second ADD of loopback passes the bridge's result
// on and changes nothing).
#pragma once

#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace berth::network {

// The file berthd writes into the CNI configuration directory. It sorts after
// the usual 10-<provider>.conflist names, so a CNI provider installed later
// takes precedence over it.
inline constexpr char kDefaultNetworkFile[] = "99-berth-default.conflist";

struct PodCidr {
  std::string cidr;  // canonical text, e.g. "10.244.0.0/24"
  bool ipv6 = false;
};

// Parses the kubelet's pod CIDR: one CIDR, or two of different families
// separated by a comma (dual stack). INVALID_ARGUMENT naming the bad part for
// anything else, including host bits set ("10.244.0.1/24").
StatusOr<std::vector<PodCidr>> ParsePodCidrs(std::string_view pod_cidr);

struct PodNetworkParams {
  std::vector<PodCidr> cidrs;  // at least one
  std::string ipam_data_dir;
};

// The built-in template (JSON with the placeholders above).
std::string_view BuiltinPodNetworkTemplate();

// Replaces the placeholders. INVALID_ARGUMENT when the result is not a CNI
// network config list (named `source` in the message) or a placeholder is
// unknown, so a broken template is caught before it is written.
StatusOr<std::string> RenderPodNetwork(std::string_view tmpl, const PodNetworkParams& params,
                                       std::string_view source);

struct DefaultPodNetworkOptions {
  bool enabled = true;
  std::filesystem::path conf_dir;       // the CNI configuration directory
  std::filesystem::path template_file;  // empty: the built-in template
  std::string ipam_data_dir;
};

// Writes the default network config for a pod CIDR. Thread-safe (one call at
// a time); holds no resources.
class DefaultPodNetwork {
 public:
  explicit DefaultPodNetwork(DefaultPodNetworkOptions options) : options_(std::move(options)) {}

  enum class Outcome {
    kDisabled,     // cni.default_network is off
    kNoCidr,       // the request named no pod CIDR
    kOtherConfig,  // the directory has a network config that berthd did not write
    kUnchanged,    // berthd's file already says this
    kWritten,      // written (or rewritten for a new CIDR)
  };
  struct Result {
    Outcome outcome;
    std::filesystem::path file;  // kWritten, kUnchanged: the config; kOtherConfig: the other
    std::vector<PodCidr> cidrs;
  };

  // INVALID_ARGUMENT for a malformed pod CIDR or template; FAILED_PRECONDITION
  // naming the path when the template file cannot be read; errors of writing
  // the file name it.
  StatusOr<Result> Apply(std::string_view pod_cidr);

 private:
  const DefaultPodNetworkOptions options_;
  std::mutex mu_;
};

std::string_view OutcomeName(DefaultPodNetwork::Outcome outcome);

}  // namespace berth::network
