// ContainerManager's plan step (container/container_plan.h) for every
// combination of the pod's and the container's namespace modes with and
// without a user namespace, for bind mounts and image volumes, and for the
// security settings a container can ask for. Pure: no root, no files.
#include "container/container_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <tuple>

namespace berth::container {
namespace {

using nlohmann::json;
using oci::NamespaceMode;

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

constexpr char kPasswd[] =
    "root:x:0:0:root:/root:/bin/sh\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n";
constexpr char kGroup[] =
    "root:x:0:\n"
    "app:x:1000:\n"
    "audio:x:29:app\n"
    "video:x:44:app\n";

// A pod as SandboxManager would have made it for these modes.
sandbox::SandboxRecord Pod(NamespaceMode network, NamespaceMode ipc, NamespaceMode pid,
                           bool userns) {
  sandbox::SandboxRecord sb;
  sb.id = "pod1";
  sb.config.name = "pod";
  sb.config.namespace_ = "default";
  sb.config.network_mode = network;
  sb.config.ipc_mode = ipc;
  sb.config.pid_mode = pid;
  sb.dir = "/state/sandboxes/pod1";
  if (network != NamespaceMode::kNode) {
    sb.netns_path = "/run/netns/pod1";
    sb.uts_ns_path = "/state/sandboxes/pod1/uts";
  }
  if (ipc != NamespaceMode::kNode) sb.ipc_ns_path = "/state/sandboxes/pod1/ipc";
  if (pid == NamespaceMode::kPod) sb.pid_ns_path = "/state/sandboxes/pod1/pid";
  if (userns) {
    sb.userns_path = "/state/sandboxes/pod1/user";
    sb.config.userns = sandbox::SandboxConfig::UserNamespace{
        .uids = {{.container_id = 0, .host_id = 100000, .length = 65536}},
        .gids = {{.container_id = 0, .host_id = 200000, .length = 65536}}};
  }
  return sb;
}

ContainerPlanInputs Inputs() {
  ContainerPlanInputs in;
  in.request.config.name = "app";
  in.request.config.attempt = 2;
  in.request.config.command = {"/bin/app"};
  in.request.image = "registry.test/app:1";
  in.sandbox = Pod(NamespaceMode::kPod, NamespaceMode::kPod, NamespaceMode::kContainer, false);
  in.image.id = "sha256:aaaa";
  in.image.repo_digests = {"registry.test/app@sha256:bbbb"};
  in.image.diff_ids = {Digest::FromHex(std::string(64, '1')),
                       Digest::FromHex(std::string(64, '2'))};
  in.image_config.cmd = {"serve"};
  in.runtime_handler = "runc";
  in.id = "c0ffee";
  in.now_ns = 1234;
  in.state_dir = "/state/containers";
  in.root_dir = "/root/containers";
  in.layer_dirs_top_first = {"/root/layers/2", "/root/layers/1"};
  in.resolve_host_path = [](const std::string& p) -> StatusOr<std::string> {
    static const std::map<std::string, std::string> kHost = {
        {"/data", "/data"}, {"/link", "/srv/real"}, {"/config", "/config"}};
    auto it = kHost.find(p);
    if (it == kHost.end()) return NotFoundError("No such file or directory");
    return it->second;
  };
  return in;
}

// The rootfs facts the executor would read: mounts as mounted, image ids.
ContainerRootfsFacts Facts(const ContainerPlan& plan) {
  ContainerRootfsFacts f;
  f.mounts = plan.config.mounts;
  for (size_t i = 0; i < f.mounts.size(); ++i) {
    if (!f.mounts[i].image.empty()) {
      f.mounts[i].host_path = (plan.volumes_dir / std::to_string(i)).string();
      f.volume_image_ids.push_back("sha256:vol" + std::to_string(i));
    } else {
      f.volume_image_ids.emplace_back();
    }
  }
  f.etc_passwd = kPasswd;
  f.etc_group = kGroup;
  f.target_pid_ns_path = "/proc/42/ns/pid";
  return f;
}

// type -> path ("" for a new namespace) of the spec's namespaces.
std::map<std::string, std::string> Namespaces(const json& spec) {
  std::map<std::string, std::string> out;
  for (const auto& ns : spec["linux"]["namespaces"]) {
    out[ns["type"].get<std::string>()] = ns.value("path", "");
  }
  return out;
}

const json* MountAt(const json& spec, const std::string& dest) {
  for (const auto& m : spec["mounts"]) {
    if (m["destination"] == dest) return &m;
  }
  return nullptr;
}

bool HasOption(const json& mount, const std::string& option) {
  const auto& o = mount["options"];
  return std::find(o.begin(), o.end(), option) != o.end();
}

// --- namespaces ------------------------------------------------------------

class ContainerPlanNamespacesTest
    : public ::testing::TestWithParam<
          std::tuple<NamespaceMode, NamespaceMode, NamespaceMode, NamespaceMode, bool>> {};

TEST_P(ContainerPlanNamespacesTest, ContainerJoinsWhatThePodHas) {
  auto [pod_net, pod_ipc, pod_pid, ctr_pid, userns] = GetParam();
  ContainerPlanInputs in = Inputs();
  in.sandbox = Pod(pod_net, pod_ipc, pod_pid, userns);
  auto& asked = in.request.config.security_context.namespace_options;
  // The container asks for the opposite of the pod's network and IPC: the
  // pod's win.
  asked.network = pod_net == NamespaceMode::kNode ? NamespaceMode::kPod : NamespaceMode::kNode;
  asked.ipc = pod_ipc == NamespaceMode::kNode ? NamespaceMode::kPod : NamespaceMode::kNode;
  asked.pid = ctr_pid;
  if (ctr_pid == NamespaceMode::kTarget) asked.target_id = "target1";

  auto plan = PlanContainer(in);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->namespaces.network,
            pod_net == NamespaceMode::kNode ? NamespaceMode::kNode : NamespaceMode::kPod);
  EXPECT_EQ(plan->namespaces.ipc,
            pod_ipc == NamespaceMode::kNode ? NamespaceMode::kNode : NamespaceMode::kPod);
  NamespaceMode want_pid = ctr_pid;
  if (ctr_pid == NamespaceMode::kPod && pod_pid != NamespaceMode::kPod) {
    // No pod PID namespace to join: the container's own, or the node's.
    want_pid = pod_pid == NamespaceMode::kNode ? NamespaceMode::kNode : NamespaceMode::kContainer;
  }
  EXPECT_EQ(plan->namespaces.pid, want_pid);
  EXPECT_EQ(plan->needs_target_pid_ns, ctr_pid == NamespaceMode::kTarget);
  EXPECT_EQ(plan->idmapped_rootfs, userns);
  EXPECT_EQ(plan->idmap_bind_mounts, userns);
  if (userns) {
    EXPECT_EQ(plan->rootfs_uid, 100000u);
    EXPECT_EQ(plan->rootfs_gid, 200000u);
  }

