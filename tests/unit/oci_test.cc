#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/process.h"
#include "oci/handler_registry.h"
#include "oci/spec_builder.h"

namespace berth::oci {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

SpecInputs BaseInputs() {
  SpecInputs in;
  in.container_id = "c0ffee";
  in.rootfs_path = "/var/lib/berth/rootfs/c0ffee";
  in.image_name = "registry.local/busybox:1";
  in.container.name = "app";
  in.container.command = {"/bin/sh"};
  in.container.security_context.namespace_options.pid = NamespaceMode::kContainer;
  in.sandbox.id = "pod1";
  in.sandbox.name = "web";
  in.sandbox.namespace_ = "default";
  in.sandbox.hostname = "web-0";
  in.sandbox.netns_path = "/var/run/netns/pod1";
  in.sandbox.ipc_ns_path = "/proc/100/ns/ipc";
  in.sandbox.uts_ns_path = "/proc/100/ns/uts";
  in.sandbox.pid_ns_path = "/proc/100/ns/pid";
  in.sandbox.cgroup_parent = "/kubepods/pod1";
  in.sandbox.resolv_conf_path = "/var/lib/berth/sandboxes/pod1/resolv.conf";
  in.sandbox.hosts_path = "/var/lib/berth/sandboxes/pod1/hosts";
  in.sandbox.hostname_path = "/var/lib/berth/sandboxes/pod1/hostname";
  in.sandbox.shm_path = "/var/lib/berth/sandboxes/pod1/shm";
  return in;
}

json Build(const SpecInputs& in, SpecNotes* notes = nullptr) {
  auto spec = BuildSpec(in, notes);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : json::object();
}

Status BuildError(const SpecInputs& in) {
  auto spec = BuildSpec(in);
  EXPECT_FALSE(spec.ok());
  return spec.ok() ? OkStatus() : spec.status();
}

std::vector<std::string> Strings(const json& j) { return j.get<std::vector<std::string>>(); }

const json* FindMount(const json& spec, std::string_view dest) {
  for (const json& m : spec["mounts"]) {
    if (m["destination"] == dest) return &m;
  }
  return nullptr;
}

std::vector<std::string> MountDests(const json& spec) {
  std::vector<std::string> out;
  for (const json& m : spec["mounts"]) out.push_back(m["destination"]);
  return out;
}

std::vector<std::string> NamespaceTypes(const json& spec) {
  std::vector<std::string> out;
  for (const json& ns : spec["linux"]["namespaces"]) out.push_back(ns["type"]);
  return out;
}

const json* FindNamespace(const json& spec, std::string_view type) {
  for (const json& ns : spec["linux"]["namespaces"]) {
    if (ns["type"] == type) return &ns;
  }
  return nullptr;
}

// Syscall names allowed unconditionally (action ALLOW, no args).
bool AllowsPlainly(const json& seccomp, std::string_view name) {
  for (const json& rule : seccomp["syscalls"]) {
    if (rule["action"] != "SCMP_ACT_ALLOW" || rule.contains("args")) continue;
    for (const json& n : rule["names"]) {
      if (n == name) return true;
    }
  }
  return false;
}

const json* RuleWithArgsFor(const json& seccomp, std::string_view name) {
  for (const json& rule : seccomp["syscalls"]) {
    if (!rule.contains("args")) continue;
    for (const json& n : rule["names"]) {
      if (n == name) return &rule;
    }
  }
  return nullptr;
}

// ---------------------------------------------------------------- process.args

TEST(ProcessArgsTest, CommandReplacesEntrypointAndCmd) {
  ContainerConfig c;
  c.command = {"/bin/app", "-v"};
  c.args = {"serve"};
  ImageConfig image;
  image.entrypoint = {"/entry"};
  image.cmd = {"default-cmd"};
  auto args = ProcessArgs(c, image);
  ASSERT_TRUE(args.ok());
  EXPECT_THAT(*args, ElementsAre("/bin/app", "-v", "serve"));
}

TEST(ProcessArgsTest, CommandWithoutArgsIgnoresImageCmd) {
  ContainerConfig c;
  c.command = {"/bin/app"};
  ImageConfig image;
  image.entrypoint = {"/entry"};
  image.cmd = {"default-cmd"};
  EXPECT_THAT(*ProcessArgs(c, image), ElementsAre("/bin/app"));
}

TEST(ProcessArgsTest, ArgsReplaceImageCmdAfterEntrypoint) {
  ContainerConfig c;
  c.args = {"a", "b"};
  ImageConfig image;
  image.entrypoint = {"/entry", "--flag"};
  image.cmd = {"default-cmd"};
  EXPECT_THAT(*ProcessArgs(c, image), ElementsAre("/entry", "--flag", "a", "b"));
}

TEST(ProcessArgsTest, ImageEntrypointThenCmd) {
  ContainerConfig c;
  ImageConfig image;
  image.entrypoint = {"/entry"};
  image.cmd = {"x", "y"};
  EXPECT_THAT(*ProcessArgs(c, image), ElementsAre("/entry", "x", "y"));
  image.entrypoint.clear();
  EXPECT_THAT(*ProcessArgs(c, image), ElementsAre("x", "y"));
}

TEST(ProcessArgsTest, BlankEntrypointCountsAsNone) {
  ContainerConfig c;
  ImageConfig image;
  image.entrypoint = {""};
  image.cmd = {"/bin/sh"};
  EXPECT_THAT(*ProcessArgs(c, image), ElementsAre("/bin/sh"));
}

TEST(ProcessArgsTest, NothingToRunIsInvalidArgument) {
  ContainerConfig c;
  c.name = "empty";
  auto args = ProcessArgs(c, ImageConfig{});
  ASSERT_FALSE(args.ok());
  EXPECT_EQ(args.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(args.status().message(), HasSubstr("no command specified"));
  EXPECT_THAT(args.status().message(), HasSubstr("empty"));

  SpecInputs in = BaseInputs();
  in.container.command.clear();
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);
}

TEST(SpecProcessTest, ArgsTerminalAndCwd) {
  SpecInputs in = BaseInputs();
  in.container.command = {"/bin/busybox", "sleep", "1"};
  json spec = Build(in);
  EXPECT_THAT(Strings(spec["process"]["args"]), ElementsAre("/bin/busybox", "sleep", "1"));
  EXPECT_EQ(spec["process"]["terminal"], false);
  EXPECT_EQ(spec["process"]["cwd"], "/");
  EXPECT_EQ(spec["ociVersion"], "1.0.2");

  in.container.tty = true;
  in.image.working_dir = "/srv";
  spec = Build(in);
  EXPECT_EQ(spec["process"]["terminal"], true);
  EXPECT_EQ(spec["process"]["cwd"], "/srv");

  in.container.working_dir = "/work";
  EXPECT_EQ(Build(in)["process"]["cwd"], "/work");

  in.container.working_dir = "relative";
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------- env

TEST(SpecEnvTest, DefaultPathAndHostname) {
  json spec = Build(BaseInputs());
  EXPECT_THAT(Strings(spec["process"]["env"]),
              ElementsAre("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "HOSTNAME=web-0"));
}

TEST(SpecEnvTest, ImageEnvThenCriEnvOverrides) {
  SpecInputs in = BaseInputs();
  in.image.env = {"PATH=/opt/bin", "LANG=C", "KEEP=image"};
  in.container.envs = {{"LANG", "en_US.UTF-8"}, {"NEW", "x=y"}, {"HOSTNAME", "custom"}};
  json spec = Build(in);
  EXPECT_THAT(
      Strings(spec["process"]["env"]),
      ElementsAre("PATH=/opt/bin", "HOSTNAME=custom", "LANG=en_US.UTF-8", "KEEP=image", "NEW=x=y"));
}

TEST(SpecEnvTest, EmptyKeyRejected) {
  SpecInputs in = BaseInputs();
  in.container.envs = {{"", "v"}};
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------- user

constexpr std::string_view kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# a comment\n"
    "broken line\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "app:x:1000:1000:App:/home/app:/bin/sh\n"
    "svc:x:2000:2001::/:/bin/false\r\n";

constexpr std::string_view kGroup =
    "root:x:0:\n"
    "daemon:x:1:\n"
    "wheel:x:10:root,app\n"
    "app:x:1000:\n"
    "audio:x:29:svc,app\n"
    "svcgrp:x:2001:\n"
    "video:x:44:other\n";

TEST(ResolveUserTest, EmptyMeansRoot) {
  auto u = ResolveUser(kPasswd, kGroup, "");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 0u);
  EXPECT_EQ(u->gid, 0u);
  EXPECT_THAT(u->additional_gids, ElementsAre(0u, 10u));  // root is in wheel
}

TEST(ResolveUserTest, NameResolvesUidGidAndGroups) {
  auto u = ResolveUser(kPasswd, kGroup, "app");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->gid, 1000u);
  EXPECT_THAT(u->additional_gids, ElementsAre(1000u, 10u, 29u));
}

TEST(ResolveUserTest, NumericUidTakesGidFromPasswd) {
  auto u = ResolveUser(kPasswd, kGroup, "2000");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 2000u);
  EXPECT_EQ(u->gid, 2001u);  // CRLF line still parsed
  EXPECT_THAT(u->additional_gids, ElementsAre(2001u, 29u));
}

TEST(ResolveUserTest, NumericUidNotInPasswdGetsGidZero) {
  auto u = ResolveUser(kPasswd, kGroup, "4242");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 4242u);
  EXPECT_EQ(u->gid, 0u);
  EXPECT_THAT(u->additional_gids, ElementsAre(0u));
  // No passwd file at all: same.
  u = ResolveUser("", "", "4242");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->gid, 0u);
}

