// Pure logic of image volumes and user namespaces: sub path checks, ID mapping checks and
// lookups. (The mounts themselves are tested on a real berthd: image_volume_it, userns_it.)
#include <gtest/gtest.h>

#include "common/userns.h"
#include "container/image_volume.h"

namespace berth {
namespace {

TEST(ImageSubPathTest, RelativePathsWithoutDotDotOnly) {
  for (const char* ok :
       {"", "data", "data/sub", "a/b/c.txt", "./x", "a/./b", "..a", "a..", "a/.../b"}) {
    EXPECT_TRUE(container::ValidateImageSubPath(ok).ok()) << ok;
  }
  for (const char* bad : {"/etc", "..", "../x", "a/..", "a/../b", "a/b/../../.."}) {
    Status s = container::ValidateImageSubPath(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(container::ValidateImageSubPath(std::string_view("a\0b", 3)).code(),
            StatusCode::kInvalidArgument);
}

TEST(IdMappingsTest, KernelRules) {
  EXPECT_TRUE(ValidateIdMappings({{0, 100000, 65536}}, "uid").ok());
  EXPECT_TRUE(ValidateIdMappings({{0, 100000, 1}, {1, 200000, 10}}, "uid").ok());
  EXPECT_EQ(ValidateIdMappings({}, "uid").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateIdMappings({{0, 100000, 0}}, "uid").code(), StatusCode::kInvalidArgument);
  // Overlap on the container side, then on the host side.
  Status s = ValidateIdMappings({{0, 100000, 10}, {5, 300000, 10}}, "gid");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("gid mappings 0 and 1 overlap"), std::string::npos) << s.message();
  EXPECT_EQ(ValidateIdMappings({{0, 100000, 10}, {100, 100009, 10}}, "uid").code(),
            StatusCode::kInvalidArgument);
  // Adjacent ranges do not overlap.
  EXPECT_TRUE(ValidateIdMappings({{0, 100000, 10}, {10, 100010, 10}}, "uid").ok());
  // Past 2^32.
  EXPECT_EQ(ValidateIdMappings({{0, 4294967000u, 65536}}, "uid").code(),
            StatusCode::kInvalidArgument);
  std::vector<IdMapping> many(341);
  for (uint32_t i = 0; i < many.size(); ++i) many[i] = {i, 100000 + i, 1};
  EXPECT_EQ(ValidateIdMappings(many, "uid").code(), StatusCode::kInvalidArgument);
  many.pop_back();
  EXPECT_TRUE(ValidateIdMappings(many, "uid").ok());
}

TEST(IdMappingsTest, MapToHost) {
  const std::vector<IdMapping> m = {{0, 100000, 1000}, {5000, 300000, 10}};
  EXPECT_EQ(MapToHost(m, 0), 100000);
  EXPECT_EQ(MapToHost(m, 999), 100999);
  EXPECT_EQ(MapToHost(m, 1000), -1);
  EXPECT_EQ(MapToHost(m, 5009), 300009);
  EXPECT_EQ(MapToHost(m, 5010), -1);
}

}  // namespace
}  // namespace berth