  auto spec = PlanContainerSpec(*plan, in, Facts(*plan));
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  auto ns = Namespaces(spec->spec);
  std::map<std::string, std::string> want = {{"mount", ""}};
  if (pod_net != NamespaceMode::kNode) {
    want["network"] = "/run/netns/pod1";
    want["uts"] = "/state/sandboxes/pod1/uts";
  }
  if (pod_ipc != NamespaceMode::kNode) want["ipc"] = "/state/sandboxes/pod1/ipc";
  switch (want_pid) {
    case NamespaceMode::kPod:
      want["pid"] = "/state/sandboxes/pod1/pid";
      break;
    case NamespaceMode::kContainer:
      want["pid"] = "";
      break;
    case NamespaceMode::kTarget:
      want["pid"] = "/proc/42/ns/pid";
      break;
    case NamespaceMode::kNode:
      break;
  }
  if (userns) want["user"] = "/state/sandboxes/pod1/user";
  EXPECT_EQ(ns, want);
  // Only a PID namespace of its own makes the container's init the one
  // whose death kills everything in it.
  EXPECT_EQ(plan->record.own_pid_ns, want_pid == NamespaceMode::kContainer);
  if (userns) {
    EXPECT_EQ(spec->spec["linux"]["uidMappings"][0]["hostID"], 100000);
  }
}

std::string NamespacesCaseName(
    const ::testing::TestParamInfo<ContainerPlanNamespacesTest::ParamType>& info) {
  const auto& p = info.param;
  return "net" + ModeName(std::get<0>(p)) + "_ipc" + ModeName(std::get<1>(p)) + "_pid" +
         ModeName(std::get<2>(p)) + "_ctr" + ModeName(std::get<3>(p)) +
         (std::get<4>(p) ? "_userns" : "");
}

INSTANTIATE_TEST_SUITE_P(
    AllModes, ContainerPlanNamespacesTest,
    ::testing::Combine(::testing::Values(NamespaceMode::kPod, NamespaceMode::kNode),
                       ::testing::Values(NamespaceMode::kPod, NamespaceMode::kNode),
                       ::testing::Values(NamespaceMode::kPod, NamespaceMode::kContainer,
                                         NamespaceMode::kNode),
                       ::testing::Values(NamespaceMode::kPod, NamespaceMode::kContainer,
                                         NamespaceMode::kNode, NamespaceMode::kTarget),
                       ::testing::Bool()),
    NamespacesCaseName);

// --- what the plan refuses -------------------------------------------------

struct RefusalCase {
  std::string name;
  std::function<void(ContainerPlanInputs&)> change;
  StatusCode code;
  std::string message;
};

class ContainerPlanRefusesTest : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(ContainerPlanRefusesTest, WithAnActionableStatus) {
  ContainerPlanInputs in = Inputs();
  GetParam().change(in);
  auto plan = PlanContainer(in);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), GetParam().code);
  EXPECT_NE(plan.status().message().find(GetParam().message), std::string::npos)
      << plan.status().message();
}