TEST(ResolveUserTest, UidColonGidAndNameColonGroup) {
  auto u = ResolveUser(kPasswd, kGroup, "1000:44");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->gid, 44u);
  EXPECT_THAT(u->additional_gids, ElementsAre(44u, 10u, 29u));

  u = ResolveUser(kPasswd, kGroup, "app:audio");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->gid, 29u);
  EXPECT_THAT(u->additional_gids, ElementsAre(29u, 10u));

  u = ResolveUser(kPasswd, kGroup, "5000:svcgrp");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 5000u);
  EXPECT_EQ(u->gid, 2001u);
}

TEST(ResolveUserTest, UnknownNamesAreInvalidArgument) {
  auto u = ResolveUser(kPasswd, kGroup, "nobody-here");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(u.status().message(), HasSubstr("nobody-here"));

  u = ResolveUser(kPasswd, kGroup, "app:nogroup");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(u.status().message(), HasSubstr("nogroup"));

  u = ResolveUser("", "", "app");  // no /etc/passwd in the image
  EXPECT_EQ(u.status().code(), StatusCode::kInvalidArgument);

  u = ResolveUser(kPasswd, kGroup, "99999999999");
  EXPECT_EQ(u.status().code(), StatusCode::kInvalidArgument);
  u = ResolveUser(kPasswd, kGroup, "app:");
  EXPECT_EQ(u.status().code(), StatusCode::kInvalidArgument);
}

TEST(ResolveUserTest, SupplementalGroupsAppendedWithoutDuplicates) {
  auto u = ResolveUser(kPasswd, kGroup, "app", {29, 500, 500});
  ASSERT_TRUE(u.ok());
  EXPECT_THAT(u->additional_gids, ElementsAre(1000u, 10u, 29u, 500u));
  EXPECT_EQ(ResolveUser(kPasswd, kGroup, "app", {-1}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(EffectiveUserStringTest, Forms) {
  SecurityContext sc;
  ImageConfig image;
  image.user = "app:audio";
  EXPECT_EQ(*EffectiveUserString(sc, image), "app:audio");
  sc.run_as_user = 1234;
  EXPECT_EQ(*EffectiveUserString(sc, image), "1234");
  sc.run_as_group = 55;
  EXPECT_EQ(*EffectiveUserString(sc, image), "1234:55");
  sc.run_as_username = "svc";
  EXPECT_EQ(*EffectiveUserString(sc, image), "svc:55");
  sc.run_as_user = 0;  // explicit root overrides the image's user
  sc.run_as_username.clear();
  sc.run_as_group.reset();
  EXPECT_EQ(*EffectiveUserString(sc, image), "0");

  SecurityContext group_only;
  group_only.run_as_group = 5;
  EXPECT_EQ(EffectiveUserString(group_only, image).status().code(), StatusCode::kInvalidArgument);
  SecurityContext negative;
  negative.run_as_user = -1;
  EXPECT_EQ(EffectiveUserString(negative, image).status().code(), StatusCode::kInvalidArgument);
}

TEST(SpecUserTest, ImageUserResolvedAgainstRootfsFiles) {
  SpecInputs in = BaseInputs();
  in.etc_passwd = kPasswd;
  in.etc_group = kGroup;
  in.image.user = "app";
  in.container.security_context.supplemental_groups = {3000};
  json user = Build(in)["process"]["user"];
  EXPECT_EQ(user["uid"], 1000);
  EXPECT_EQ(user["gid"], 1000);
  EXPECT_EQ(user["additionalGids"], json::array({1000, 10, 29, 3000}));
}

TEST(SpecUserTest, RunAsUserAndGroupOverrideImage) {
  SpecInputs in = BaseInputs();
  in.etc_passwd = kPasswd;
  in.etc_group = kGroup;
  in.image.user = "app";
  in.container.security_context.run_as_user = 2000;
  in.container.security_context.run_as_group = 7;
  json user = Build(in)["process"]["user"];
  EXPECT_EQ(user["uid"], 2000);
  EXPECT_EQ(user["gid"], 7);
  EXPECT_EQ(user["additionalGids"], json::array({7, 29}));
}

TEST(SpecUserTest, UnknownUserNamesTheUserAndContainer) {
  SpecInputs in = BaseInputs();
  in.etc_passwd = kPasswd;
  in.container.security_context.run_as_username = "ghost";
  Status s = BuildError(in);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("ghost"));
  EXPECT_THAT(s.message(), HasSubstr("app"));
}

// ---------------------------------------------------------------- capabilities

TEST(SpecCapsTest, DefaultSetInBoundingEffectivePermittedOnly) {
  json caps = Build(BaseInputs())["process"]["capabilities"];
  EXPECT_THAT(Strings(caps["bounding"]), UnorderedElementsAreArray(DefaultCapabilities()));
  EXPECT_EQ(caps["bounding"], caps["effective"]);
  EXPECT_EQ(caps["bounding"], caps["permitted"]);
  EXPECT_FALSE(caps.contains("inheritable"));
  EXPECT_FALSE(caps.contains("ambient"));
  EXPECT_EQ(DefaultCapabilities().size(), 14u);
}

TEST(SpecCapsTest, AddAndDropWithOrWithoutPrefixAnyCase) {
  SpecInputs in = BaseInputs();
  in.container.security_context.capabilities.add_capabilities = {"NET_ADMIN", "cap_sys_time",
                                                                 "CAP_CHOWN"};
  in.container.security_context.capabilities.drop_capabilities = {"mknod", "CAP_NET_RAW"};
  auto caps = Strings(Build(in)["process"]["capabilities"]["bounding"]);
  EXPECT_NE(std::find(caps.begin(), caps.end(), "CAP_NET_ADMIN"), caps.end());
  EXPECT_NE(std::find(caps.begin(), caps.end(), "CAP_SYS_TIME"), caps.end());
  EXPECT_EQ(std::find(caps.begin(), caps.end(), "CAP_MKNOD"), caps.end());
  EXPECT_EQ(std::find(caps.begin(), caps.end(), "CAP_NET_RAW"), caps.end());
  EXPECT_EQ(std::count(caps.begin(), caps.end(), "CAP_CHOWN"), 1);
  EXPECT_EQ(caps.size(), 14u);
}

TEST(SpecCapsTest, AddAllThenDropOne) {
  SpecInputs in = BaseInputs();
  in.host.last_cap = 40;
  in.container.security_context.capabilities.add_capabilities = {"ALL"};
  in.container.security_context.capabilities.drop_capabilities = {"SYS_ADMIN"};
  auto caps = Strings(Build(in)["process"]["capabilities"]["bounding"]);
  EXPECT_EQ(caps.size(), 40u);
  EXPECT_EQ(std::find(caps.begin(), caps.end(), "CAP_SYS_ADMIN"), caps.end());
  EXPECT_NE(std::find(caps.begin(), caps.end(), "CAP_CHECKPOINT_RESTORE"), caps.end());
}

TEST(SpecCapsTest, DropAllThenAddOne) {
  SpecInputs in = BaseInputs();
  in.container.security_context.capabilities.add_capabilities = {"NET_BIND_SERVICE"};
  in.container.security_context.capabilities.drop_capabilities = {"all"};
  EXPECT_THAT(Strings(Build(in)["process"]["capabilities"]["effective"]),
              ElementsAre("CAP_NET_BIND_SERVICE"));
}

TEST(SpecCapsTest, UnknownCapabilityRejected) {
  SpecInputs in = BaseInputs();
  in.container.security_context.capabilities.add_capabilities = {"CAP_FLY"};
  Status s = BuildError(in);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("CAP_FLY"));
}

TEST(SpecCapsTest, PrivilegedGetsAllKernelCapsLimitedToCurrent) {
  SpecInputs in = BaseInputs();
  in.sandbox.privileged = true;
  in.container.security_context.privileged = true;
  in.container.security_context.capabilities.drop_capabilities = {"ALL"};  // ignored
  in.host.last_cap = 40;
  auto caps = Strings(Build(in)["process"]["capabilities"]["permitted"]);
  EXPECT_EQ(caps.size(), 41u);
  EXPECT_EQ(caps.back(), "CAP_CHECKPOINT_RESTORE");

  in.host.last_cap = 37;
  EXPECT_EQ(Build(in)["process"]["capabilities"]["permitted"].size(), 38u);

  in.host.last_cap = 40;
  in.host.current_caps = 0x000001fffeffffffULL;  // this host: no CAP_SYS_RESOURCE (24)
  caps = Strings(Build(in)["process"]["capabilities"]["permitted"]);
  EXPECT_EQ(caps.size(), 40u);
  EXPECT_EQ(std::find(caps.begin(), caps.end(), "CAP_SYS_RESOURCE"), caps.end());
}

TEST(SpecCapsTest, PrivilegedContainerNeedsPrivilegedPod) {
  SpecInputs in = BaseInputs();
  in.container.security_context.privileged = true;
  Status s = BuildError(in);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("pod1"));
}

