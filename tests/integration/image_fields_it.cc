// Image fields the kubelet reads, over berthd's real socket: `pinned` from the configured
// pinned images (in ListImages, ImageStatus, StreamImages and v1alpha2), `image_id` of
// containers next to `image_ref`, ImageFsInfo's container filesystems, and the runtime
// handler an image was pulled for. Needs root like the
// other integration tests; traffic only to 127.0.0.1.
//
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

#include "runtime/v1alpha2/api.grpc.pb.h"

namespace berth::testing {
namespace {

namespace a2 = ::runtime::v1alpha2;

class PinnedImageIT : public RuntimeServiceIT {
 protected:
  std::vector<std::string> DaemonArgs() override {
    std::vector<std::string> a = DefaultArgs();
    // The registry's images by prefix: the fixture's image_ is "<registry host>/it/busybox:...".
    a.emplace_back("--pinned-image");
    a.emplace_back(StrCat(registry_->host(), "/it/*"));
    return a;
  }

  cri::Image StatusOf(const std::string& name) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ImageStatusRequest req;
    req.mutable_image()->set_image(name);
    cri::ImageStatusResponse resp;
    grpc::Status s = berthd_->images().ImageStatus(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return resp.image();
  }
};

TEST_F(PinnedImageIT, ConfiguredImagesAreReportedPinnedEverywhere) {
  EXPECT_TRUE(StatusOf(image_).pinned());
  EXPECT_TRUE(StatusOf(busybox_->config_digest.str()).pinned());
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ListImagesResponse resp;
    IT_ASSERT_GRPC_OK(berthd_->images().ListImages(&ctx, cri::ListImagesRequest(), &resp));
    ASSERT_EQ(resp.images_size(), 1);
    EXPECT_TRUE(resp.images(0).pinned());
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    auto reader = berthd_->images().StreamImages(&ctx, cri::StreamImagesRequest());
    cri::StreamImagesResponse chunk;
    int pinned = 0;
    while (reader->Read(&chunk)) {
      for (const auto& i : chunk.images()) pinned += i.pinned() ? 1 : 0;
    }
    IT_EXPECT_GRPC_OK(reader->Finish());
    EXPECT_EQ(pinned, 1);
  }
  {
    auto stub = a2::ImageService::NewStub(berthd_->channel());
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    a2::ListImagesResponse resp;
    IT_ASSERT_GRPC_OK(stub->ListImages(&ctx, a2::ListImagesRequest(), &resp));
    ASSERT_EQ(resp.images_size(), 1);
    EXPECT_TRUE(resp.images(0).pinned());
  }
  // Pinning keeps the kubelet's GC away; an explicit RemoveImage still removes the image,
  // as containerd and CRI-O do.
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::RemoveImageRequest req;
    req.mutable_image()->set_image(image_);
    cri::RemoveImageResponse resp;
    IT_ASSERT_GRPC_OK(berthd_->images().RemoveImage(&ctx, req, &resp));
    grpc::ClientContext lctx;
    SetDeadline(lctx);
    cri::ListImagesResponse list;
    IT_ASSERT_GRPC_OK(berthd_->images().ListImages(&lctx, cri::ListImagesRequest(), &list));
    EXPECT_EQ(list.images_size(), 0);
  }
}

TEST_F(RuntimeServiceIT, ImageIdOfContainersAndContainerFilesystems) {
  // Nothing is pinned without configuration.
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ListImagesResponse resp;
    IT_ASSERT_GRPC_OK(berthd_->images().ListImages(&ctx, cri::ListImagesRequest(), &resp));
    ASSERT_EQ(resp.images_size(), 1);
    EXPECT_FALSE(resp.images(0).pinned());
  }
  // image_id (the image's ID) beside image_ref, in ListContainers and ContainerStatus.
  cri::PodSandboxConfig pod = PodConfig("fields", cri::NODE, cri::CONTAINER);
  std::string pod_id, id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("c", {"sleep", "100"}), &id));
  {
    std::vector<cri::Container> listed = ListCtrs();
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].image_id(), busybox_->config_digest.str());
    EXPECT_FALSE(listed[0].image_ref().empty());
    std::optional<cri::ContainerStatus> st = CtrStatusOf(id);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->image_id(), busybox_->config_digest.str());
    EXPECT_EQ(st->image_ref(), listed[0].image_ref());
  }
  // ImageFsInfo: images under the root, writable layers under <root>/containers.
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ImageFsInfoResponse resp;
    IT_ASSERT_GRPC_OK(berthd_->images().ImageFsInfo(&ctx, cri::ImageFsInfoRequest(), &resp));
    ASSERT_EQ(resp.image_filesystems_size(), 1);
    EXPECT_EQ(resp.image_filesystems(0).fs_id().mountpoint(), berthd_->root().string());
    EXPECT_GT(resp.image_filesystems(0).used_bytes().value(), 0u);
    ASSERT_EQ(resp.container_filesystems_size(), 1);
    EXPECT_EQ(resp.container_filesystems(0).fs_id().mountpoint(),
              (berthd_->root() / "containers").string());
    EXPECT_GT(resp.container_filesystems(0).timestamp(), 0);
    EXPECT_GT(resp.container_filesystems(0).inodes_used().value(), 0u);
  }
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after removing the pod");
}

