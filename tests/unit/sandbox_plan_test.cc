// SandboxManager's plan step (sandbox/sandbox_plan.h) for every combination
// of network, IPC and PID namespace modes, with and without a user
// namespace. Pure: no root, no files.
#include "sandbox/sandbox_plan.h"

#include <gtest/gtest.h>

#include <string>
#include <tuple>

namespace berth::sandbox {
namespace {

using oci::NamespaceMode;

SandboxHostFacts Host() {
  return {.node_hostname = "node-1",
          .etc_hosts = "10.0.0.1 node-1\n",
          .resolv_conf = "nameserver 10.0.0.53\n"};
}

std::string ModeName(NamespaceMode m) {
  switch (m) {
    case NamespaceMode::kNode:
      return "NODE";
    case NamespaceMode::kPod:
      return "POD";
    case NamespaceMode::kContainer:
      return "CONTAINER";
    case NamespaceMode::kTarget:
      return "TARGET";
  }
  return "?";
}

class SandboxPlanModesTest : public ::testing::TestWithParam<
                                 std::tuple<NamespaceMode, NamespaceMode, NamespaceMode, bool>> {};

TEST_P(SandboxPlanModesTest, NamespacesFilesAndPause) {
  auto [network, ipc, pid, userns] = GetParam();
  SandboxConfig c;
  c.hostname = "pod-host";
  c.network_mode = network;
  c.ipc_mode = ipc;
  c.pid_mode = pid;
  if (userns) c.userns = SandboxConfig::UserNamespace{};
  SandboxPlan plan = PlanSandbox(c, Host());

  const bool node_net = network == NamespaceMode::kNode;
  const bool node_ipc = ipc == NamespaceMode::kNode;
  // Namespaces: one of the pod's for each mode that is not the node's.
  EXPECT_EQ(plan.network_namespace, !node_net);
  EXPECT_EQ(plan.uts_namespace, !node_net);
  EXPECT_EQ(plan.ipc_namespace, !node_ipc);
  EXPECT_EQ(plan.shm_tmpfs, !node_ipc);
  EXPECT_EQ(plan.user_namespace, userns);
  // berth-pause only for a PID namespace shared by the pod; CONTAINER and
  // NODE need none (each container has its own, or the node's).
  EXPECT_EQ(plan.pause, pid == NamespaceMode::kPod);
  // On the node's network the pod is the node: its name and hosts file.
  EXPECT_EQ(plan.hostname, node_net ? "node-1" : "pod-host");
  if (node_net) {
    EXPECT_EQ(plan.hosts, "10.0.0.1 node-1\n");
  } else {
    EXPECT_TRUE(plan.hosts.starts_with("127.0.0.1\tlocalhost\n")) << plan.hosts;
    EXPECT_NE(plan.hosts.find("ip6-allrouters"), std::string::npos);
  }
  EXPECT_EQ(plan.resolv_conf, "nameserver 10.0.0.53\n");
}

INSTANTIATE_TEST_SUITE_P(
    AllModes, SandboxPlanModesTest,
    ::testing::Combine(::testing::Values(NamespaceMode::kNode, NamespaceMode::kPod),
                       ::testing::Values(NamespaceMode::kNode, NamespaceMode::kPod),
                       ::testing::Values(NamespaceMode::kNode, NamespaceMode::kPod,
                                         NamespaceMode::kContainer),
                       ::testing::Bool()),
    [](const auto& info) {
      return "net" + ModeName(std::get<0>(info.param)) + "_ipc" +
             ModeName(std::get<1>(info.param)) + "_pid" + ModeName(std::get<2>(info.param)) +
             (std::get<3>(info.param) ? "_userns" : "_hostusers");
    });

TEST(SandboxPlanTest, EmptyHostnameIsTheNodes) {
  SandboxConfig c;
  c.network_mode = NamespaceMode::kPod;
  EXPECT_EQ(PlanSandbox(c, Host()).hostname, "node-1");
}

TEST(SandboxPlanTest, DnsConfigReplacesTheNodesResolvConf) {
  SandboxConfig c;
  c.dns_servers = {"1.1.1.1", "8.8.8.8"};
  c.dns_searches = {"ns.svc.cluster.local", "svc.cluster.local"};
  c.dns_options = {"ndots:5"};
  EXPECT_EQ(PlanSandbox(c, Host()).resolv_conf,
            "search ns.svc.cluster.local svc.cluster.local\n"
            "nameserver 1.1.1.1\nnameserver 8.8.8.8\n"
            "options ndots:5\n");
  SandboxConfig only_options;
  only_options.dns_options = {"edns0"};
  EXPECT_EQ(PlanSandbox(only_options, Host()).resolv_conf, "options edns0\n");
  // No DNS settings: the node's file, even when it is empty or unreadable.
  SandboxHostFacts no_resolv = Host();
  no_resolv.resolv_conf.clear();
  EXPECT_EQ(PlanSandbox(SandboxConfig{}, no_resolv).resolv_conf, "");
}

}  // namespace
}  // namespace berth::sandbox