// ---------------------------------------------------------------- mounts

TEST(SpecMountsTest, DefaultsAndPodFiles) {
  json spec = Build(BaseInputs());
  EXPECT_THAT(MountDests(spec),
              ElementsAre("/proc", "/dev", "/sys", "/dev/pts", "/dev/mqueue", "/etc/hostname",
                          "/etc/hosts", "/etc/resolv.conf", "/dev/shm", "/sys/fs/cgroup"));
  const json* sys = FindMount(spec, "/sys");
  ASSERT_NE(sys, nullptr);
  EXPECT_EQ((*sys)["type"], "sysfs");
  EXPECT_THAT(Strings((*sys)["options"]), ::testing::Contains("ro"));
  const json* cg = FindMount(spec, "/sys/fs/cgroup");
  ASSERT_NE(cg, nullptr);
  EXPECT_EQ((*cg)["type"], "cgroup");
  EXPECT_THAT(Strings((*cg)["options"]), ::testing::Contains("ro"));
  const json* dev = FindMount(spec, "/dev");
  EXPECT_EQ((*dev)["type"], "tmpfs");
  const json* shm = FindMount(spec, "/dev/shm");
  EXPECT_EQ((*shm)["type"], "bind");
  EXPECT_EQ((*shm)["source"], "/var/lib/berth/sandboxes/pod1/shm");
  EXPECT_THAT(Strings((*shm)["options"]), ElementsAre("rbind", "rprivate", "rw"));
  const json* hosts = FindMount(spec, "/etc/hosts");
  EXPECT_EQ((*hosts)["source"], "/var/lib/berth/sandboxes/pod1/hosts");
  EXPECT_THAT(Strings((*hosts)["options"]), ElementsAre("rbind", "rprivate", "rw"));
  EXPECT_FALSE(spec["linux"].contains("rootfsPropagation"));
}

TEST(SpecMountsTest, ReadonlyRootfsMakesPodFilesReadonly) {
  SpecInputs in = BaseInputs();
  in.container.security_context.readonly_rootfs = true;
  json spec = Build(in);
  EXPECT_EQ(spec["root"]["readonly"], true);
  EXPECT_EQ(spec["root"]["path"], in.rootfs_path);
  for (const char* f : {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"}) {
    EXPECT_THAT(Strings((*FindMount(spec, f))["options"]), ElementsAre("rbind", "rprivate", "ro"))
        << f;
  }
  EXPECT_THAT(Strings((*FindMount(spec, "/dev/shm"))["options"]), ::testing::Contains("rw"));
}

TEST(SpecMountsTest, MissingPodFilesAreSkippedAndShmFallsBackToTmpfs) {
  SpecInputs in = BaseInputs();
  in.sandbox.hosts_path.clear();
  in.sandbox.resolv_conf_path.clear();
  in.sandbox.hostname_path.clear();
  in.sandbox.shm_path.clear();
  json spec = Build(in);
  EXPECT_EQ(FindMount(spec, "/etc/hosts"), nullptr);
  EXPECT_EQ(FindMount(spec, "/etc/resolv.conf"), nullptr);
  const json* shm = FindMount(spec, "/dev/shm");
  ASSERT_NE(shm, nullptr);
  EXPECT_EQ((*shm)["type"], "tmpfs");
}

TEST(SpecMountsTest, HostIpcBindsHostShm) {
  SpecInputs in = BaseInputs();
  in.container.security_context.namespace_options.ipc = NamespaceMode::kNode;
  json spec = Build(in);
  const json* shm = FindMount(spec, "/dev/shm");
  ASSERT_NE(shm, nullptr);
  EXPECT_EQ((*shm)["type"], "bind");
  EXPECT_EQ((*shm)["source"], "/dev/shm");
}

TEST(SpecMountsTest, CriMountsPropagationAndReadonly) {
  SpecInputs in = BaseInputs();
  in.container.mounts = {
      {"/data", "/srv/data", false, MountPropagation::kPrivate, false},
      {"/config", "/srv/config", true, MountPropagation::kHostToContainer, true},
  };
  json spec = Build(in);
  EXPECT_THAT(Strings((*FindMount(spec, "/data"))["options"]),
              ElementsAre("rbind", "rprivate", "rw"));
  const json* config = FindMount(spec, "/config");
  EXPECT_EQ((*config)["type"], "bind");
  EXPECT_EQ((*config)["source"], "/srv/config");
  EXPECT_THAT(Strings((*config)["options"]), ElementsAre("rbind", "rslave", "ro"));
  EXPECT_EQ(spec["linux"]["rootfsPropagation"], "rslave");

  in.container.mounts.push_back(
      {"/shared", "/srv/shared", false, MountPropagation::kBidirectional});
  spec = Build(in);
  EXPECT_THAT(Strings((*FindMount(spec, "/shared"))["options"]),
              ElementsAre("rbind", "rshared", "rw"));
  EXPECT_EQ(spec["linux"]["rootfsPropagation"], "rshared");
}

TEST(SpecMountsTest, RecursiveReadOnly) {
  SpecInputs in = BaseInputs();
  Mount m{"/data", "/srv/data", true, MountPropagation::kPrivate};
  m.recursive_read_only = true;
  in.container.mounts = {m};
  // Refused unless the runtime handler supports it.
  auto refused = BuildSpec(in, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("not supported by this runtime handler"));
  in.runtime_supports_rro = true;
  json spec = Build(in);
  EXPECT_THAT(Strings((*FindMount(spec, "/data"))["options"]),
              ElementsAre("rbind", "rprivate", "ro", "rro"));
  // It needs readonly and private propagation.
  in.container.mounts[0].readonly = false;
  auto s = BuildSpec(in, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("needs readonly"));
  in.container.mounts[0].readonly = true;
  in.container.mounts[0].propagation = MountPropagation::kHostToContainer;
  s = BuildSpec(in, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("private propagation"));
}

TEST(SpecMountsTest, CriMountOverridesDefaultAtSameDestination) {
  SpecInputs in = BaseInputs();
  in.container.mounts = {{"/etc/hosts", "/custom/hosts", true, MountPropagation::kPrivate},
                         {"/dev/shm/", "/custom/shm", false, MountPropagation::kPrivate}};
  json spec = Build(in);
  auto dests = MountDests(spec);
  EXPECT_EQ(std::count(dests.begin(), dests.end(), "/etc/hosts"), 1);
  EXPECT_EQ((*FindMount(spec, "/etc/hosts"))["source"], "/custom/hosts");
  int shm_mounts = 0;
  for (const json& m : spec["mounts"]) {
    if (m["destination"] == "/dev/shm" || m["destination"] == "/dev/shm/") {
      ++shm_mounts;
      EXPECT_EQ(m["source"], "/custom/shm");
    }
  }
  EXPECT_EQ(shm_mounts, 1);
}

TEST(SpecMountsTest, CriDevMountReplacesAllDevMounts) {
  SpecInputs in = BaseInputs();
  in.container.mounts = {{"/dev", "/host-dev", false, MountPropagation::kPrivate}};
  json spec = Build(in);
  // The runtime's own /dev/* mounts go; the pod's /dev/shm stays on top.
  EXPECT_EQ(FindMount(spec, "/dev/pts"), nullptr);
  EXPECT_EQ(FindMount(spec, "/dev/mqueue"), nullptr);
  EXPECT_EQ((*FindMount(spec, "/dev"))["type"], "bind");
  EXPECT_EQ((*FindMount(spec, "/dev/shm"))["source"], "/var/lib/berth/sandboxes/pod1/shm");
  auto dests = MountDests(spec);
  EXPECT_LT(std::find(dests.begin(), dests.end(), "/dev") - dests.begin(),
            std::find(dests.begin(), dests.end(), "/dev/shm") - dests.begin());
}

TEST(SpecMountsTest, SortedParentsBeforeChildren) {
  SpecInputs in = BaseInputs();
  in.container.mounts = {
      {"/a/b/c", "/h/abc", false, MountPropagation::kPrivate},
      {"/a", "/h/a", false, MountPropagation::kPrivate},
      {"/a/b", "/h/ab", false, MountPropagation::kPrivate},
      {"/z", "/h/z", false, MountPropagation::kPrivate},
  };
  auto dests = MountDests(Build(in));
  auto pos = [&](std::string_view d) {
    return std::find(dests.begin(), dests.end(), d) - dests.begin();
  };
  EXPECT_LT(pos("/a"), pos("/a/b"));
  EXPECT_LT(pos("/a/b"), pos("/a/b/c"));
  EXPECT_LT(pos("/a"), pos("/z"));  // same depth keeps CRI order
  EXPECT_LT(pos("/proc"), pos("/a"));
  for (size_t i = 1; i < dests.size(); ++i) {
    EXPECT_LE(std::count(dests[i - 1].begin(), dests[i - 1].end(), '/'),
              std::count(dests[i].begin(), dests[i].end(), '/'));
  }
}

TEST(SpecMountsTest, RelativePathsRejected) {
  SpecInputs in = BaseInputs();
  in.container.mounts = {{"data", "/srv/data", false, MountPropagation::kPrivate}};
  Status s = BuildError(in);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("data"));
  in.container.mounts = {{"/data", "srv/data", false, MountPropagation::kPrivate}};
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);
}

