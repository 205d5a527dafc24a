// The image-only socket (--image-socket): the ImageService in runtime.v1 and runtime.v1alpha2
// on a second socket of a real berthd, sharing the image store with the main socket, and no
// RuntimeService there. Needs root like the other integration tests; traffic only to
// 127.0.0.1.
//
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

#include "runtime/v1alpha2/api.grpc.pb.h"

namespace berth::testing {
namespace {

namespace a2 = ::runtime::v1alpha2;

class ImageSocketIT : public RuntimeServiceIT {
 protected:
  fs::path ImageSocket() const { return berthd_->dir() / "image.sock"; }

  std::vector<std::string> DaemonArgs() override {
    std::vector<std::string> a = DefaultArgs();
    a.emplace_back("--image-socket");
    a.emplace_back(ImageSocket().string());
    return a;
  }
};

TEST_F(ImageSocketIT, ServesImagesOnlyInBothVersions) {
  struct stat st;
  ASSERT_EQ(::stat(ImageSocket().c_str(), &st), 0) << ImageSocket();
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660);

  auto channel = grpc::CreateChannel(StrCat("unix://", ImageSocket().string()),
                                     grpc::InsecureChannelCredentials());
  auto v1_images = cri::ImageService::NewStub(channel);
  auto a2_images = a2::ImageService::NewStub(channel);
  const std::string id = busybox_->config_digest.str();

  // The image the fixture pulled through the main socket is there.
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ListImagesResponse resp;
    IT_ASSERT_GRPC_OK(v1_images->ListImages(&ctx, cri::ListImagesRequest(), &resp));
    ASSERT_EQ(resp.images_size(), 1);
    EXPECT_EQ(resp.images(0).id(), id);
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    a2::ImageStatusRequest req;
    req.mutable_image()->set_image(image_);
    a2::ImageStatusResponse resp;
    IT_ASSERT_GRPC_OK(a2_images->ImageStatus(&ctx, req, &resp));
    EXPECT_EQ(resp.image().id(), id);
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ImageFsInfoResponse resp;
    IT_ASSERT_GRPC_OK(v1_images->ImageFsInfo(&ctx, cri::ImageFsInfoRequest(), &resp));
    ASSERT_GE(resp.image_filesystems_size(), 1);
    EXPECT_EQ(resp.image_filesystems(0).fs_id().mountpoint(), berthd_->root().string());
  }

  // No RuntimeService on the image socket, in either version.
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::VersionResponse resp;
    grpc::Status s =
        cri::RuntimeService::NewStub(channel)->Version(&ctx, cri::VersionRequest(), &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << Describe(s);
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    a2::VersionResponse resp;
    grpc::Status s =
        a2::RuntimeService::NewStub(channel)->Version(&ctx, a2::VersionRequest(), &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << Describe(s);
  }

  // Removing through the image socket removes it for the main socket; pulling it back too.
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    a2::RemoveImageRequest req;
    req.mutable_image()->set_image(image_);
    a2::RemoveImageResponse resp;
    IT_ASSERT_GRPC_OK(a2_images->RemoveImage(&ctx, req, &resp));
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ListImagesResponse resp;
    IT_ASSERT_GRPC_OK(berthd_->images().ListImages(&ctx, cri::ListImagesRequest(), &resp));
    EXPECT_EQ(resp.images_size(), 0);
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::PullImageRequest req;
    req.mutable_image()->set_image(image_);
    cri::PullImageResponse resp;
    IT_ASSERT_GRPC_OK(v1_images->PullImage(&ctx, req, &resp));
    EXPECT_EQ(resp.image_ref(), id);
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ImageStatusRequest req;
    req.mutable_image()->set_image(image_);
    cri::ImageStatusResponse resp;
    IT_ASSERT_GRPC_OK(berthd_->images().ImageStatus(&ctx, req, &resp));
    EXPECT_EQ(resp.image().id(), id);
  }

  // Bad input gets the same answer as on the main socket.
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::PullImageRequest req;
    cri::PullImageResponse resp;
    grpc::Status s = v1_images->PullImage(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  }

  // Gone with the daemon.
  channel.reset();
  v1_images.reset();
  a2_images.reset();
  IT_ASSERT_OK(berthd_->Stop());
  EXPECT_FALSE(Exists(ImageSocket())) << "image socket left after shutdown";
}

// berthd refuses an image socket that is the main socket, with a message naming the setting.
TEST(ImageSocketConfigIT, SameAsMainSocketIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root like the other daemon tests";
  BerthdProcess berthd(BERTHD_PATH);
  IT_ASSERT_OK(berthd.Prepare());
  Status s =
      berthd.Start({"--image-socket", berthd.socket_path().string()}, std::chrono::seconds(5));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(berthd.LogTail(4000), HasSubstr("grpc.image_socket must differ"));
}

}  // namespace
}  // namespace berth::testing
