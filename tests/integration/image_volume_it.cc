// Image volumes (CRI Mount.image) on a real berthd with real runc: an image's layers mounted
// read-only into a container, whole or one sub path of it; writes refused; the layers on the
// host unchanged; the image kept while a container uses it; nothing left mounted afterwards.
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

#include <sys/sysmacros.h>

namespace berth::testing {
namespace {

constexpr char kVolumeRepo[] = "it/voldata";

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

class ImageVolumeIT : public RuntimeServiceIT {
 protected:
  void SetUp() override {
    RuntimeServiceIT::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // Two layers: the volume is an overlay of both. The second hides a file of the first.
    ImageSpec spec;
    LayerSpec base;
    base.entries = {FileSpec::Dir("data"), FileSpec::File("data/hello.txt", "hello from layer 0\n"),
                    FileSpec::File("data/gone.txt", "hidden by layer 1\n"),
                    FileSpec::Dir("data/sub"), FileSpec::File("data/sub/inner.txt", "inner\n"),
                    // Resolved inside the image, these lead to its own /data/sub and /etc
                    // (which it has not), never to the host's.
                    FileSpec::Symlink("data/abs", "/data/sub"),
                    FileSpec::Symlink("up", "../../../../../../../../etc")};
    LayerSpec top;
    top.entries = {FileSpec::Dir("data"), FileSpec::File("data/top.txt", "from layer 1\n"),
                   WhiteoutFile("data/gone.txt")};
    spec.layers = {base, top};
    StatusOr<BuiltImage> built = BuildImage(spec);
    IT_ASSERT_OK(built.status());
    volume_image_ = *built;
    IT_ASSERT_OK(
        PushImage(PushTarget{registry_->url(), "", "", "", ""}, kVolumeRepo, "v1", volume_image_));
    volume_ref_ = StrCat(registry_->host(), "/", kVolumeRepo, ":v1");
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::PullImageRequest req;
    req.mutable_image()->set_image(volume_ref_);
    cri::PullImageResponse resp;
    IT_ASSERT_GRPC_OK(berthd_->images().PullImage(&ctx, req, &resp));
    ASSERT_EQ(resp.image_ref(), volume_image_.config_digest.str());
  }

  static cri::Mount ImageMount(const std::string& container_path, const std::string& image,
                               const std::string& sub_path = "") {
    cri::Mount m;
    m.set_container_path(container_path);
    m.mutable_image()->set_image(image);
    m.set_image_sub_path(sub_path);
    return m;
  }

  grpc::Status Pull(const std::string& image) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::PullImageRequest req;
    req.mutable_image()->set_image(image);
    cri::PullImageResponse resp;
    return berthd_->images().PullImage(&ctx, req, &resp);
  }

  // CreateContainer without the fixture's bookkeeping: safe to call from several threads.
  grpc::Status CreateRaw(const std::string& pod_id, const cri::PodSandboxConfig& pod,
                         const cri::ContainerConfig& config, std::string* id) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    *req.mutable_config() = config;
    *req.mutable_sandbox_config() = pod;
    cri::CreateContainerResponse resp;
    grpc::Status s = berthd_->runtime().CreateContainer(&ctx, req, &resp);
    if (s.ok()) *id = resp.container_id();
    return s;
  }

  grpc::Status RemoveImage(const std::string& image) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::RemoveImageRequest req;
    req.mutable_image()->set_image(image);
    cri::RemoveImageResponse resp;
    return berthd_->images().RemoveImage(&ctx, req, &resp);
  }

  // Every file below a layer directory with its content (directories and links by name).
  std::map<std::string, std::string> Snapshot(const fs::path& dir) {
    std::map<std::string, std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const std::string rel = fs::relative(it->path(), dir).string();
      if (it->is_symlink()) {
        out[rel] = "link:" + fs::read_symlink(it->path()).string();
      } else if (it->is_regular_file()) {
        out[rel] = ReadOr(it->path());
      } else {
        out[rel] = "other";
      }
    }
    return out;
  }

  BuiltImage volume_image_;
  std::string volume_ref_;
};