TEST(SpecMountsTest, PrivilegedMakesSysfsAndCgroupWritable) {
  SpecInputs in = BaseInputs();
  in.sandbox.privileged = true;
  in.container.security_context.privileged = true;
  json spec = Build(in);
  for (const char* d : {"/sys", "/sys/fs/cgroup"}) {
    auto opts = Strings((*FindMount(spec, d))["options"]);
    EXPECT_EQ(std::find(opts.begin(), opts.end(), "ro"), opts.end()) << d;
    EXPECT_NE(std::find(opts.begin(), opts.end(), "rw"), opts.end()) << d;
  }
}

// ---------------------------------------------------------------- namespaces

TEST(SpecNamespacesTest, PodModesJoinPodPaths) {
  SpecInputs in = BaseInputs();
  in.container.security_context.namespace_options.pid = NamespaceMode::kPod;
  json spec = Build(in);
  EXPECT_THAT(NamespaceTypes(spec), ElementsAre("pid", "ipc", "uts", "mount", "network"));
  EXPECT_EQ((*FindNamespace(spec, "pid"))["path"], "/proc/100/ns/pid");
  EXPECT_EQ((*FindNamespace(spec, "ipc"))["path"], "/proc/100/ns/ipc");
  EXPECT_EQ((*FindNamespace(spec, "uts"))["path"], "/proc/100/ns/uts");
  EXPECT_EQ((*FindNamespace(spec, "network"))["path"], "/var/run/netns/pod1");
  EXPECT_FALSE(FindNamespace(spec, "mount")->contains("path"));
  EXPECT_EQ(spec["hostname"], "web-0");
}

TEST(SpecNamespacesTest, ContainerPidIsNew) {
  json spec = Build(BaseInputs());
  const json* pid = FindNamespace(spec, "pid");
  ASSERT_NE(pid, nullptr);
  EXPECT_FALSE(pid->contains("path"));
}

TEST(SpecNamespacesTest, NodeModesHaveNoEntries) {
  SpecInputs in = BaseInputs();
  auto& o = in.container.security_context.namespace_options;
  o.network = NamespaceMode::kNode;
  o.pid = NamespaceMode::kNode;
  o.ipc = NamespaceMode::kNode;
  in.sandbox.netns_path.clear();
  json spec = Build(in);
  EXPECT_THAT(NamespaceTypes(spec), ElementsAre("mount"));
  EXPECT_FALSE(spec.contains("hostname"));
}

TEST(SpecNamespacesTest, TargetJoinsTargetsPidNamespace) {
  SpecInputs in = BaseInputs();
  auto& o = in.container.security_context.namespace_options;
  o.pid = NamespaceMode::kTarget;
  o.target_id = "other";
  in.sandbox.target_pid_ns_paths["other"] = "/proc/555/ns/pid";
  EXPECT_EQ((*FindNamespace(Build(in), "pid"))["path"], "/proc/555/ns/pid");

  o.target_id = "missing";
  Status s = BuildError(in);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("missing"));
}

TEST(SpecNamespacesTest, MissingPodPathIsFailedPrecondition) {
  SpecInputs in = BaseInputs();
  in.sandbox.netns_path.clear();
  Status s = BuildError(in);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("network"));
  EXPECT_THAT(s.message(), HasSubstr("pod1"));

  in = BaseInputs();
  in.container.security_context.namespace_options.pid = NamespaceMode::kPod;
  in.sandbox.pid_ns_path.clear();
  EXPECT_EQ(BuildError(in).code(), StatusCode::kFailedPrecondition);
}

TEST(SpecNamespacesTest, InvalidModesRejected) {
  SpecInputs in = BaseInputs();
  in.container.security_context.namespace_options.network = NamespaceMode::kContainer;
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);
  in = BaseInputs();
  in.container.security_context.namespace_options.ipc = NamespaceMode::kTarget;
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);
}

TEST(SpecNamespacesTest, CgroupNamespaceOnlyOnCgroupV2) {
  SpecInputs in = BaseInputs();
  EXPECT_EQ(FindNamespace(Build(in), "cgroup"), nullptr);
  in.host.cgroup_v2 = true;
  const json spec = Build(in);
  const json* cg = FindNamespace(spec, "cgroup");
  ASSERT_NE(cg, nullptr);
  EXPECT_FALSE(cg->contains("path"));
}

// ---------------------------------------------------------------- resources

TEST(SpecResourcesTest, CpuMemoryAndSwapDefaultsToLimit) {
  SpecInputs in = BaseInputs();
  auto& r = in.container.resources;
  r.cpu_period = 100000;
  r.cpu_quota = 50000;
  r.cpu_shares = 512;
  r.cpuset_cpus = "0-1";
  r.cpuset_mems = "0";
  r.memory_limit_in_bytes = 256 << 20;
  json res = Build(in)["linux"]["resources"];
  EXPECT_EQ(res["cpu"]["period"], 100000);
  EXPECT_EQ(res["cpu"]["quota"], 50000);
  EXPECT_EQ(res["cpu"]["shares"], 512);
  EXPECT_EQ(res["cpu"]["cpus"], "0-1");
  EXPECT_EQ(res["cpu"]["mems"], "0");
  EXPECT_EQ(res["memory"]["limit"], 256 << 20);
  EXPECT_EQ(res["memory"]["swap"], 256 << 20);
}

TEST(SpecResourcesTest, ExplicitSwapAndNoSwapController) {
  SpecInputs in = BaseInputs();
  in.container.resources.memory_limit_in_bytes = 100 << 20;
  in.container.resources.memory_swap_limit_in_bytes = 300 << 20;
  EXPECT_EQ(Build(in)["linux"]["resources"]["memory"]["swap"], 300 << 20);
  in.host.swap_controller_available = false;
  json mem = Build(in)["linux"]["resources"]["memory"];
  EXPECT_EQ(mem["limit"], 100 << 20);
  EXPECT_FALSE(mem.contains("swap"));
}

TEST(SpecResourcesTest, UnsetResourcesLeaveNoCpuOrMemory) {
  json res = Build(BaseInputs())["linux"]["resources"];
  EXPECT_FALSE(res.contains("cpu"));
  EXPECT_FALSE(res.contains("memory"));
  EXPECT_FALSE(res.contains("hugepageLimits"));
  EXPECT_FALSE(res.contains("unified"));
}

