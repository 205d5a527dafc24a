// Manifests, indexes and image configs as registries serve them
// (image/manifest.h): every parser and validator on the same bytes.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_util.h"
#include "image/manifest.h"

using berth::fuzz::AsText;
namespace image = berth::image;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body = AsText(data, size);
  for (std::string_view header :
       {std::string_view(), image::kMediaTypeDockerManifest, image::kMediaTypeDockerManifestList,
        image::kMediaTypeOciManifest, image::kMediaTypeOciIndex,
        std::string_view("application/json; charset=utf-8")}) {
    (void)image::DetectKind(header, body);
  }
  auto index = image::ParseIndex(body);
  if (index.ok()) {
    for (const auto& d : index->manifests) {
      if (d.platform) (void)image::NormalizePlatform(*d.platform).String();
    }
    for (const char* want : {"linux/amd64", "linux/arm64", "linux/arm/v7", "windows/amd64"}) {
      auto p = image::ParsePlatform(want);
      FUZZ_CHECK(p.ok(), "%s", want);
      (void)image::SelectPlatform(*index, *p);
    }
  }
  auto manifest = image::ParseManifest(body);
  if (manifest.ok()) {
    (void)image::ValidateImageManifest(*manifest);
    for (const auto& l : manifest->layers) (void)image::ClassifyLayerMediaType(l.media_type);
  }
  auto config = image::ParseImageConfig(body);
  if (config.ok()) {
    (void)image::ParseImageUser(config->config.user);
    if (!config->diff_ids.empty()) {
      auto chain = image::ChainIds(config->diff_ids);
      FUZZ_CHECK(chain.size() == config->diff_ids.size(), "%zu chain ids for %zu diff_ids",
                 chain.size(), config->diff_ids.size());
      FUZZ_CHECK(chain.front() == config->diff_ids.front(), "first chain id differs");
    }
    if (manifest.ok()) (void)image::ValidateManifestAgainstConfig(*manifest, *config);
  }
  return 0;
}