oci::Mount Bind(std::string host, std::string ctr) {
  oci::Mount m;
  m.host_path = std::move(host);
  m.container_path = std::move(ctr);
  return m;
}

oci::Mount ImageVolume(std::string image, std::string ctr, std::string sub_path = "") {
  oci::Mount m;
  m.image = std::move(image);
  m.container_path = std::move(ctr);
  m.image_sub_path = std::move(sub_path);
  m.readonly = true;
  return m;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ContainerPlanRefusesTest,
    ::testing::Values(
        RefusalCase{"RelativeBindSource",
                    [](auto& in) { in.request.config.mounts = {Bind("data", "/data")}; },
                    StatusCode::kInvalidArgument,
                    "mount /data: host path \"data\" is not absolute"},
        RefusalCase{"EmptyBindSource",
                    [](auto& in) { in.request.config.mounts = {Bind("", "/data")}; },
                    StatusCode::kInvalidArgument, "host path \"\" is not absolute"},
        RefusalCase{"MissingBindSource",
                    [](auto& in) { in.request.config.mounts = {Bind("/nope", "/data")}; },
                    StatusCode::kNotFound,
                    "mount /data: host path /nope does not exist or cannot be resolved"},
        RefusalCase{
            "ImageSubPathEscapes",
            [](auto& in) { in.request.config.mounts = {ImageVolume("vol:1", "/v", "../etc")}; },
            StatusCode::kInvalidArgument, "image volume /v:"},
        RefusalCase{
            "ImageSubPathAbsolute",
            [](auto& in) { in.request.config.mounts = {ImageVolume("vol:1", "/v", "/etc")}; },
            StatusCode::kInvalidArgument, "image volume /v:"},
        RefusalCase{"LogPathWithoutLogDirectory",
                    [](auto& in) { in.request.log_path = "app/0.log"; },
                    StatusCode::kInvalidArgument,
                    "log_path is set but the pod sandbox has no log_directory"},
        RefusalCase{"ImageWithoutLayers",
                    [](auto& in) {
                      in.image.diff_ids.clear();
                      in.layer_dirs_top_first.clear();
                    },
                    StatusCode::kFailedPrecondition, "image sha256:aaaa has no layers"},
        RefusalCase{"UserNamespaceWithoutRoot",
                    [](auto& in) {
                      in.sandbox = Pod(NamespaceMode::kPod, NamespaceMode::kPod,
                                       NamespaceMode::kContainer, true);
                      in.sandbox.config.userns->uids = {
                          {.container_id = 1, .host_id = 100001, .length = 65535}};
                    },
                    StatusCode::kInvalidArgument,
                    "the user namespace of pod sandbox pod1 does not map container ID 0"},
        RefusalCase{"TargetWithoutTargetId",
                    [](auto& in) {
                      in.request.config.security_context.namespace_options.pid =
                          NamespaceMode::kTarget;
                    },
                    StatusCode::kInvalidArgument, "pid namespace mode TARGET needs target_id"}),
    [](const auto& info) { return info.param.name; });