TEST(SpecResourcesTest, HugepagesAndUnified) {
  SpecInputs in = BaseInputs();
  in.container.resources.hugepage_limits = {{"2MB", 4 << 21}, {"1GB", 0}};
  in.container.resources.unified = {{"memory.high", "1000000"}};
  in.host.cgroup_v2 = true;
  json res = Build(in)["linux"]["resources"];
  ASSERT_EQ(res["hugepageLimits"].size(), 2u);
  EXPECT_EQ(res["hugepageLimits"][0]["pageSize"], "2MB");
  EXPECT_EQ(res["hugepageLimits"][0]["limit"], 4 << 21);
  EXPECT_EQ(res["unified"]["memory.high"], "1000000");

  in.host.hugetlb_available = false;
  EXPECT_FALSE(Build(in)["linux"]["resources"].contains("hugepageLimits"));

  in.host.cgroup_v2 = false;
  Status s = BuildError(in);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("cgroup v2"));
}

// What UpdateContainerResources sends to `runc update` is the create-time
// resources section without the device rules, for the same inputs.
TEST(SpecResourcesTest, UpdateMatchesCreateWithoutDevices) {
  SpecInputs in = BaseInputs();
  auto& r = in.container.resources;
  r.cpu_quota = 20000;
  r.cpu_period = 100000;
  r.memory_limit_in_bytes = 64 << 20;
  r.hugepage_limits = {{"2MB", 4 << 21}};
  r.unified = {{"memory.high", "1000000"}};
  in.host.cgroup_v2 = true;
  json created = Build(in)["linux"]["resources"];
  ASSERT_TRUE(created.contains("devices"));
  created.erase("devices");
  StatusOr<json> update = BuildResourcesUpdate(r, in.container.name, in.host);
  ASSERT_TRUE(update.ok()) << update.status().ToString();
  EXPECT_EQ(*update, created);
  EXPECT_FALSE(update->contains("devices"));

  StatusOr<json> empty = BuildResourcesUpdate(Resources{}, "c", in.host);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, json::object());

  in.host.cgroup_v2 = false;
  StatusOr<json> bad = BuildResourcesUpdate(r, "web", in.host);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("container web"));
}

TEST(SpecResourcesTest, NegativeValuesRejected) {
  SpecInputs in = BaseInputs();
  in.container.resources.memory_limit_in_bytes = -5;
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);
}

TEST(SpecResourcesTest, OomScoreAdjClampedOnlyWhenHostCannotLower) {
  SpecInputs in = BaseInputs();
  EXPECT_FALSE(Build(in)["process"].contains("oomScoreAdj"));

  in.container.resources.oom_score_adj = -997;
  in.host.current_oom_score_adj = -500;
  in.host.can_lower_oom_score_adj = true;
  SpecNotes notes;
  EXPECT_EQ(Build(in, &notes)["process"]["oomScoreAdj"], -997);
  EXPECT_FALSE(notes.oom_score_adj_clamped);

  in.host.can_lower_oom_score_adj = false;
  EXPECT_EQ(Build(in, &notes)["process"]["oomScoreAdj"], -500);
  ASSERT_TRUE(notes.oom_score_adj_clamped);
  EXPECT_EQ(notes.oom_score_adj_clamped->requested, -997);
  EXPECT_EQ(notes.oom_score_adj_clamped->applied, -500);

  in.container.resources.oom_score_adj = 1000;  // raising is always allowed
  EXPECT_EQ(Build(in, &notes)["process"]["oomScoreAdj"], 1000);
  EXPECT_FALSE(notes.oom_score_adj_clamped);
}

TEST(SpecResourcesTest, CgroupsPathPerDriver) {
  SpecInputs in = BaseInputs();
  EXPECT_EQ(Build(in)["linux"]["cgroupsPath"], "/kubepods/pod1/c0ffee");
  in.sandbox.cgroup_parent = "/kubepods/pod1/";
  EXPECT_EQ(Build(in)["linux"]["cgroupsPath"], "/kubepods/pod1/c0ffee");
  in.sandbox.cgroup_parent.clear();
  EXPECT_EQ(Build(in)["linux"]["cgroupsPath"], "/c0ffee");
  // Slice syntax with the cgroupfs driver: laid out as systemd would.
  in.sandbox.cgroup_parent = "kubepods-burstable-pod1.slice";
  EXPECT_EQ(Build(in)["linux"]["cgroupsPath"],
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/c0ffee");
  in.sandbox.cgroup_parent = "/kubepods.slice/kubepods-besteffort.slice";
  EXPECT_EQ(Build(in)["linux"]["cgroupsPath"], "/kubepods.slice/kubepods-besteffort.slice/c0ffee");
  in.sandbox.cgroup_parent = "kubepods--bad.slice";
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);
  in.sandbox.cgroup_parent.clear();

  in.cgroup_driver = CgroupDriver::kSystemd;
  in.sandbox.cgroup_parent = "/kubepods.slice/kubepods-burstable.slice/kubepods-pod1.slice";
  EXPECT_EQ(Build(in)["linux"]["cgroupsPath"], "kubepods-pod1.slice:berth:c0ffee");
  in.sandbox.cgroup_parent = "/not/a/slice";
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);
}

// Where stats readers look: the directory runc makes for cgroupsPath.
TEST(SpecResourcesTest, CgroupDirsForStats) {
  const auto fs = CgroupDriver::kCgroupfs;
  const auto sd = CgroupDriver::kSystemd;
  EXPECT_EQ(*PodCgroupDir("", fs), "");
  EXPECT_EQ(*PodCgroupDir("/kubepods/pod1/", fs), "/kubepods/pod1");
  EXPECT_EQ(*PodCgroupDir("kubepods/pod1", fs), "/kubepods/pod1");
  EXPECT_EQ(*PodCgroupDir("kubepods-burstable-pod1.slice", fs),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice");
  EXPECT_EQ(*ContainerCgroupDir("", fs, "c0ffee"), "/c0ffee");
  EXPECT_EQ(*ContainerCgroupDir("/", fs, "c0ffee"), "/c0ffee");
  EXPECT_EQ(*ContainerCgroupDir("/kubepods/pod1", fs, "c0ffee"), "/kubepods/pod1/c0ffee");
  // The same path BuildSpec gives runc with the cgroupfs driver.
  SpecInputs in = BaseInputs();
  for (const char* parent : {"/kubepods/pod1/", "", "kubepods-burstable-pod1.slice",
                             "/kubepods.slice/kubepods-besteffort.slice"}) {
    in.sandbox.cgroup_parent = parent;
    EXPECT_EQ(Build(in)["linux"]["cgroupsPath"], *ContainerCgroupDir(parent, fs, "c0ffee"))
        << parent;
  }
  // systemd: runc's unit "berth-<id>.scope" below the expanded slice.
  EXPECT_EQ(*PodCgroupDir("/kubepods.slice/kubepods-burstable.slice/kubepods-pod1.slice", sd),
            "/kubepods.slice/kubepods-pod1.slice");
  EXPECT_EQ(*ContainerCgroupDir("kubepods-burstable-pod1.slice", sd, "c0ffee"),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/"
            "berth-c0ffee.scope");
  EXPECT_EQ(*ContainerCgroupDir("", sd, "c0ffee"), "/system.slice/berth-c0ffee.scope");
  EXPECT_EQ(PodCgroupDir("/not/a/slice", sd).status().code(), StatusCode::kInvalidArgument);
}

TEST(SpecResourcesTest, ValidateCgroupParent) {
  EXPECT_TRUE(ValidateCgroupParent("", CgroupDriver::kCgroupfs).ok());
  EXPECT_TRUE(ValidateCgroupParent("/kubepods/burstable/pod1", CgroupDriver::kCgroupfs).ok());
  EXPECT_TRUE(ValidateCgroupParent("kubepods-pod1.slice", CgroupDriver::kSystemd).ok());
  EXPECT_TRUE(
      ValidateCgroupParent("/kubepods.slice/kubepods-pod1.slice", CgroupDriver::kSystemd).ok());
  EXPECT_EQ(ValidateCgroupParent("/a/../../b", CgroupDriver::kCgroupfs).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateCgroupParent("/" + std::string(256, 'x'), CgroupDriver::kCgroupfs).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateCgroupParent("/a\nb", CgroupDriver::kCgroupfs).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateCgroupParent("-kubepods.slice", CgroupDriver::kCgroupfs).code(),
            StatusCode::kInvalidArgument);
  Status s = ValidateCgroupParent("/kubepods/pod1", CgroupDriver::kSystemd);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("not a systemd slice"));
}

// ---------------------------------------------------------------- devices