// A pattern that is neither a reference, an ID nor a prefix stops berthd with a message that
// names it.
TEST(PinnedImageConfigIT, BadPatternIsRefusedAtStart) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root like the other daemon tests";
  BerthdProcess berthd(BERTHD_PATH);
  Status s = berthd.Start({"--pinned-image", "reg*istry/x"}, std::chrono::seconds(5));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(berthd.LogTail(4000), HasSubstr("pinned image pattern \"reg*istry/x\""));
}

// The kubelet's RuntimeClassInImageCriApi pulls an image for a RuntimeClass's handler and asks
// ImageStatus about that handler. Content is shared by all handlers; the record notes them.
TEST_F(RuntimeServiceIT, ImagesPulledForARuntimeHandlerReportIt) {
  auto pull = [&](const std::string& handler) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::PullImageRequest req;
    req.mutable_image()->set_image(image_);
    req.mutable_image()->set_runtime_handler(handler);
    cri::PullImageResponse resp;
    grpc::Status s = berthd_->images().PullImage(&ctx, req, &resp);
    if (s.ok()) {
      EXPECT_EQ(resp.image_ref(), busybox_->config_digest.str());
    }
    return s;
  };
  auto status = [&](const std::string& handler) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ImageStatusRequest req;
    req.mutable_image()->set_image(image_);
    req.mutable_image()->set_runtime_handler(handler);
    req.set_verbose(true);
    cri::ImageStatusResponse resp;
    grpc::Status s = berthd_->images().ImageStatus(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return resp;
  };
  // Pulled by the fixture without a handler: none is reported.
  EXPECT_EQ(status("").image().spec().runtime_handler(), "");

  grpc::Status unknown = pull("no-such-handler");
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(unknown);
  EXPECT_THAT(unknown.error_message(), HasSubstr("no-such-handler"));
  EXPECT_EQ(status("").image().spec().runtime_handler(), "");

  IT_ASSERT_GRPC_OK(pull("runc"));
  EXPECT_EQ(status("").image().spec().runtime_handler(), "runc");
  EXPECT_EQ(status("runc").image().spec().runtime_handler(), "runc");
  // Asked about a handler it was not pulled for, the image (the same content) is still
  // reported, with the handler it was pulled for.
  EXPECT_EQ(status("other").image().spec().runtime_handler(), "runc");
  EXPECT_THAT(status("runc").info().at("info"), HasSubstr("\"runtimeHandlers\":[\"runc\"]"));
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ListImagesResponse list;
    IT_ASSERT_GRPC_OK(berthd_->images().ListImages(&ctx, cri::ListImagesRequest(), &list));
    ASSERT_EQ(list.images_size(), 1);
    EXPECT_EQ(list.images(0).spec().runtime_handler(), "runc");
  }
  // The record survives a restart, and a second handler is added, not substituted.
  IT_ASSERT_OK(berthd_->Restart());
  EXPECT_EQ(status("").image().spec().runtime_handler(), "runc");
  // crun is configured (scripts/setup.sh installs it) even where it cannot run containers.
  IT_ASSERT_GRPC_OK(pull("crun"));
  EXPECT_EQ(status("").image().spec().runtime_handler(), "crun");
  EXPECT_EQ(status("runc").image().spec().runtime_handler(), "runc");
  EXPECT_THAT(status("").info().at("info"), HasSubstr("\"runtimeHandlers\":[\"runc\",\"crun\"]"));
}

}  // namespace
}  // namespace berth::testing
