// The container and pod sandbox records as berthd stores them in its
// metadata database: the JSON must stay byte-for-byte what earlier releases
// wrote (state written before an upgrade must load after it, and a record
// saved again must not change), so the golden texts below were written by
// the hand-written mappers these records had before they used nlohmann's
// type macros.
#include <gtest/gtest.h>

#include <string>

#include "container/container_manager.h"
#include "sandbox/sandbox_manager.h"

namespace berth {
namespace {

using container::ContainerRecord;
using container::ContainerState;
using sandbox::SandboxRecord;
using sandbox::SandboxState;

ContainerRecord FullContainer() {
  ContainerRecord r;
  r.id = "c1";
  r.sandbox_id = "p1";
  r.name = "app";
  r.attempt = 3;
  r.labels = {{"l", "1"}};
  r.annotations = {{"a", "2"}};
  r.image = "registry.test/app:1";
  r.image_id = "sha256:aaaa";
  r.image_ref = "registry.test/app@sha256:bbbb";
  r.log_path = "/var/log/pods/x/app/3.log";
  r.runtime_handler = "runc";
  r.stop_signal = "SIGQUIT";
  r.mounts = {{"/data", "/srv/data", true, 1},
              {"/vol", "/state/c1/volumes/1", true, 0, "vol:1", "sha256:cccc", "sub"}};
  r.resources.cpu_period = 100000;
  r.resources.cpu_quota = 50000;
  r.resources.cpu_shares = 512;
  r.resources.memory_limit_in_bytes = 1 << 20;
  r.resources.oom_score_adj = -100;
  r.resources.cpuset_cpus = "0-1";
  r.resources.cpuset_mems = "0";
  r.resources.hugepage_limits = {{"2MB", 4194304}};
  r.resources.unified = {{"memory.high", "1000000"}};
  r.resources.memory_swap_limit_in_bytes = 2 << 20;
  r.tty = true;
  r.stdin_open = true;
  r.stdin_once = false;
  r.state = ContainerState::kExited;
  r.created_at_ns = 1;
  r.started_at_ns = 2;
  r.finished_at_ns = 3;
  r.exit_code = 137;
  r.reason = "OOMKilled";
  r.message = "killed";
  r.pid = 42;
  r.monitor_pid = 41;
  r.own_pid_ns = true;
  r.bundle = "/state/c1";
  r.rootfs = "/state/c1/rootfs";
  r.layer_dir = "/root/c1";
  r.uid = 1000;
  r.username = "app";
  r.gid = 1001;
  r.supplemental_groups = {29, 44};
  r.oom_kills = 2;
  r.runtime_deleted = true;
  return r;
}

SandboxRecord FullSandbox() {
  SandboxRecord r;
  r.id = "p1";
  r.config.name = "pod";
  r.config.uid = "uid-1";
  r.config.namespace_ = "default";
  r.config.attempt = 1;
  r.config.hostname = "pod-host";
  r.config.log_directory = "/var/log/pods/x";
  r.config.dns_servers = {"10.0.0.10"};
  r.config.dns_searches = {"svc.cluster.local"};
  r.config.dns_options = {"ndots:5"};
  r.config.port_mappings = {{8080, 80, "tcp", "127.0.0.1"}};
  r.config.labels = {{"app", "web"}};
  r.config.annotations = {{"k", "v"}};
  r.config.cgroup_parent = "/kubepods/pod1";
  r.config.sysctls = {{"net.ipv4.ip_forward", "1"}};
  r.config.resources = oci::PodResources{};
  r.config.resources->cpu_shares = 1024;
  r.config.network_mode = oci::NamespaceMode::kPod;
  r.config.pid_mode = oci::NamespaceMode::kPod;
  r.config.ipc_mode = oci::NamespaceMode::kNode;
  r.config.privileged = true;
  r.config.userns = sandbox::SandboxConfig::UserNamespace{
      .uids = {{.container_id = 0, .host_id = 100000, .length = 65536}},
      .gids = {{.container_id = 0, .host_id = 200000, .length = 65536}}};
  r.runtime_handler = "runc";
  r.state = SandboxState::kNotReady;
  r.created_at_ns = 7;
  r.dir = "/state/sandboxes/p1";
  r.netns_path = "/run/netns/p1";
  r.ipc_ns_path = "";
  r.uts_ns_path = "/state/sandboxes/p1/uts";
  r.pid_ns_path = "/state/sandboxes/p1/pidns";
  r.userns_path = "/state/sandboxes/p1/userns";
  r.pause_pid = 99;
  r.ip = "10.88.0.5";
  r.additional_ips = {"fd00::5"};
  r.network_ready = true;
  return r;
}

// Written by berth before these records used the type macros.
constexpr char kContainerGolden[] =
    R"golden({"annotations":{"a":"2"},"attempt":3,"bundle":"/state/c1","created_at_ns":1,"exit_code":137,"finished_at_ns":3,"gid":1001,"id":"c1","image":"registry.test/app:1","image_id":"sha256:aaaa","image_ref":"registry.test/app@sha256:bbbb","labels":{"l":"1"},"layer_dir":"/root/c1","log_path":"/var/log/pods/x/app/3.log","message":"killed","monitor_pid":41,"mounts":[{"container_path":"/data","host_path":"/srv/data","propagation":1,"readonly":true},{"container_path":"/vol","host_path":"/state/c1/volumes/1","image":"vol:1","image_id":"sha256:cccc","image_sub_path":"sub","propagation":0,"readonly":true}],"name":"app","oom_kills":2,"own_pid_ns":true,"pid":42,"reason":"OOMKilled","resources":{"cpu_period":100000,"cpu_quota":50000,"cpu_shares":512,"cpuset_cpus":"0-1","cpuset_mems":"0","hugepage_limits":[{"limit":4194304,"page_size":"2MB"}],"memory_limit_in_bytes":1048576,"memory_swap_limit_in_bytes":2097152,"oom_score_adj":-100,"unified":{"memory.high":"1000000"}},"rootfs":"/state/c1/rootfs","runtime_deleted":true,"runtime_handler":"runc","sandbox_id":"p1","started_at_ns":2,"state":"EXITED","stdin_once":false,"stdin_open":true,"stop_signal":"SIGQUIT","supplemental_groups":[29,44],"tty":true,"uid":1000,"username":"app"})golden";
constexpr char kSandboxGolden[] =
    R"golden({"additional_ips":["fd00::5"],"config":{"annotations":{"k":"v"},"attempt":1,"cgroup_parent":"/kubepods/pod1","dns_options":["ndots:5"],"dns_searches":["svc.cluster.local"],"dns_servers":["10.0.0.10"],"hostname":"pod-host","ipc_mode":"NODE","labels":{"app":"web"},"log_directory":"/var/log/pods/x","name":"pod","namespace":"default","network_mode":"POD","overhead":null,"pid_mode":"POD","port_mappings":[{"container_port":80,"host_ip":"127.0.0.1","host_port":8080,"protocol":"tcp"}],"privileged":true,"resources":{"cpu_period":0,"cpu_quota":0,"cpu_shares":1024,"memory_limit_in_bytes":0},"sysctls":{"net.ipv4.ip_forward":"1"},"uid":"uid-1","userns":{"gids":[[0,200000,65536]],"uids":[[0,100000,65536]]}},"created_at_ns":7,"dir":"/state/sandboxes/p1","id":"p1","ip":"10.88.0.5","ipc_ns_path":"","netns_path":"/run/netns/p1","network_ready":true,"pause_pid":99,"pid_ns_path":"/state/sandboxes/p1/pidns","runtime_handler":"runc","state":"NOTREADY","userns_path":"/state/sandboxes/p1/userns","uts_ns_path":"/state/sandboxes/p1/uts"})golden";
// Records as berth 0.1.0 wrote them: without the fields added since
// (own_pid_ns, gid, supplemental_groups, oom_kills, runtime_deleted; image
// volumes; pid_ns_path, pause_pid, userns_path, pod resources, userns).
constexpr char kContainerV010[] =
    R"golden({"annotations":{"a":"2"},"attempt":3,"bundle":"/state/c1","created_at_ns":1,"exit_code":137,"finished_at_ns":3,"id":"c1","image":"registry.test/app:1","image_id":"sha256:aaaa","image_ref":"registry.test/app@sha256:bbbb","labels":{"l":"1"},"layer_dir":"/root/c1","log_path":"/var/log/pods/x/app/3.log","message":"killed","monitor_pid":41,"mounts":[{"container_path":"/data","host_path":"/srv/data","propagation":1,"readonly":true}],"name":"app","pid":42,"reason":"OOMKilled","resources":{"cpu_period":100000,"cpu_quota":50000,"cpu_shares":512,"cpuset_cpus":"0-1","cpuset_mems":"0","hugepage_limits":[{"limit":4194304,"page_size":"2MB"}],"memory_limit_in_bytes":1048576,"memory_swap_limit_in_bytes":2097152,"unified":{"memory.high":"1000000"}},"rootfs":"/state/c1/rootfs","runtime_handler":"runc","sandbox_id":"p1","started_at_ns":2,"state":"EXITED","stdin_once":false,"stdin_open":true,"stop_signal":"SIGQUIT","tty":true,"uid":1000,"username":"app"})golden";
constexpr char kSandboxV010[] =
    R"golden({"additional_ips":["fd00::5"],"config":{"annotations":{"k":"v"},"attempt":1,"cgroup_parent":"/kubepods/pod1","dns_options":["ndots:5"],"dns_searches":["svc.cluster.local"],"dns_servers":["10.0.0.10"],"hostname":"pod-host","ipc_mode":"NODE","labels":{"app":"web"},"log_directory":"/var/log/pods/x","name":"pod","namespace":"default","network_mode":"POD","pid_mode":"POD","port_mappings":[{"container_port":80,"host_ip":"127.0.0.1","host_port":8080,"protocol":"tcp"}],"privileged":true,"sysctls":{"net.ipv4.ip_forward":"1"},"uid":"uid-1"},"created_at_ns":7,"dir":"/state/sandboxes/p1","id":"p1","ip":"10.88.0.5","ipc_ns_path":"","netns_path":"/run/netns/p1","network_ready":true,"runtime_handler":"runc","state":"NOTREADY","uts_ns_path":"/state/sandboxes/p1/uts"})golden";

TEST(StateRecordsTest, ContainerRecordIsWrittenAsBefore) {
  EXPECT_EQ(FullContainer().ToJson(), kContainerGolden);
}

TEST(StateRecordsTest, SandboxRecordIsWrittenAsBefore) {
  EXPECT_EQ(FullSandbox().ToJson(), kSandboxGolden);
}

TEST(StateRecordsTest, StoredContainerRecordLoadsAndSavesUnchanged) {
  auto r = ContainerRecord::FromJson(kContainerGolden);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->ToJson(), kContainerGolden);
  EXPECT_EQ(r->state, ContainerState::kExited);
  ASSERT_EQ(r->mounts.size(), 2u);
  EXPECT_EQ(r->mounts[1].image_id, "sha256:cccc");
  EXPECT_EQ(r->resources.oom_score_adj, -100);
  EXPECT_EQ(r->resources.hugepage_limits.at(0).limit, 4194304u);
  EXPECT_EQ(r->supplemental_groups, (std::vector<uint32_t>{29, 44}));
}

TEST(StateRecordsTest, StoredSandboxRecordLoadsAndSavesUnchanged) {
  auto r = SandboxRecord::FromJson(kSandboxGolden);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->ToJson(), kSandboxGolden);
  EXPECT_EQ(r->state, SandboxState::kNotReady);
  EXPECT_EQ(r->config.namespace_, "default");
  EXPECT_EQ(r->config.ipc_mode, oci::NamespaceMode::kNode);
  ASSERT_TRUE(r->config.userns.has_value());
  EXPECT_EQ(r->config.userns->gids.at(0).host_id, 200000u);
  EXPECT_FALSE(r->config.overhead.has_value());
  ASSERT_TRUE(r->config.resources.has_value());
  EXPECT_EQ(r->config.resources->cpu_shares, 1024);
  EXPECT_EQ(r->config.port_mappings.at(0).host_ip, "127.0.0.1");
}