TEST(SpecDevicesTest, DefaultDenyWithStandardAllowlist) {
  json spec = Build(BaseInputs());
  json rules = spec["linux"]["resources"]["devices"];
  ASSERT_GE(rules.size(), 2u);
  EXPECT_EQ(rules[0], json({{"allow", false}, {"access", "rwm"}}));
  auto allowed = [&](const char* type, int major, int minor) {
    for (const json& r : rules) {
      if (r["allow"] == true && r.value("type", "") == type && r.value("major", -1) == major &&
          r.value("minor", -1) == minor && r["access"] == "rwm") {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(allowed("c", 1, 3));     // null
  EXPECT_TRUE(allowed("c", 1, 5));     // zero
  EXPECT_TRUE(allowed("c", 1, 7));     // full
  EXPECT_TRUE(allowed("c", 1, 8));     // random
  EXPECT_TRUE(allowed("c", 1, 9));     // urandom
  EXPECT_TRUE(allowed("c", 5, 0));     // tty
  EXPECT_TRUE(allowed("c", 5, 2));     // ptmx
  EXPECT_TRUE(allowed("c", 136, -1));  // pts
  EXPECT_TRUE(spec["linux"]["devices"].empty());
}

TEST(SpecDevicesTest, CriDevicesBecomeNodesAndRules) {
  SpecInputs in = BaseInputs();
  Device fuse;
  fuse.container_path = "/dev/fuse";
  fuse.host_path = "/dev/fuse";
  fuse.permissions = "rw";
  fuse.type = 'c';
  fuse.major = 10;
  fuse.minor = 229;
  in.container.devices = {fuse};
  json spec = Build(in);
  ASSERT_EQ(spec["linux"]["devices"].size(), 1u);
  json node = spec["linux"]["devices"][0];
  EXPECT_EQ(node["path"], "/dev/fuse");
  EXPECT_EQ(node["type"], "c");
  EXPECT_EQ(node["major"], 10);
  EXPECT_EQ(node["minor"], 229);
  EXPECT_EQ(node["fileMode"], 0666);
  json last = spec["linux"]["resources"]["devices"].back();
  EXPECT_EQ(
      last,
      json({{"allow", true}, {"type", "c"}, {"major", 10}, {"minor", 229}, {"access", "rw"}}));

  in.container.devices[0].permissions = "rwx";
  Status s = BuildError(in);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("/dev/fuse"));
}

TEST(SpecDevicesTest, PrivilegedAllowsAllAndAddsHostDevices) {
  SpecInputs in = BaseInputs();
  in.sandbox.privileged = true;
  in.container.security_context.privileged = true;
  Device sda{"/dev/sda", "/dev/sda", "", 'b', 8, 0, 0660, 0, 6};
  in.host_devices = {sda};
  json spec = Build(in);
  EXPECT_EQ(spec["linux"]["resources"]["devices"],
            json::array({{{"allow", true}, {"access", "rwm"}}}));
  ASSERT_EQ(spec["linux"]["devices"].size(), 1u);
  EXPECT_EQ(spec["linux"]["devices"][0]["type"], "b");
  EXPECT_EQ(spec["linux"]["devices"][0]["gid"], 6);
}

// ---------------------------------------------------------------- masked / readonly paths

TEST(SpecPathsTest, DefaultsWhenAbsent) {
  json linux = Build(BaseInputs())["linux"];
  EXPECT_EQ(Strings(linux["maskedPaths"]), DefaultMaskedPaths());
  EXPECT_EQ(Strings(linux["readonlyPaths"]), DefaultReadonlyPaths());
  EXPECT_THAT(DefaultMaskedPaths(), ::testing::Contains("/sys/devices/virtual/powercap"));
  EXPECT_THAT(DefaultReadonlyPaths(), ::testing::Contains("/proc/sysrq-trigger"));
}

TEST(SpecPathsTest, ExplicitEmptyMeansNone) {
  SpecInputs in = BaseInputs();
  in.container.security_context.masked_paths = std::vector<std::string>{};
  in.container.security_context.readonly_paths = std::vector<std::string>{};
  json linux = Build(in)["linux"];
  EXPECT_TRUE(linux["maskedPaths"].empty());
  EXPECT_TRUE(linux["readonlyPaths"].empty());
}

TEST(SpecPathsTest, ExplicitListsUsedVerbatim) {
  SpecInputs in = BaseInputs();
  in.container.security_context.masked_paths = std::vector<std::string>{"/proc/kcore"};
  in.container.security_context.readonly_paths = std::vector<std::string>{"/proc/sys", "/x"};
  json linux = Build(in)["linux"];
  EXPECT_THAT(Strings(linux["maskedPaths"]), ElementsAre("/proc/kcore"));
  EXPECT_THAT(Strings(linux["readonlyPaths"]), ElementsAre("/proc/sys", "/x"));
}

TEST(SpecPathsTest, PrivilegedHasNone) {
  SpecInputs in = BaseInputs();
  in.sandbox.privileged = true;
  in.container.security_context.privileged = true;
  in.container.security_context.masked_paths = std::vector<std::string>{"/proc/kcore"};
  json linux = Build(in)["linux"];
  EXPECT_TRUE(linux["maskedPaths"].empty());
  EXPECT_TRUE(linux["readonlyPaths"].empty());
}

// ---------------------------------------------------------------- seccomp

TEST(SeccompDefaultTest, ProfileFacts) {
  json p = DefaultSeccompProfile(DefaultCapabilities(), "amd64");
  EXPECT_EQ(p["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(p["defaultErrnoRet"], 1);
  EXPECT_THAT(Strings(p["architectures"]),
              ElementsAre("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"));
  for (const char* name : {"read", "write", "openat", "execve", "futex", "epoll_pwait",
                           "io_uring_setup", "arch_prctl", "modify_ldt", "ptrace", "chroot"}) {
    EXPECT_TRUE(AllowsPlainly(p, name)) << name;
  }
  for (const char* name : {"mount",
                           "umount2",
                           "unshare",
                           "setns",
                           "reboot",
                           "kexec_load",
                           "init_module",
                           "bpf",
                           "keyctl",
                           "add_key",
                           "swapon",
                           "acct",
                           "clock_settime",
                           "open_by_handle_at",
                           "socket",
                           "personality",
                           "clone",
                           "clone3",
                           "arm_fadvise64_64",
                           "kcmp"}) {
    EXPECT_FALSE(AllowsPlainly(p, name)) << name;
  }
  // socket: anything but AF_VSOCK.
  const json* socket = RuleWithArgsFor(p, "socket");
  ASSERT_NE(socket, nullptr);
  EXPECT_EQ((*socket)["args"][0]["value"], 40);
  EXPECT_EQ((*socket)["args"][0]["op"], "SCMP_CMP_NE");
  // clone without namespace flags.
  const json* clone = RuleWithArgsFor(p, "clone");
  ASSERT_NE(clone, nullptr);
  EXPECT_EQ((*clone)["args"][0]["index"], 0);
  EXPECT_EQ((*clone)["args"][0]["value"], 2114060288);
  EXPECT_EQ((*clone)["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
  // clone3 says ENOSYS so that the libc falls back to clone.
  bool clone3_enosys = false;
  for (const json& r : p["syscalls"]) {
    if (r["names"] == json::array({"clone3"}) && r["action"] == "SCMP_ACT_ERRNO" &&
        r["errnoRet"] == 38) {
      clone3_enosys = true;
    }
  }
  EXPECT_TRUE(clone3_enosys);
  // Five personality values.
  int personas = 0;
  for (const json& r : p["syscalls"]) {
    if (r["names"] == json::array({"personality"})) ++personas;
  }
  EXPECT_EQ(personas, 5);
}

TEST(SeccompDefaultTest, CapabilityConditionalRules) {
  std::vector<std::string> caps = DefaultCapabilities();
  caps.push_back("CAP_SYS_ADMIN");
  caps.push_back("CAP_SYS_TIME");
  caps.push_back("CAP_SYS_PTRACE");
  json p = DefaultSeccompProfile(caps, "amd64");
  for (const char* name : {"mount", "umount2", "unshare", "setns", "clone", "clone3",
                           "clock_settime", "kcmp", "process_madvise"}) {
    EXPECT_TRUE(AllowsPlainly(p, name)) << name;
  }
  EXPECT_EQ(RuleWithArgsFor(p, "clone"), nullptr);
  for (const json& r : p["syscalls"]) EXPECT_NE(r["action"], "SCMP_ACT_ERRNO") << r.dump();

  std::vector<std::string> no_chroot = {"CAP_CHOWN"};
  EXPECT_FALSE(AllowsPlainly(DefaultSeccompProfile(no_chroot, "amd64"), "chroot"));
}

TEST(SeccompDefaultTest, ArchAndKernelConditions) {
  json arm = DefaultSeccompProfile(DefaultCapabilities(), "arm64");
  EXPECT_THAT(Strings(arm["architectures"]), ElementsAre("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"));
  EXPECT_FALSE(AllowsPlainly(arm, "arch_prctl"));
  EXPECT_TRUE(AllowsPlainly(arm, "set_tls"));
  json s390 = DefaultSeccompProfile(DefaultCapabilities(), "s390x");
  const json* clone = RuleWithArgsFor(s390, "clone");
  ASSERT_NE(clone, nullptr);
  EXPECT_EQ((*clone)["args"][0]["index"], 1);

  json old = DefaultSeccompProfile(DefaultCapabilities(), "amd64", KernelVersion{4, 4});
  EXPECT_FALSE(AllowsPlainly(old, "ptrace"));
  json recent = DefaultSeccompProfile(DefaultCapabilities(), "amd64", KernelVersion{6, 1});
  EXPECT_TRUE(AllowsPlainly(recent, "ptrace"));
}

TEST(SpecSeccompTest, RuntimeDefaultFollowsContainerCaps) {
  SpecInputs in = BaseInputs();
  in.container.security_context.seccomp = SecurityProfile{ProfileType::kRuntimeDefault, ""};
  SpecNotes notes;
  json spec = Build(in, &notes);
  EXPECT_EQ(notes.seccomp, "runtime/default");
  ASSERT_TRUE(spec["linux"].contains("seccomp"));
  EXPECT_EQ(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_FALSE(AllowsPlainly(spec["linux"]["seccomp"], "mount"));

  in.container.security_context.capabilities.add_capabilities = {"SYS_ADMIN"};
  spec = Build(in);
  EXPECT_TRUE(AllowsPlainly(spec["linux"]["seccomp"], "mount"));
}

TEST(SpecSeccompTest, UnconfinedAndUnsetHaveNoSeccomp) {
  SpecInputs in = BaseInputs();
  SpecNotes notes;
  EXPECT_FALSE(Build(in, &notes)["linux"].contains("seccomp"));
  EXPECT_EQ(notes.seccomp, "unconfined");
  in.container.security_context.seccomp = SecurityProfile{ProfileType::kUnconfined, ""};
  in.container.security_context.seccomp_profile_path = "runtime/default";  // field wins
  EXPECT_FALSE(Build(in)["linux"].contains("seccomp"));
}

TEST(SpecSeccompTest, DeprecatedStrings) {
  SpecInputs in = BaseInputs();
  auto& sc = in.container.security_context;
  for (const char* p : {"runtime/default", "docker/default"}) {
    sc.seccomp_profile_path = p;
    EXPECT_EQ(Build(in)["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO") << p;
  }
  for (const char* p : {"unconfined", ""}) {
    sc.seccomp_profile_path = p;
    EXPECT_FALSE(Build(in)["linux"].contains("seccomp")) << p;
  }
  sc.seccomp_profile_path = "localhost/profiles/x.json";  // relative
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);
  sc.seccomp_profile_path = "bogus";
  Status s = BuildError(in);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("bogus"));

  // kubelet's form: "localhost/" + an absolute path.
  sc.seccomp_profile_path = "localhost//etc/berth/seccomp/p.json";
  EXPECT_EQ(SeccompLocalhostPath(sc), "/etc/berth/seccomp/p.json");
  in.seccomp_localhost_content = R"({"defaultAction":"SCMP_ACT_LOG"})";
  SpecNotes notes;
  EXPECT_EQ(Build(in, &notes)["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_LOG");
  EXPECT_EQ(notes.seccomp, "localhost//etc/berth/seccomp/p.json");
}

TEST(SpecSeccompTest, LocalhostProfileContent) {
  SpecInputs in = BaseInputs();
  auto& sc = in.container.security_context;
  sc.seccomp = SecurityProfile{ProfileType::kLocalhost, "/var/lib/kubelet/seccomp/audit.json"};
  EXPECT_EQ(SeccompLocalhostPath(sc), "/var/lib/kubelet/seccomp/audit.json");

  Status missing = BuildError(in);
  EXPECT_EQ(missing.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.message(), HasSubstr("/var/lib/kubelet/seccomp/audit.json"));

  in.seccomp_localhost_content = "not json";
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);
  in.seccomp_localhost_content = R"({"syscalls":[]})";
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);

  in.seccomp_localhost_content = R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}],
    "comment": "dropped"})";
  json seccomp = Build(in)["linux"]["seccomp"];
  EXPECT_EQ(seccomp["defaultAction"], "SCMP_ACT_ALLOW");
  EXPECT_EQ(seccomp["syscalls"][0]["names"][0], "keyctl");
  EXPECT_FALSE(seccomp.contains("comment"));

  sc.seccomp = SecurityProfile{ProfileType::kLocalhost, "relative.json"};
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);
}

