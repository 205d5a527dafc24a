// Pods in user namespaces of their own (CRI userns_options mode POD) on a real berthd with real
// runc: processes run as host IDs of the mapped range, the container sees itself as root, the
// rootfs and volumes are ID-mapped so that files keep their owners on the host, and /proc,
// /sys and /dev work as in any pod.
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

namespace berth::testing {
namespace {

class UsernsIT : public RuntimeServiceIT {
 protected:
  // A range of 65536 host IDs no other test picks at the same time (likely).
  static uint32_t PickHostBase() {
    std::mt19937 rng(std::random_device{}());
    return 1000000u + (rng() % 1000u) * 65536u;
  }

  static void SetUserns(cri::PodSandboxConfig& pod, uint32_t base) {
    auto* u = pod.mutable_linux()
                  ->mutable_security_context()
                  ->mutable_namespace_options()
                  ->mutable_userns_options();
    u->set_mode(cri::POD);
    for (auto* list : {u->add_uids(), u->add_gids()}) {
      list->set_container_id(0);
      list->set_host_id(base);
      list->set_length(65536);
    }
  }

  cri::StatusResponse RuntimeStatus() {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::StatusRequest req;
    req.set_verbose(true);
    cri::StatusResponse resp;
    grpc::Status s = berthd_->runtime().Status(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return resp;
  }

  // "Uid:" (or "Gid:") fields of /proc/<pid>/status: real, effective, saved, fs.
  static std::vector<uint32_t> StatusIds(int pid, const std::string& key) {
    const std::string text = ReadOr(StrCat("/proc/", pid, "/status"));
    const size_t at = text.find("\n" + key + ":");
    std::vector<uint32_t> out;
    if (at == std::string::npos) return out;
    std::istringstream line(text.substr(at + key.size() + 2, text.find('\n', at + 1) - at));
    uint32_t v;
    while (line >> v) out.push_back(v);
    return out;
  }
};

TEST_F(UsernsIT, StatusAdvertisesUserNamespacesWhereTheProbePasses) {
  cri::StatusResponse st = RuntimeStatus();
  std::map<std::string, cri::RuntimeHandler> handlers;
  for (const auto& h : st.runtime_handlers()) handlers[h.name()] = h;
  ASSERT_TRUE(handlers.contains("runc"));
  // These machines (Linux 6.18, layers on ext4, runc 1.1.5) can.
  EXPECT_TRUE(handlers["runc"].features().user_namespaces());
  nlohmann::json info = nlohmann::json::parse(st.info().at("runtimeHandlers"));
  EXPECT_EQ(info["runc"]["userNamespacesError"], "");
}

TEST_F(UsernsIT, PodRunsAsMappedHostIdsAndVolumesKeepOwners) {
  BridgeNetwork net;
  ASSERT_NO_FATAL_FAILURE(net = SetUpBridgeNetwork("bridge"));
  const uint32_t base = PickHostBase();
  cri::PodSandboxConfig pod = PodConfig("userns", cri::POD, cri::POD);
  pod.set_hostname("in-userns");
  SetUserns(pod, base);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));

  // A volume with files of two owners, neither of them root.
  const fs::path vol = berthd_->dir() / "vol";
  ASSERT_TRUE(fs::create_directories(vol));
  ASSERT_EQ(::chown(vol.c_str(), 0, 0), 0);
  IT_ASSERT_OK(WriteFileAtomic(vol / "owned-1234", "data\n", 0644));
  ASSERT_EQ(::chown((vol / "owned-1234").c_str(), 1234, 4321), 0);

