#include "image/pinned_images.h"

#include <gtest/gtest.h>

namespace berth::image {
namespace {

ImageRecord Busybox() {
  ImageRecord r;
  r.id = "sha256:" + std::string(64, 'a');
  r.repo_tags = {"docker.io/library/busybox:1.36", "registry.local:5000/tools/busybox:stable"};
  r.repo_digests = {"docker.io/library/busybox@sha256:" + std::string(64, 'b')};
  return r;
}

bool Pinned(const std::vector<std::string>& patterns, const ImageRecord& r = Busybox()) {
  StatusOr<PinnedImages> p = PinnedImages::Parse(patterns);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() && p->Matches(r);
}

TEST(PinnedImages, NothingConfiguredPinsNothing) {
  EXPECT_FALSE(Pinned({}));
  EXPECT_TRUE(PinnedImages::Parse({})->empty());
}

TEST(PinnedImages, ReferencesAreNormalised) {
  EXPECT_TRUE(Pinned({"busybox:1.36"}));
  EXPECT_TRUE(Pinned({"docker.io/library/busybox:1.36"}));
  EXPECT_TRUE(Pinned({"registry.local:5000/tools/busybox:stable"}));
  EXPECT_FALSE(Pinned({"busybox"}));  // busybox:latest
  EXPECT_FALSE(Pinned({"busybox:1.35"}));
  EXPECT_TRUE(Pinned({"busybox@sha256:" + std::string(64, 'b')}));
  EXPECT_FALSE(Pinned({"busybox@sha256:" + std::string(64, 'c')}));
}

TEST(PinnedImages, ImageIdsInBothForms) {
  EXPECT_TRUE(Pinned({"sha256:" + std::string(64, 'a')}));
  EXPECT_TRUE(Pinned({std::string(64, 'a')}));
  EXPECT_FALSE(Pinned({"sha256:" + std::string(64, 'd')}));
}

TEST(PinnedImages, PrefixesEndInAStar) {
  EXPECT_TRUE(Pinned({"registry.local:5000/*"}));
  EXPECT_TRUE(Pinned({"docker.io/library/busybox:*"}));
  EXPECT_FALSE(Pinned({"registry.k8s.io/*"}));
  EXPECT_TRUE(Pinned({"registry.k8s.io/*", "busybox:1.36"}));  // any pattern
}

TEST(PinnedImages, BadPatternsNameThemselves) {
  for (const std::string& bad : {std::string(""), std::string("*"), std::string("reg*istry/x"),
                                 std::string("Busybox:UPPER case")}) {
    StatusOr<PinnedImages> p = PinnedImages::Parse({bad});
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
    if (!bad.empty()) {
      EXPECT_NE(p.status().message().find(bad), std::string::npos) << p.status().message();
    }
  }
}

}  // namespace
}  // namespace berth::image