// --- record fields ---------------------------------------------------------

TEST(ContainerPlanTest, RecordPathsAndRootfs) {
  ContainerPlanInputs in = Inputs();
  in.sandbox.config.log_directory = "/var/log/pods/ns_pod_uid";
  in.request.log_path = "app/../app/2.log";
  in.request.config.labels = {{"l", "1"}};
  in.request.config.annotations = {{"a", "2"}};
  in.request.config.tty = true;
  in.request.config.stdin = true;
  auto plan = PlanContainer(in);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const ContainerRecord& r = plan->record;
  EXPECT_EQ(r.id, "c0ffee");
  EXPECT_EQ(r.sandbox_id, "pod1");
  EXPECT_EQ(r.name, "app");
  EXPECT_EQ(r.attempt, 2u);
  EXPECT_EQ(r.labels, in.request.config.labels);
  EXPECT_EQ(r.annotations, in.request.config.annotations);
  EXPECT_EQ(r.image, "registry.test/app:1");
  EXPECT_EQ(r.image_id, "sha256:aaaa");
  EXPECT_EQ(r.image_ref, "registry.test/app@sha256:bbbb");
  EXPECT_EQ(r.runtime_handler, "runc");
  EXPECT_EQ(r.created_at_ns, 1234);
  EXPECT_TRUE(r.tty);
  EXPECT_TRUE(r.stdin_open);
  EXPECT_FALSE(r.stdin_once);
  EXPECT_EQ(r.log_path, "/var/log/pods/ns_pod_uid/app/2.log");
  EXPECT_EQ(plan->monitor_log_path, r.log_path);
  EXPECT_EQ(r.bundle, "/state/containers/c0ffee");
  EXPECT_EQ(r.rootfs, "/state/containers/c0ffee/rootfs");
  EXPECT_EQ(r.layer_dir, "/root/containers/c0ffee");
  // overlayfs wants the top-most layer first.
  EXPECT_EQ(plan->overlay_options,
            "lowerdir=/root/layers/2:/root/layers/1,upperdir=/root/containers/c0ffee/upper,"
            "workdir=/root/containers/c0ffee/work");
  EXPECT_FALSE(plan->idmapped_rootfs);
  EXPECT_FALSE(plan->has_image_volumes);
}

TEST(ContainerPlanTest, ImageWithoutRepoDigestIsReferredToById) {
  ContainerPlanInputs in = Inputs();
  in.image.repo_digests.clear();
  auto plan = PlanContainer(in);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->record.image_ref, "sha256:aaaa");
  // Without a CRI log path the output goes to the bundle.
  EXPECT_EQ(plan->monitor_log_path, "/state/containers/c0ffee/console.log");
}

struct StopSignalCase {
  std::string configured, image, want;
};

class ContainerPlanStopSignalTest : public ::testing::TestWithParam<StopSignalCase> {};