TEST(SpecSeccompTest, PrivilegedHasNoSeccomp) {
  SpecInputs in = BaseInputs();
  in.sandbox.privileged = true;
  in.container.security_context.privileged = true;
  in.container.security_context.seccomp = SecurityProfile{ProfileType::kRuntimeDefault, ""};
  EXPECT_FALSE(Build(in)["linux"].contains("seccomp"));
  EXPECT_EQ(SeccompLocalhostPath(in.container.security_context), std::nullopt);
}

TEST(SpecSeccompTest, HostWithoutSeccomp) {
  SpecInputs in = BaseInputs();
  in.host.seccomp_enabled = false;
  EXPECT_FALSE(Build(in)["linux"].contains("seccomp"));  // unconfined is fine
  in.container.security_context.seccomp = SecurityProfile{ProfileType::kRuntimeDefault, ""};
  EXPECT_EQ(BuildError(in).code(), StatusCode::kFailedPrecondition);
}

// ---------------------------------------------------------------- sysctls, annotations, misc

TEST(SpecSysctlTest, PodSysctlsPassed) {
  SpecInputs in = BaseInputs();
  in.sandbox.sysctls = {{"net.ipv4.ip_unprivileged_port_start", "0"}, {"kernel.shmmax", "1024"}};
  json sysctl = Build(in)["linux"]["sysctl"];
  EXPECT_EQ(sysctl["net.ipv4.ip_unprivileged_port_start"], "0");
  EXPECT_EQ(sysctl["kernel.shmmax"], "1024");
}

TEST(SpecSysctlTest, NetSysctlWithHostNetworkRejected) {
  SpecInputs in = BaseInputs();
  in.container.security_context.namespace_options.network = NamespaceMode::kNode;
  in.sandbox.sysctls = {{"net.core.somaxconn", "1024"}};
  Status s = BuildError(in);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("net.core.somaxconn"));
}

TEST(SpecSysctlTest, IpcSysctlWithHostIpcRejected) {
  SpecInputs in = BaseInputs();
  in.container.security_context.namespace_options.ipc = NamespaceMode::kNode;
  in.sandbox.sysctls = {{"fs.mqueue.msg_max", "20"}};
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);
  in.sandbox.sysctls = {{"net.core.somaxconn", "1024"}};  // pod network: fine
  EXPECT_EQ(Build(in)["linux"]["sysctl"]["net.core.somaxconn"], "1024");
}

TEST(SpecAnnotationsTest, CriAnnotationsAndContainerdKeys) {
  SpecInputs in = BaseInputs();
  in.container.annotations = {{"example.com/a", "1"},
                              {"io.kubernetes.cri.container-type", "spoofed"}};
  json a = Build(in)["annotations"];
  EXPECT_EQ(a["example.com/a"], "1");
  EXPECT_EQ(a["io.kubernetes.cri.container-type"], "container");
  EXPECT_EQ(a["io.kubernetes.cri.container-name"], "app");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-id"], "pod1");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-name"], "web");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-namespace"], "default");
  EXPECT_EQ(a["io.kubernetes.cri.image-name"], "registry.local/busybox:1");
}

TEST(SpecMiscTest, NoNewPrivsAndApparmorNote) {
  SpecInputs in = BaseInputs();
  SpecNotes notes;
  EXPECT_EQ(Build(in, &notes)["process"]["noNewPrivileges"], false);
  EXPECT_FALSE(notes.apparmor_ignored);
  in.container.security_context.no_new_privs = true;
  in.container.security_context.apparmor = SecurityProfile{ProfileType::kRuntimeDefault, ""};
  json spec = Build(in, &notes);
  EXPECT_EQ(spec["process"]["noNewPrivileges"], true);
  EXPECT_FALSE(spec["process"].contains("apparmorProfile"));
  EXPECT_TRUE(notes.apparmor_ignored);
}