TEST(StateRecordsTest, ContainerRecordOfBerth010Loads) {
  auto r = ContainerRecord::FromJson(kContainerV010);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id, "c1");
  EXPECT_EQ(r->uid, 1000u);
  EXPECT_EQ(r->gid, 0u);
  EXPECT_FALSE(r->own_pid_ns);
  EXPECT_EQ(r->oom_kills, 0);
  EXPECT_FALSE(r->runtime_deleted);
  EXPECT_TRUE(r->supplemental_groups.empty());
  EXPECT_FALSE(r->resources.oom_score_adj.has_value());
  ASSERT_EQ(r->mounts.size(), 1u);
  EXPECT_EQ(r->mounts[0].image, "");
  EXPECT_EQ(r->mounts[0].propagation, 1);
}

TEST(StateRecordsTest, SandboxRecordOfBerth010Loads) {
  auto r = SandboxRecord::FromJson(kSandboxV010);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id, "p1");
  EXPECT_EQ(r->pid_ns_path, "");
  EXPECT_EQ(r->pause_pid, 0);
  EXPECT_FALSE(r->config.userns.has_value());
  EXPECT_FALSE(r->config.resources.has_value());
  EXPECT_EQ(r->config.pid_mode, oci::NamespaceMode::kPod);
}

TEST(StateRecordsTest, CorruptRecordsAreDataLoss) {
  for (const char* text : {"", "{", "[]", "{}", R"({"id":"c1","attempt":"three"})",
                           R"({"id":"c1","mounts":[{"host_path":"/x"}]})"}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(ContainerRecord::FromJson(text).status().code(), StatusCode::kDataLoss);
  }
  for (const char* text :
       {"", "{}", R"({"id":"p1","config":{"name":"pod"}})", R"({"id":"p1","pause_pid":"x"})"}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(SandboxRecord::FromJson(text).status().code(), StatusCode::kDataLoss);
  }
}

}  // namespace
}  // namespace berth