TEST_P(ContainerPlanStopSignalTest, ConfigThenImageThenTerm) {
  ContainerPlanInputs in = Inputs();
  in.request.config.stop_signal = GetParam().configured;
  in.image_config.stop_signal = GetParam().image;
  auto plan = PlanContainer(in);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->record.stop_signal, GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(Cases, ContainerPlanStopSignalTest,
                         ::testing::Values(StopSignalCase{"", "", "SIGTERM"},
                                           StopSignalCase{"", "SIGQUIT", "SIGQUIT"},
                                           StopSignalCase{"", "USR1", "SIGUSR1"},
                                           StopSignalCase{"", "NOTASIGNAL", "SIGTERM"},
                                           StopSignalCase{"SIGINT", "SIGQUIT", "SIGINT"},
                                           StopSignalCase{"SIGRTMIN+3", "", "SIGRTMIN+3"}));

// --- mounts ----------------------------------------------------------------

struct MountCase {
  std::string name;
  oci::Mount mount;
  bool userns = false;
  // The source the runtime binds, what the record keeps, and the options.
  std::string spec_source{};
  std::string record_host_path{};
  std::string record_image_id{};
  std::vector<std::string> options{};
  std::vector<std::string> absent_options{};
};

class ContainerPlanMountsTest : public ::testing::TestWithParam<MountCase> {};

TEST_P(ContainerPlanMountsTest, SourceRecordAndOptions) {
  const MountCase& c = GetParam();
  ContainerPlanInputs in = Inputs();
  if (c.userns) {
    in.sandbox = Pod(NamespaceMode::kPod, NamespaceMode::kPod, NamespaceMode::kContainer, true);
  }
  in.request.config.mounts = {c.mount};
  auto plan = PlanContainer(in);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->has_image_volumes, !c.mount.image.empty());
  EXPECT_EQ(plan->idmap_bind_mounts, c.userns);
  ContainerRootfsFacts facts = Facts(*plan);
  if (c.userns && c.mount.image.empty()) {
    // The executor's ID-mapped bind replaces the source.
    facts.mounts[0].host_path = (plan->idmap_mounts_dir / "0").string();
  }
  auto spec = PlanContainerSpec(*plan, in, facts);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  const json* m = MountAt(spec->spec, c.mount.container_path);
  ASSERT_NE(m, nullptr) << spec->spec["mounts"].dump();
  EXPECT_EQ((*m)["source"], c.spec_source);
  for (const auto& o : c.options) EXPECT_TRUE(HasOption(*m, o)) << o << " in " << m->dump();
  for (const auto& o : c.absent_options) EXPECT_FALSE(HasOption(*m, o)) << o;
  ASSERT_EQ(plan->record.mounts.size(), 1u);
  const MountInfo& rec = plan->record.mounts[0];
  EXPECT_EQ(rec.container_path, c.mount.container_path);
  EXPECT_EQ(rec.host_path, c.record_host_path);
  EXPECT_EQ(rec.readonly, c.mount.readonly);
  EXPECT_EQ(rec.propagation, static_cast<int>(c.mount.propagation));
  EXPECT_EQ(rec.image, c.mount.image);
  EXPECT_EQ(rec.image_id, c.record_image_id);
  EXPECT_EQ(rec.image_sub_path, c.mount.image_sub_path);
}

oci::Mount With(oci::Mount m, bool readonly, oci::MountPropagation p) {
  m.readonly = readonly;
  m.propagation = p;
  return m;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ContainerPlanMountsTest,
    ::testing::Values(MountCase{.name = "BindReadWrite",
                                .mount = Bind("/data", "/data"),
                                .spec_source = "/data",
                                .record_host_path = "/data",
                                .options = {"rbind", "rw", "rprivate"},
                                .absent_options = {"ro"}},
                      MountCase{.name = "BindReadOnly",
                                .mount = With(Bind("/config", "/etc/app"), true,
                                              oci::MountPropagation::kPrivate),
                                .spec_source = "/config",
                                .record_host_path = "/config",
                                .options = {"rbind", "ro"},
                                .absent_options = {"rw"}},
                      // The runtime binds what the symlink points at; the record keeps
                      // the path as the CRI gave it.
                      MountCase{.name = "BindThroughSymlink",
                                .mount = Bind("/link", "/srv"),
                                .spec_source = "/srv/real",
                                .record_host_path = "/link",
                                .options = {"rbind"}},
                      MountCase{.name = "BindHostToContainer",
                                .mount = With(Bind("/data", "/data"), false,
                                              oci::MountPropagation::kHostToContainer),
                                .spec_source = "/data",
                                .record_host_path = "/data",
                                .options = {"rslave"}},
                      MountCase{.name = "BindBidirectional",
                                .mount = With(Bind("/data", "/data"), false,
                                              oci::MountPropagation::kBidirectional),
                                .spec_source = "/data",
                                .record_host_path = "/data",
                                .options = {"rshared"}},
                      MountCase{.name = "BindInUserNamespace",
                                .mount = Bind("/data", "/data"),
                                .userns = true,
                                .spec_source = "/state/containers/c0ffee/idmap/mounts/0",
                                .record_host_path = "/data",
                                .options = {"rbind"}},
                      MountCase{.name = "ImageVolume",
                                .mount = ImageVolume("registry.test/vol:1", "/vol"),
                                .spec_source = "/state/containers/c0ffee/volumes/0",
                                .record_host_path = "/state/containers/c0ffee/volumes/0",
                                .record_image_id = "sha256:vol0",
                                .options = {"rbind", "ro"}},
                      MountCase{.name = "ImageVolumeSubPath",
                                .mount = ImageVolume("registry.test/vol:1", "/vol", "share/data"),
                                .spec_source = "/state/containers/c0ffee/volumes/0",
                                .record_host_path = "/state/containers/c0ffee/volumes/0",
                                .record_image_id = "sha256:vol0",
                                .options = {"ro"}},
                      MountCase{.name = "ImageVolumeInUserNamespace",
                                .mount = ImageVolume("registry.test/vol:1", "/vol"),
                                .userns = true,
                                .spec_source = "/state/containers/c0ffee/volumes/0",
                                .record_host_path = "/state/containers/c0ffee/volumes/0",
                                .record_image_id = "sha256:vol0",
                                .options = {"ro"}}),
    [](const auto& info) { return info.param.name; });