TEST(SpecMiscTest, InvalidBasics) {
  SpecInputs in = BaseInputs();
  in.rootfs_path = "rootfs";
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);
  in = BaseInputs();
  in.container_id.clear();
  EXPECT_EQ(BuildError(in).code(), StatusCode::kInvalidArgument);
}

TEST(SpecMiscTest, PodResourcesBecomeSandboxAnnotations) {
  SpecInputs in = BaseInputs();
  json spec = Build(in);
  EXPECT_FALSE(spec["annotations"].contains("io.kubernetes.cri.sandbox-memory"));
  in.sandbox.resources = PodResources{100000, 50000, 512, 268435456};
  spec = Build(in);
  EXPECT_EQ(spec["annotations"]["io.kubernetes.cri.sandbox-cpu-period"], "100000");
  EXPECT_EQ(spec["annotations"]["io.kubernetes.cri.sandbox-cpu-quota"], "50000");
  EXPECT_EQ(spec["annotations"]["io.kubernetes.cri.sandbox-cpu-shares"], "512");
  EXPECT_EQ(spec["annotations"]["io.kubernetes.cri.sandbox-memory"], "268435456");
}

TEST(SpecMiscTest, JsonIsDeterministicAndParses) {
  auto a = BuildSpecJson(BaseInputs());
  auto b = BuildSpecJson(BaseInputs());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(json::parse(*a), Build(BaseInputs()));
}

// ---------------------------------------------------------------- end to end with runc

class RuncEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!RunProcess({"runc", "--version"}).ok()) GTEST_SKIP() << "runc not installed";
    if (access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "/bin/busybox missing";
    char tmpl[] = "/tmp/berth-oci-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directories(dir_ / "state");
  }

  void TearDown() override {
    for (const std::string& id : ids_) {
      (void)RunProcess({"runc", "--root", (dir_ / "state").string(), "delete", "-f", id});
      std::error_code ec;
      for (const auto& ctrl : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
        std::filesystem::path leaf = ctrl.path() / "berth-test" / id;
        if (std::filesystem::exists(leaf, ec)) rmdir(leaf.c_str());
        rmdir((ctrl.path() / "berth-test").c_str());  // fails harmlessly while in use
      }
    }
    if (!dir_.empty()) {
      EXPECT_TRUE(RemoveAll(dir_).ok());
    }
  }

  // Writes a bundle for `args` and runs it; returns the exit code and output.
  std::pair<int, std::string> Run(const std::vector<std::string>& args) {
    std::string id = "berth-oci-" + RandomHex(4);
    ids_.push_back(id);
    std::filesystem::path bundle = dir_ / id;
    std::filesystem::path rootfs = bundle / "rootfs";
    std::filesystem::create_directories(rootfs / "bin");
    std::filesystem::copy_file("/bin/busybox", rootfs / "bin" / "busybox");
    chmod((rootfs / "bin" / "busybox").c_str(), 0755);

    SpecInputs in;
    in.container_id = id;
    in.rootfs_path = rootfs.string();
    in.container.name = "e2e";
    in.container.command = args;
    auto& ns = in.container.security_context.namespace_options;
    ns.network = NamespaceMode::kNode;
    ns.ipc = NamespaceMode::kNode;
    ns.pid = NamespaceMode::kContainer;
    in.container.security_context.seccomp = SecurityProfile{ProfileType::kRuntimeDefault, ""};
    in.sandbox.id = "e2e-pod";
    in.sandbox.cgroup_parent = "/berth-test";
    in.host.cgroup_v2 = std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers");
    if (auto last = ReadFile("/proc/sys/kernel/cap_last_cap"); last.ok()) {
      in.host.last_cap = std::stoi(*last);
    }
    auto spec = BuildSpecJson(in);
    EXPECT_TRUE(spec.ok()) << spec.status();
    if (!spec.ok()) return {-1, ""};
    EXPECT_TRUE(json::parse(*spec)["linux"]["cgroupsPath"] == "/berth-test/" + id);
    EXPECT_TRUE(WriteFileAtomic(bundle / "config.json", *spec).ok());

    auto r = RunProcess(
        {"runc", "--root", (dir_ / "state").string(), "run", "--bundle", bundle.string(), id});
    if (!r.ok()) return {-1, r.status().ToString()};
    return {r->signal == 0 ? r->exit_code : -1, r->out + r->err};
  }

  std::filesystem::path dir_;
  std::vector<std::string> ids_;
};

TEST_F(RuncEndToEndTest, BusyboxTrueExitsZero) {
  auto [code, out] = Run({"/bin/busybox", "true"});
  EXPECT_EQ(code, 0) << out;
}

TEST_F(RuncEndToEndTest, RuntimeDefaultSeccompIsActive) {
  auto [code, out] = Run({"/bin/busybox", "grep", "Seccomp", "/proc/self/status"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("Seccomp:\t2"));
}

TEST_F(RuncEndToEndTest, NonZeroExitIsReported) {
  auto [code, out] = Run({"/bin/busybox", "sh", "-c", "exit 3"});
  EXPECT_EQ(code, 3) << out;
}

}  // namespace
}  // namespace berth::oci

// ------------------------------------------------------------ handler registry -----

namespace berth::oci {
namespace {

RuntimeProbe Works(bool works, bool rro = false) {
  RuntimeProbe p;
  p.works = works;
  if (!works) p.error = "cgroups in hybrid mode not supported";
  p.features.recursive_read_only_mounts = rro;
  return p;
}

std::vector<HandlerState> CrunAndRunc() {
  return {{"crun", "/usr/bin/crun", false, {}}, {"runc", "/usr/sbin/runc", false, {}}};
}

TEST(HandlerRegistryTest, DefaultIsChosenOnceEveryProbeFinished) {
  HandlerRegistry r(CrunAndRunc(), "");
  EXPECT_EQ(r.DefaultName(), "");
  EXPECT_FALSE(r.AllProbed());
  r.SetProbeResult("runc", Works(true));
  EXPECT_EQ(r.DefaultName(), "") << "crun, preferred, is still being probed";
  r.SetProbeResult("crun", Works(false));
  EXPECT_TRUE(r.AllProbed());
  EXPECT_EQ(r.DefaultName(), "runc");

  HandlerRegistry both(CrunAndRunc(), "");
  both.SetProbeResult("crun", Works(true));
  both.SetProbeResult("runc", Works(true));
  EXPECT_EQ(both.DefaultName(), "crun");

  HandlerRegistry none(CrunAndRunc(), "");
  none.SetProbeResult("crun", Works(false));
  none.SetProbeResult("runc", Works(false));
  EXPECT_EQ(none.DefaultName(), "runc") << "kept so that Status can say why it does not work";

  HandlerRegistry configured(CrunAndRunc(), "crun");
  EXPECT_EQ(configured.DefaultName(), "crun") << "known before any probe";
}

TEST(HandlerRegistryTest, WaitForBlocksUntilTheHandlersProbeFinished) {
  HandlerRegistry r(CrunAndRunc(), "");
  auto timed_out = r.WaitFor("runc", std::chrono::milliseconds(20));
  EXPECT_EQ(timed_out.status().code(), StatusCode::kUnavailable) << timed_out.status();
  EXPECT_THAT(timed_out.status().message(), ::testing::HasSubstr("still being probed"));

  std::thread prober([&] {
    r.SetProbeResult("runc", Works(true, /*rro=*/true));
    r.SetProbeResult("crun", Works(false));
  });
  auto def = r.WaitFor("", std::chrono::seconds(30));
  prober.join();
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->name, "runc");
  EXPECT_TRUE(def->probed);
  EXPECT_TRUE(def->probe.features.recursive_read_only_mounts);
  auto crun = r.WaitFor("crun", std::chrono::milliseconds(0));
  ASSERT_TRUE(crun.ok()) << crun.status();
  EXPECT_FALSE(crun->probe.works) << "a failed probe is returned; callers check works";
}

TEST(HandlerRegistryTest, UnknownHandlersAreRefusedWithoutWaiting) {
  HandlerRegistry r(CrunAndRunc(), "");
  auto unknown = r.WaitFor("kata", std::chrono::seconds(30));
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), ::testing::HasSubstr("configured: crun, runc"));

  HandlerRegistry empty({}, "");
  auto none = empty.WaitFor("", std::chrono::seconds(30));
  EXPECT_EQ(none.status().code(), StatusCode::kFailedPrecondition) << none.status();
}

}  // namespace
}  // namespace berth::oci
