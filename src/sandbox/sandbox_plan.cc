#include "sandbox/sandbox_plan.h"

#include "common/status.h"

namespace berth::sandbox {
namespace {

// The pod's resolv.conf: the node's unless the config names DNS settings.
std::string ResolvConf(const SandboxConfig& c, const std::string& host_resolv_conf) {
  if (c.dns_servers.empty() && c.dns_searches.empty() && c.dns_options.empty()) {
    return host_resolv_conf;
  }
  std::string out;
  if (!c.dns_searches.empty()) {
    out += "search";
    for (const auto& s : c.dns_searches) out += " " + s;
    out += "\n";
  }
  for (const auto& s : c.dns_servers) out += "nameserver " + s + "\n";
  if (!c.dns_options.empty()) {
    out += "options";
    for (const auto& s : c.dns_options) out += " " + s;
    out += "\n";
  }
  return out;
}

}  // namespace

SandboxPlan PlanSandbox(const SandboxConfig& config, const SandboxHostFacts& host) {
  SandboxPlan plan;
  const bool host_network = config.network_mode == oci::NamespaceMode::kNode;
  // A pod on the node's network has the node's name, as the kubelet expects.
  plan.hostname = config.hostname.empty() || host_network ? host.node_hostname : config.hostname;
  if (host_network) {
    plan.hosts = host.etc_hosts;
  } else {
    plan.hosts = StrCat("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
                        "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\n",
                        "fe00::2\tip6-allrouters\n");
  }
  plan.resolv_conf = ResolvConf(config, host.resolv_conf);
  plan.shm_tmpfs = config.ipc_mode != oci::NamespaceMode::kNode;
  plan.user_namespace = config.userns.has_value();
  plan.ipc_namespace = config.ipc_mode != oci::NamespaceMode::kNode;
  // The UTS namespace goes with the network: a pod on the node's network
  // keeps the node's hostname.
  plan.uts_namespace = !host_network;
  plan.network_namespace = !host_network;
  plan.pause = config.pid_mode == oci::NamespaceMode::kPod;
  return plan;
}

}  // namespace berth::sandbox