TEST(ContainerPlanTest, MountsInOrderAcrossKinds) {
  ContainerPlanInputs in = Inputs();
  in.request.config.mounts = {Bind("/data", "/a"), ImageVolume("vol:1", "/b"), Bind("/link", "/c")};
  auto plan = PlanContainer(in);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->config.mounts[0].host_path, "/data");
  EXPECT_EQ(plan->config.mounts[1].host_path, "");  // mounted by the executor
  EXPECT_EQ(plan->config.mounts[2].host_path, "/srv/real");
  auto spec = PlanContainerSpec(*plan, in, Facts(*plan));
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  ASSERT_EQ(plan->record.mounts.size(), 3u);
  EXPECT_EQ(plan->record.mounts[1].host_path, "/state/containers/c0ffee/volumes/1");
  EXPECT_EQ(plan->record.mounts[1].image_id, "sha256:vol1");
  EXPECT_EQ(plan->record.mounts[2].host_path, "/link");
}

TEST(ContainerPlanTest, MountsThatChangedInNumberAreAnInternalError) {
  ContainerPlanInputs in = Inputs();
  in.request.config.mounts = {Bind("/data", "/a")};
  auto plan = PlanContainer(in);
  ASSERT_TRUE(plan.ok());
  ContainerRootfsFacts facts = Facts(*plan);
  facts.mounts.clear();
  facts.volume_image_ids.clear();
  EXPECT_EQ(PlanContainerSpec(*plan, in, facts).status().code(), StatusCode::kInternal);
}

// --- security settings -----------------------------------------------------

struct SecurityCase {
  std::string name;
  std::function<void(ContainerPlanInputs&, ContainerRootfsFacts&)> change;
  std::function<void(const ContainerRecord&, const json& spec, const oci::SpecNotes&)> check;
};

class ContainerPlanSecurityTest : public ::testing::TestWithParam<SecurityCase> {};

TEST_P(ContainerPlanSecurityTest, SpecAndRecord) {
  ContainerPlanInputs in = Inputs();
  in.host.last_cap = 40;
  ContainerRootfsFacts facts;
  // The change may edit the inputs first; the facts follow the plan.
  GetParam().change(in, facts);
  auto plan = PlanContainer(in);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ContainerRootfsFacts f = Facts(*plan);
  if (facts.seccomp_localhost_content)
    f.seccomp_localhost_content = facts.seccomp_localhost_content;
  auto spec = PlanContainerSpec(*plan, in, f);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  GetParam().check(plan->record, spec->spec, spec->notes);
}

bool HasCap(const json& spec, const std::string& cap) {
  const auto& b = spec["process"]["capabilities"]["bounding"];
  return std::find(b.begin(), b.end(), cap) != b.end();
}

using SC = oci::SecurityContext;