  cri::ContainerConfig c = CtrConfig("main", {"sleep", "600"});
  cri::Mount* m = c.add_mounts();
  m->set_container_path("/vol");
  m->set_host_path(vol.string());
  // Also an image volume, made of ID-mapped layers.
  cri::Mount* im = c.add_mounts();
  im->set_container_path("/img");
  im->mutable_image()->set_image(image_);
  std::string id;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, c, &id));
  IT_ASSERT_GRPC_OK(StartCtr(id));

  // On the host: every ID of the container's init is the host ID container 0 maps to.
  const int pid = CtrPid(id);
  ASSERT_GT(pid, 0);
  EXPECT_THAT(StatusIds(pid, "Uid"), ::testing::Each(base));
  EXPECT_THAT(StatusIds(pid, "Gid"), ::testing::Each(base));
  EXPECT_EQ(StatusIds(pid, "Uid").size(), 4u);

  // Inside: root, with the mappings asked for.
  EXPECT_EQ(ExecOut(id, {"id", "-u"}), "0\n");
  EXPECT_EQ(ExecOut(id, {"id", "-g"}), "0\n");
  std::string uid_map = ExecOut(id, {"cat", "/proc/self/uid_map"});
  std::istringstream um(uid_map);
  uint32_t inside = 1, outside = 0, length = 0;
  um >> inside >> outside >> length;
  EXPECT_EQ(inside, 0u);
  EXPECT_EQ(outside, base);
  EXPECT_EQ(length, 65536u);

  // The image's files are root's inside (ID-mapped layers), and the rootfs is writable.
  EXPECT_EQ(ExecOut(id, {"stat", "-c", "%u:%g", "/bin/busybox"}), "0:0\n");
  EXPECT_EQ(ExecOut(id, {"stat", "-c", "%u:%g", "/"}), "0:0\n");
  EXPECT_EQ(ExecOut(id, {"sh", "-c", "echo w > /written && cat /written"}), "w\n");
  EXPECT_EQ(ExecOut(id, {"stat", "-c", "%u:%g", "/img/bin/busybox"}), "0:0\n");

  // The volume: owners as on the host; what the pod's root writes is root's on the host.
  EXPECT_EQ(ExecOut(id, {"stat", "-c", "%u:%g", "/vol/owned-1234"}), "1234:4321\n");
  EXPECT_EQ(ExecOut(id, {"stat", "-c", "%u:%g", "/vol"}), "0:0\n");
  ExecOut(id, {"sh", "-c", "echo new > /vol/by-pod && mkdir /vol/dir && chown 555:556 /vol/dir"});
  struct stat st;
  ASSERT_EQ(::stat((vol / "by-pod").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
  ASSERT_EQ(::stat((vol / "dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 555u);
  EXPECT_EQ(st.st_gid, 556u);
  ASSERT_EQ(::stat((vol / "owned-1234").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);

  // /proc, /sys, /dev as in any pod: its own sysfs (the pod's interfaces), devices that work.
  EXPECT_THAT(ExecOut(id, {"ls", "/sys/class/net"}), HasSubstr("eth0"));
  EXPECT_EQ(ExecOut(id, {"sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c"}), "4\n");
  EXPECT_THAT(ExecOut(id, {"cat", "/proc/1/cmdline"}), HasSubstr("berth-pause"));
  EXPECT_EQ(ExecOut(id, {"hostname"}), "in-userns\n");
  EXPECT_THAT(ExecOut(id, {"cat", "/proc/self/mounts"}), HasSubstr("mqueue /dev/mqueue"));

  // The pod's /etc files are its root's (owned by the mapped host root), and root can edit them.
  for (const char* f : {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}) {
    EXPECT_EQ(ExecOut(id, {"stat", "-c", "%u:%g", f}), "0:0\n") << f;
  }
  EXPECT_EQ(ExecOut(id, {"sh", "-c", "echo '10.9.9.9 extra' >> /etc/hosts && tail -n1 /etc/hosts"}),
            "10.9.9.9 extra\n");
  const fs::path sandbox_dir = berthd_->state() / "sandboxes" / pod_id;
  for (const char* f : {"hosts", "hostname", "resolv.conf"}) {
    ASSERT_EQ(::stat((sandbox_dir / f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_uid, base) << f;
    EXPECT_EQ(st.st_gid, base) << f;
  }

  IT_ASSERT_GRPC_OK(StopCtr(id, 0));
  IT_ASSERT_GRPC_OK(RemoveCtr(id));
  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after the user namespace pod");
  EXPECT_THAT(MountsUnder(vol), IsEmpty());
}

// Bind mounts keep HostToContainer and Bidirectional propagation in a user-namespace pod: berthd's
// ID-mapped clone of a shared host mount joins its peer group, so a mount made on the host below
// the source after the container started shows up inside. (The other direction, container to
// host, the kernel forbids for any mount namespace owned by a user namespace other than the
// host's: it turns shared mounts into slaves when such a namespace is made.)
TEST_F(UsernsIT, BindMountPropagationFromTheHost) {
  BridgeNetwork net;
  ASSERT_NO_FATAL_FAILURE(net = SetUpBridgeNetwork("bridge"));
  const uint32_t base = PickHostBase();
  cri::PodSandboxConfig pod = PodConfig("usernsprop", cri::POD, cri::POD);
  SetUserns(pod, base);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));

  // A shared tmpfs on the host, as the kubelet's volume directories are (rshared /var/lib/kubelet).
  const fs::path src = berthd_->dir() / "prop-src";
  ASSERT_TRUE(fs::create_directories(src));
  ASSERT_EQ(::mount("berth-prop", src.c_str(), "tmpfs", 0, "mode=0755"), 0) << strerror(errno);
  ScopeGuard unmount_src([&] { ::umount2(src.c_str(), MNT_DETACH); });
  ASSERT_EQ(::mount(nullptr, src.c_str(), nullptr, MS_SHARED, nullptr), 0) << strerror(errno);
  for (const char* d : {"h2c", "bidi", "private"}) ASSERT_TRUE(fs::create_directories(src / d));

  cri::ContainerConfig c = CtrConfig("prop", {"sleep", "600"});
  struct Bind {
    const char* name;
    cri::MountPropagation propagation;
  };
  for (const Bind& b :
       {Bind{"h2c", cri::PROPAGATION_HOST_TO_CONTAINER},
        Bind{"bidi", cri::PROPAGATION_BIDIRECTIONAL}, Bind{"private", cri::PROPAGATION_PRIVATE}}) {
    cri::Mount* m = c.add_mounts();
    m->set_container_path(StrCat("/", b.name));
    m->set_host_path((src / b.name).string());
    m->set_propagation(b.propagation);
  }
  std::string id;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, c, &id));
  IT_ASSERT_GRPC_OK(StartCtr(id));
  EXPECT_EQ(ExecOut(id, {"id", "-u"}), "0\n");

  // After the start: a new mount on the host below each source.
  std::vector<fs::path> host_mounts;
  ScopeGuard unmount_subs([&] {
    for (const fs::path& p : host_mounts) ::umount2(p.c_str(), MNT_DETACH);
  });
  for (const char* d : {"h2c", "bidi", "private"}) {
    const fs::path sub = src / d / "late";
    ASSERT_TRUE(fs::create_directories(sub));
    ASSERT_EQ(::mount("berth-late", sub.c_str(), "tmpfs", 0, "mode=0755"), 0) << strerror(errno);
    host_mounts.push_back(sub);
    IT_ASSERT_OK(WriteFileAtomic(sub / "file", StrCat("late mount in ", d, "\n"), 0644));
  }
  EXPECT_EQ(ExecOut(id, {"cat", "/h2c/late/file"}), "late mount in h2c\n");
  EXPECT_EQ(ExecOut(id, {"cat", "/bidi/late/file"}), "late mount in bidi\n");
  // Private: the container sees the directory, not what was mounted on it later.
  EXPECT_EQ(ExecOut(id, {"sh", "-c", "test -e /private/late/file && echo seen || echo unseen"}),
            "unseen\n");
  const std::string mounts = ExecOut(id, {"cat", "/proc/self/mounts"});
  EXPECT_THAT(mounts, HasSubstr("berth-late /h2c/late tmpfs"));
  EXPECT_THAT(mounts, HasSubstr("berth-late /bidi/late tmpfs"));

  IT_ASSERT_GRPC_OK(StopCtr(id, 0));
  IT_ASSERT_GRPC_OK(RemoveCtr(id));
  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  // Removing the container unmounted berthd's ID-mapped clones, and nothing of the host: the
  // clones are slaves (or private), so their unmount did not travel back to the host's mounts.
  for (const char* d : {"h2c", "bidi", "private"}) {
    EXPECT_EQ(ReadOr(src / d / "late" / "file"), StrCat("late mount in ", d, "\n"));
  }
  // The late mounts go; no copy of them is left anywhere below berthd's directories.
  unmount_subs.Cancel();
  unmount_src.Cancel();
  for (const fs::path& p : host_mounts)
    EXPECT_EQ(::umount2(p.c_str(), 0), 0) << p << ": " << strerror(errno);
  EXPECT_EQ(::umount2(src.c_str(), 0), 0) << strerror(errno);
  ExpectNoLeaks("after the propagation pod");
  EXPECT_THAT(MountsUnder(berthd_->state() / "containers"), IsEmpty());
  EXPECT_THAT(MountsUnder(src), IsEmpty());
}

TEST_F(UsernsIT, BadUserNamespaceOptionsAreClearErrors) {
  const uint32_t base = PickHostBase();
  struct Case {
    std::string name;
    std::function<void(cri::PodSandboxConfig&)> change;
    grpc::StatusCode code;
    std::string message;
  };
  auto userns = [](cri::PodSandboxConfig& p) -> cri::UserNamespace* {
    return p.mutable_linux()
        ->mutable_security_context()
        ->mutable_namespace_options()
        ->mutable_userns_options();
  };
  const std::vector<Case> cases = {
      {"hostnet",
       [&](cri::PodSandboxConfig& p) {
         SetUserns(p, base);
         p.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
             cri::NODE);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "node's network"},
      {"nomaps", [&](cri::PodSandboxConfig& p) { userns(p)->set_mode(cri::POD); },
       grpc::StatusCode::INVALID_ARGUMENT, "needs uid and gid mappings"},
      {"overlap",
       [&](cri::PodSandboxConfig& p) {
         SetUserns(p, base);
         auto* extra = userns(p)->add_uids();
         extra->set_container_id(100);
         extra->set_host_id(base + 70000);
         extra->set_length(10);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "overlap"},
      {"container", [&](cri::PodSandboxConfig& p) { userns(p)->set_mode(cri::CONTAINER); },
       grpc::StatusCode::INVALID_ARGUMENT, "not supported"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    cri::PodSandboxConfig pod = PodConfig(StrCat("bad-", k.name), cri::POD, cri::POD);
    k.change(pod);
    std::string id;
    grpc::Status s = RunPod(pod, &id);
    EXPECT_EQ(s.error_code(), k.code) << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr(k.message));
  }
  EXPECT_THAT(PodIds(), IsEmpty());
  ExpectNoLeaks("after refused user namespace pods");
}

}  // namespace
}  // namespace berth::testing