TEST_F(ImageVolumeIT, MountedReadOnlyWholeOrSubPathAndKeptWhileUsed) {
  const fs::path layers = berthd_->root() / "snapshots" / "layers";
  std::vector<std::map<std::string, std::string>> before;
  for (const Digest& d : volume_image_.diff_ids) before.push_back(Snapshot(layers / d.hex()));
  ASSERT_EQ(before.size(), 2u);
  ASSERT_EQ(before[0].at("data/hello.txt"), "hello from layer 0\n");

  cri::PodSandboxConfig pod = PodConfig("imgvol", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  cri::ContainerConfig c = CtrConfig("reader", {"sleep", "600"});
  *c.add_mounts() = ImageMount("/vol", volume_ref_);
  *c.add_mounts() = ImageMount("/sub", volume_image_.config_digest.str(), "data/sub");
  *c.add_mounts() = ImageMount("/abs", volume_ref_, "data/abs");
  // A single-layer image (busybox) as a volume too.
  *c.add_mounts() = ImageMount("/bb", image_, "bin");
  std::string id;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, c, &id));
  IT_ASSERT_GRPC_OK(StartCtr(id));

  // Readable: both layers, the whiteout applied, sub paths (also through a symlink).
  EXPECT_EQ(ExecOut(id, {"cat", "/vol/data/hello.txt"}), "hello from layer 0\n");
  EXPECT_EQ(ExecOut(id, {"cat", "/vol/data/top.txt"}), "from layer 1\n");
  EXPECT_EQ(ExecOut(id, {"sh", "-c", "test -e /vol/data/gone.txt && echo present || echo absent"}),
            "absent\n");
  EXPECT_EQ(ExecOut(id, {"cat", "/sub/inner.txt"}), "inner\n");
  EXPECT_EQ(ExecOut(id, {"cat", "/abs/inner.txt"}), "inner\n");
  EXPECT_EQ(ExecOut(id, {"sh", "-c", "test -x /bb/busybox && echo yes"}), "yes\n");
  EXPECT_EQ(ExecOut(id, {"sh", "-c", "ls /sub"}), "inner.txt\n");

  // Writes refused, by the kernel: a read-only mount.
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{"sh", "-c", "echo x > /vol/data/new.txt"},
        std::vector<std::string>{"sh", "-c", "echo x >> /vol/data/hello.txt"},
        std::vector<std::string>{"rm", "/sub/inner.txt"},
        std::vector<std::string>{"mkdir", "/vol/newdir"}}) {
    cri::ExecSyncResponse resp;
    IT_ASSERT_GRPC_OK(Exec(id, cmd, 10, &resp));
    EXPECT_NE(resp.exit_code(), 0) << ::testing::PrintToString(cmd);
    EXPECT_THAT(resp.stderr(), HasSubstr("Read-only file system")) << ::testing::PrintToString(cmd);
  }
  std::string mounts = ExecOut(id, {"cat", "/proc/self/mounts"});
  EXPECT_THAT(mounts, ::testing::ContainsRegex(" /vol overlay ro,"));
  EXPECT_THAT(mounts, ::testing::ContainsRegex(" /sub overlay ro,"));

  // The status shows the volumes as asked for.
  std::optional<cri::ContainerStatus> st = CtrStatusOf(id);
  ASSERT_TRUE(st.has_value());
  ASSERT_EQ(st->mounts_size(), 4);
  EXPECT_EQ(st->mounts(0).container_path(), "/vol");
  EXPECT_EQ(st->mounts(0).image().image(), volume_ref_);
  EXPECT_TRUE(st->mounts(0).readonly());
  EXPECT_EQ(st->mounts(1).image().image(), volume_image_.config_digest.str());
  EXPECT_EQ(st->mounts(1).image_sub_path(), "data/sub");
  EXPECT_EQ(st->mounts(3).image_sub_path(), "bin");

  // The image cannot go while a container uses it as a volume (nor busybox, its rootfs).
  grpc::Status rm = RemoveImage(volume_ref_);
  EXPECT_EQ(rm.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(rm);
  EXPECT_THAT(rm.error_message(), HasSubstr(id));
  rm = RemoveImage(image_);
  EXPECT_EQ(rm.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(rm);

  // Stopped, it still holds the image; removed, it does not.
  IT_ASSERT_GRPC_OK(StopCtr(id, 0));
  rm = RemoveImage(volume_ref_);
  EXPECT_EQ(rm.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(rm);
  IT_ASSERT_GRPC_OK(RemoveCtr(id));
  EXPECT_THAT(MountsUnder(berthd_->dir()),
              ::testing::Not(::testing::Contains(::testing::HasSubstr("/volumes/"))));

  // The layers on the host are exactly as pulled.
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(Snapshot(layers / volume_image_.diff_ids[i].hex()), before[i]) << "layer " << i;
  }
  IT_EXPECT_GRPC_OK(RemoveImage(volume_ref_));
  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after the image volume container");
}

TEST_F(ImageVolumeIT, BadVolumesAreClearErrorsAndLeaveNothing) {
  cri::PodSandboxConfig pod = PodConfig("imgvolbad", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  struct Case {
    cri::Mount mount;
    grpc::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {ImageMount("/v", StrCat(registry_->host(), "/it/absent:v9")), grpc::StatusCode::NOT_FOUND,
       "is not present; pull it first"},
      {ImageMount("/v", volume_ref_, "data/nope"), grpc::StatusCode::NOT_FOUND,
       "does not exist in the image"},
      // A symlink pointing far up stays inside the image: its /etc does not exist.
      {ImageMount("/v", volume_ref_, "up"), grpc::StatusCode::NOT_FOUND,
       "does not exist in the image"},
      {ImageMount("/v", volume_ref_, "../etc"), grpc::StatusCode::INVALID_ARGUMENT,
       "must not contain \"..\""},
      {ImageMount("/v", volume_ref_, "data/../../etc"), grpc::StatusCode::INVALID_ARGUMENT,
       "must not contain \"..\""},
      {ImageMount("/v", volume_ref_, "/etc"), grpc::StatusCode::INVALID_ARGUMENT,
       "must be relative"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.mount.ShortDebugString());
    cri::ContainerConfig c = CtrConfig("bad", {"sleep", "600"});
    *c.add_mounts() = k.mount;
    std::string id;
    grpc::Status s = CreateCtr(pod_id, pod, c, &id);
    EXPECT_EQ(s.error_code(), k.code) << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr(k.message));
    EXPECT_THAT(s.error_message(), HasSubstr("/v"));
    EXPECT_THAT(MountsUnder(berthd_->state() / "containers"), IsEmpty());
    EXPECT_THAT(DirEntries(berthd_->state() / "containers"), IsEmpty());
  }
  // An image volume with a host path as well is refused.
  cri::ContainerConfig c = CtrConfig("both", {"sleep", "600"});
  cri::Mount m = ImageMount("/v", volume_ref_);
  m.set_host_path("/tmp");
  *c.add_mounts() = m;
  std::string id;
  grpc::Status s = CreateCtr(pod_id, pod, c, &id);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after refused image volumes");
}

// An image volume is mounted ro,nosuid,nodev, as containerd and CRI-O mount them: a setuid-root
// binary of the image runs without privilege from the volume, and a device node of the image
// cannot be opened through it. The same binary in the container's rootfs (mounted with suid)
// does gain an effective UID of 0, so the setuid bit itself works here.
TEST_F(ImageVolumeIT, VolumeIsNosuidNodev) {
  StatusOr<ImageSpec> spec = BusyboxImageSpec(MediaTypes::kDocker);
  IT_ASSERT_OK(spec.status());
  const std::string busybox = ReadOr("/bin/busybox");
  ASSERT_GT(busybox.size(), 100000u);
  LayerSpec extra;
  FileSpec null_dev;
  null_dev.path = "suid/null";
  null_dev.type = FileSpec::kCharDev;
  null_dev.rdev = makedev(1, 3);
  null_dev.mode = 0666;
  extra.entries = {FileSpec::Dir("suid"), FileSpec::File("suid/busybox", busybox, 04755), null_dev};
  spec->layers.push_back(extra);
  StatusOr<BuiltImage> built = BuildImage(*spec);
  IT_ASSERT_OK(built.status());
  IT_ASSERT_OK(PushImage(PushTarget{registry_->url(), "", "", "", ""}, "it/suid", "v1", *built));
  const std::string ref = StrCat(registry_->host(), "/it/suid:v1");
  IT_ASSERT_GRPC_OK(Pull(ref));

  cri::PodSandboxConfig pod = PodConfig("imgvolsuid", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  cri::ContainerConfig c = CtrConfig("suid", {"sleep", "600"});
  c.mutable_image()->set_image(ref);
  c.mutable_linux()->mutable_security_context()->mutable_run_as_user()->set_value(1234);
  *c.add_mounts() = ImageMount("/vol", ref);
  std::string id;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, c, &id));
  IT_ASSERT_GRPC_OK(StartCtr(id));

  EXPECT_EQ(ExecOut(id, {"id", "-u"}), "1234\n");
  // busybox drops set-user-ID privileges for most applets; `crontab` needs them and says
  // "must be suid to work properly" when it runs without an effective UID of 0.
  auto crontab = [&](const std::string& busybox) {
    cri::ExecSyncResponse r;
    grpc::Status s = Exec(id, {busybox, "crontab", "-l"}, 10, &r);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return r.stdout() + r.stderr();
  };
  // The rootfs copy: setuid works in this container.
  EXPECT_THAT(crontab("/suid/busybox"), ::testing::Not(HasSubstr("must be suid")));
  EXPECT_THAT(crontab("/bin/busybox"), HasSubstr("must be suid to work properly"));
  // The volume's copy: nosuid, so no privilege is gained.
  EXPECT_THAT(crontab("/vol/suid/busybox"), HasSubstr("must be suid to work properly"));
  // nodev: the image's device node cannot be opened through the volume.
  cri::ExecSyncResponse resp;
  IT_ASSERT_GRPC_OK(Exec(id, {"sh", "-c", "head -c1 /vol/suid/null"}, 10, &resp));
  EXPECT_NE(resp.exit_code(), 0);
  EXPECT_THAT(resp.stderr(), HasSubstr("Permission denied"));

  // /proc/self/mountinfo inside: the per-mount options of /vol are ro,nosuid,nodev.
  std::string mountinfo = ExecOut(id, {"cat", "/proc/self/mountinfo"});
  std::string vol_line;
  for (const std::string& line : Split(mountinfo, '\n')) {
    std::vector<std::string> f = Split(line, ' ');
    if (f.size() > 5 && f[4] == "/vol") vol_line = line;
  }
  ASSERT_FALSE(vol_line.empty()) << mountinfo;
  const std::string opts = Split(vol_line, ' ')[5];
  EXPECT_THAT(Split(opts, ','), ::testing::IsSupersetOf({"ro", "nosuid", "nodev"})) << vol_line;

  IT_ASSERT_GRPC_OK(StopCtr(id, 0));
  IT_ASSERT_GRPC_OK(RemoveCtr(id));
  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  IT_EXPECT_GRPC_OK(RemoveImage(ref));
  ExpectNoLeaks("after the nosuid image volume");
}