INSTANTIATE_TEST_SUITE_P(
    Cases, ContainerPlanSecurityTest,
    ::testing::Values(
        SecurityCase{"Defaults", [](auto&, auto&) {},
                     [](const ContainerRecord& r, const json& spec, const oci::SpecNotes& n) {
                       EXPECT_EQ(r.uid, 0u);
                       EXPECT_EQ(r.gid, 0u);
                       EXPECT_FALSE(spec["root"]["readonly"].get<bool>());
                       // No profile asked for (neither field): unconfined,
                       // as the CRI says.
                       EXPECT_EQ(n.seccomp, "unconfined");
                       EXPECT_FALSE(spec["linux"].contains("seccomp"));
                       EXPECT_TRUE(HasCap(spec, "CAP_CHOWN"));
                       EXPECT_FALSE(HasCap(spec, "CAP_SYS_ADMIN"));
                       EXPECT_FALSE(n.apparmor_ignored);
                     }},
        SecurityCase{"PrivilegedInPrivilegedPod",
                     [](auto& in, auto&) {
                       in.sandbox.config.privileged = true;
                       in.request.config.security_context.privileged = true;
                     },
                     [](const ContainerRecord&, const json& spec, const oci::SpecNotes& n) {
                       EXPECT_TRUE(HasCap(spec, "CAP_SYS_ADMIN"));
                       EXPECT_EQ(n.seccomp, "unconfined");
                       EXPECT_FALSE(spec["linux"].contains("seccomp"));
                     }},
        SecurityCase{"SeccompRuntimeDefault",
                     [](auto& in, auto&) {
                       in.request.config.security_context.seccomp = oci::SecurityProfile{
                           .profile_type = oci::ProfileType::kRuntimeDefault, .localhost_ref = ""};
                     },
                     [](const ContainerRecord&, const json& spec, const oci::SpecNotes& n) {
                       EXPECT_EQ(n.seccomp, "runtime/default");
                       EXPECT_EQ(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
                     }},
        SecurityCase{"SeccompUnconfined",
                     [](auto& in, auto&) {
                       in.request.config.security_context.seccomp = oci::SecurityProfile{
                           .profile_type = oci::ProfileType::kUnconfined, .localhost_ref = ""};
                     },
                     [](const ContainerRecord&, const json& spec, const oci::SpecNotes& n) {
                       EXPECT_EQ(n.seccomp, "unconfined");
                       EXPECT_FALSE(spec["linux"].contains("seccomp"));
                     }},
        SecurityCase{"SeccompLocalhost",
                     [](auto& in, auto& facts) {
                       in.request.config.security_context.seccomp =
                           oci::SecurityProfile{.profile_type = oci::ProfileType::kLocalhost,
                                                .localhost_ref = "/etc/seccomp/app.json"};
                       facts.seccomp_localhost_content =
                           R"({"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]})";
                     },
                     [](const ContainerRecord&, const json& spec, const oci::SpecNotes& n) {
                       EXPECT_EQ(n.seccomp, "localhost//etc/seccomp/app.json");
                       EXPECT_EQ(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
                     }},
        SecurityCase{"AppArmorAskedButNotApplied",
                     [](auto& in, auto&) {
                       in.request.config.security_context.apparmor = oci::SecurityProfile{
                           .profile_type = oci::ProfileType::kRuntimeDefault, .localhost_ref = ""};
                     },
                     [](const ContainerRecord&, const json& spec, const oci::SpecNotes& n) {
                       EXPECT_TRUE(n.apparmor_ignored);
                       EXPECT_FALSE(spec["process"].contains("apparmorProfile"));
                     }},
        SecurityCase{"CapabilitiesAddAndDrop",
                     [](auto& in, auto&) {
                       in.request.config.security_context.capabilities = {
                           .add_capabilities = {"NET_ADMIN", "cap_sys_time"},
                           .drop_capabilities = {"CHOWN"}};
                     },
                     [](const ContainerRecord&, const json& spec, const oci::SpecNotes&) {
                       EXPECT_TRUE(HasCap(spec, "CAP_NET_ADMIN"));
                       EXPECT_TRUE(HasCap(spec, "CAP_SYS_TIME"));
                       EXPECT_FALSE(HasCap(spec, "CAP_CHOWN"));
                     }},
        SecurityCase{"RunAsUserAndGroup",
                     [](auto& in, auto&) {
                       in.request.config.security_context.run_as_user = 1000;
                       in.request.config.security_context.run_as_group = 3000;
                     },
                     [](const ContainerRecord& r, const json& spec, const oci::SpecNotes&) {
                       EXPECT_EQ(r.uid, 1000u);
                       EXPECT_EQ(r.gid, 3000u);
                       EXPECT_EQ(spec["process"]["user"]["uid"], 1000);
                     }},
        SecurityCase{
            "RunAsUsername",
            [](auto& in, auto&) { in.request.config.security_context.run_as_username = "app"; },
            [](const ContainerRecord& r, const json&, const oci::SpecNotes&) {
              EXPECT_EQ(r.uid, 1000u);
              EXPECT_EQ(r.gid, 1000u);
            }},
        SecurityCase{"ImageUser", [](auto& in, auto&) { in.image_config.user = "app"; },
                     [](const ContainerRecord& r, const json&, const oci::SpecNotes&) {
                       EXPECT_EQ(r.uid, 1000u);
                       EXPECT_EQ(r.gid, 1000u);
                     }},
        SecurityCase{
            "ReadonlyRootfs",
            [](auto& in, auto&) { in.request.config.security_context.readonly_rootfs = true; },
            [](const ContainerRecord&, const json& spec, const oci::SpecNotes&) {
              EXPECT_TRUE(spec["root"]["readonly"].get<bool>());
            }},
        // Merge: the image's /etc/group membership of the user, plus the
        // config's groups; Strict: only the config's.
        SecurityCase{"SupplementalGroupsMerge",
                     [](auto& in, auto&) {
                       auto& sc = in.request.config.security_context;
                       sc.run_as_user = 1000;
                       sc.supplemental_groups = {5000};
                       sc.supplemental_groups_policy = oci::SupplementalGroupsPolicy::kMerge;
                     },
                     [](const ContainerRecord& r, const json&, const oci::SpecNotes&) {
                       std::vector<uint32_t> g = r.supplemental_groups;
                       std::sort(g.begin(), g.end());
                       EXPECT_EQ(g, (std::vector<uint32_t>{29, 44, 1000, 5000}));
                     }},
        SecurityCase{"SupplementalGroupsStrict",
                     [](auto& in, auto&) {
                       auto& sc = in.request.config.security_context;
                       sc.run_as_user = 1000;
                       sc.supplemental_groups = {5000};
                       sc.supplemental_groups_policy = oci::SupplementalGroupsPolicy::kStrict;
                     },
                     [](const ContainerRecord& r, const json&, const oci::SpecNotes&) {
                       std::vector<uint32_t> g = r.supplemental_groups;
                       std::sort(g.begin(), g.end());
                       EXPECT_EQ(g, (std::vector<uint32_t>{1000, 5000}));
                     }}),
    [](const auto& info) { return info.param.name; });

