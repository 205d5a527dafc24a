// Image volumes (CRI Mount.image) on a real berthd with real runc: an image's layers mounted
// read-only into a container, whole or one sub path of it; writes refused; the layers on the
// host unchanged; the image kept while a container uses it; nothing left mounted afterwards.
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

namespace berth::testing {
namespace {

constexpr char kVolumeRepo[] = "it/voldata";

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

}  // namespace
}  // namespace berth::testing