// RemoveImage racing CreateContainer of the same image, as the rootfs or as an image volume:
// the in-use check and the create's use of the image are atomic (ImageService::Use holds the
// image from its resolution until the container's record is saved), so in every pair exactly
// one side wins: the removal, and the create is NOT_FOUND; or the create, and the removal is
// FAILED_PRECONDITION with the image and its layers still there. Never both.
TEST_F(ImageVolumeIT, RemoveImageRacingCreateNeverDeletesLayersInUse) {
  // The rootfs case needs a runnable image of its own: busybox (shared with the suite's
  // image, so kept) plus a layer only this image has.
  StatusOr<ImageSpec> spec = BusyboxImageSpec(MediaTypes::kDocker);
  IT_ASSERT_OK(spec.status());
  LayerSpec marker;
  marker.entries = {FileSpec::File("racer-marker", "racer\n")};
  spec->layers.push_back(marker);
  StatusOr<BuiltImage> racer = BuildImage(*spec);
  IT_ASSERT_OK(racer.status());
  IT_ASSERT_OK(PushImage(PushTarget{registry_->url(), "", "", "", ""}, "it/racer", "v1", *racer));
  const std::string racer_ref = StrCat(registry_->host(), "/it/racer:v1");
  const fs::path layers = berthd_->root() / "snapshots" / "layers";

  cri::PodSandboxConfig pod = PodConfig("imgrace", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));

  struct Variant {
    std::string name;
    std::string ref;
    std::vector<Digest> diff_ids;
    bool as_volume;
  };
  const std::vector<Variant> variants = {
      {"rootfs", racer_ref, racer->diff_ids, false},
      {"volume", volume_ref_, volume_image_.diff_ids, true},
  };
  std::mt19937 rng(4242);  // NOLINT(bugprone-random-generator-seed): the same offsets every run
  for (const Variant& v : variants) {
    int create_won = 0, remove_won = 0, held_during_create = 0;
    for (int round = 0; round < 24; ++round) {
      SCOPED_TRACE(StrCat(v.name, " round ", round));
      IT_ASSERT_GRPC_OK(Pull(v.ref));
      cri::ContainerConfig c = CtrConfig(StrCat("race-", v.name, "-", round), {"sleep", "600"});
      if (v.as_volume) {
        *c.add_mounts() = ImageMount("/vol", v.ref);
      } else {
        c.mutable_image()->set_image(v.ref);
      }
      // Spread the removal from a little before the create to the end of it (resolution,
      // mounts, runc create): a negative offset delays the create instead.
      const int offset_us = std::uniform_int_distribution<int>(-15000, 60000)(rng);
      std::string id;
      grpc::Status created, removed;
      std::thread creator([&] {
        if (offset_us < 0) std::this_thread::sleep_for(std::chrono::microseconds(-offset_us));
        created = CreateRaw(pod_id, pod, c, &id);
      });
      std::thread remover([&] {
        if (offset_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(offset_us));
        removed = RemoveImage(v.ref);
      });
      creator.join();
      remover.join();
      ASSERT_NE(created.ok(), removed.ok())
          << "create: " << Describe(created) << "; remove: " << Describe(removed);
      if (created.ok()) {
        ++create_won;
        ctr_ids_.insert(id);
        EXPECT_EQ(removed.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(removed);
        if (removed.error_message().find("being created") != std::string::npos) {
          ++held_during_create;
        }
        // The image and every layer of it are still there, under the container.
        grpc::ClientContext ctx;
        SetDeadline(ctx);
        cri::ImageStatusRequest sreq;
        sreq.mutable_image()->set_image(v.ref);
        cri::ImageStatusResponse sresp;
        IT_ASSERT_GRPC_OK(berthd_->images().ImageStatus(&ctx, sreq, &sresp));
        EXPECT_TRUE(sresp.has_image());
        for (const Digest& d : v.diff_ids) {
          EXPECT_TRUE(fs::is_directory(layers / d.hex())) << "layer " << d.str() << " deleted";
        }
        IT_ASSERT_GRPC_OK(RemoveCtr(id));
      } else {
        ++remove_won;
        EXPECT_EQ(created.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(created);
        EXPECT_THAT(created.error_message(), HasSubstr("pull it first"));
      }
    }
    std::cout << "[ race ] " << v.name << ": create won " << create_won << " (the removal refused "
              << held_during_create << " times by the create's hold), removal won " << remove_won
              << "\n";
  }
  EXPECT_THAT(MountsUnder(berthd_->state() / "containers"), IsEmpty());
  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after racing creates and removals");
}

}  // namespace
}  // namespace berth::testing