struct SecurityRefusal {
  std::string name;
  std::function<void(ContainerPlanInputs&)> change;
  StatusCode code;
  std::string message;
};

class ContainerPlanSecurityRefusesTest : public ::testing::TestWithParam<SecurityRefusal> {};

TEST_P(ContainerPlanSecurityRefusesTest, WithAnActionableStatus) {
  ContainerPlanInputs in = Inputs();
  GetParam().change(in);
  auto plan = PlanContainer(in);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  auto spec = PlanContainerSpec(*plan, in, Facts(*plan));
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), GetParam().code);
  EXPECT_NE(spec.status().message().find(GetParam().message), std::string::npos)
      << spec.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ContainerPlanSecurityRefusesTest,
    ::testing::Values(
        SecurityRefusal{"PrivilegedInUnprivilegedPod",
                        [](auto& in) { in.request.config.security_context.privileged = true; },
                        StatusCode::kInvalidArgument,
                        "privileged container in unprivileged pod sandbox pod1"},
        SecurityRefusal{
            "UnknownUser",
            [](auto& in) { in.request.config.security_context.run_as_username = "nobody-here"; },
            StatusCode::kInvalidArgument, "nobody-here"},
        SecurityRefusal{"UnknownCapability",
                        [](auto& in) {
                          in.request.config.security_context.capabilities.add_capabilities = {
                              "NOT_A_CAP"};
                        },
                        StatusCode::kInvalidArgument, "NOT_A_CAP"},
        SecurityRefusal{"LocalhostSeccompWithoutContent",
                        [](auto& in) {
                          in.request.config.security_context.seccomp =
                              oci::SecurityProfile{.profile_type = oci::ProfileType::kLocalhost,
                                                   .localhost_ref = "/etc/seccomp/app.json"};
                        },
                        StatusCode::kInvalidArgument, "seccomp"},
        SecurityRefusal{"SeccompOnHostWithout",
                        [](auto& in) {
                          in.host.seccomp_enabled = false;
                          in.request.config.security_context.seccomp_profile_path =
                              "runtime/default";
                        },
                        StatusCode::kFailedPrecondition, "does not support seccomp"}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace berth::container
