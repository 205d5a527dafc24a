// Builds the pull benchmark's image (N layers of incompressible data plus
// busybox) and pushes it into a plain-HTTP registry, so berth-bench can pull
// it through any CRI runtime. Deterministic: the same flags give the same
// digests.
#include <CLI/CLI.hpp>
#include <iostream>

#include "support/image_builder.h"
#include "support/registry_push.h"

using namespace berth::testing;

int main(int argc, char** argv) {
  CLI::App app{"push the benchmark image into a registry"};
  std::string registry = "127.0.0.1:5000";
  std::string repository = "bench/pull";
  std::string tag = "100m";
  int layers = 5;
  uint64_t layer_bytes = 20'000'000;
  int files_per_layer = 50;
  uint64_t seed = 1000;
  app.add_option("--registry", registry, "registry host:port (plain HTTP)");
  app.add_option("--repository", repository);
  app.add_option("--tag", tag);
  app.add_option("--layers", layers, "number of data layers");
  app.add_option("--layer-bytes", layer_bytes, "bytes of data per layer");
  app.add_option("--files-per-layer", files_per_layer, "files the data of a layer is split into");
  app.add_option("--seed", seed, "first layer's random seed (another seed: other content)");
  CLI11_PARSE(app, argc, argv);

  auto base = BusyboxImageSpec(MediaTypes::kDocker);
  if (!base.ok()) {
    std::cerr << base.status() << "\n";
    return 1;
  }
  ImageSpec spec = *base;
  for (int i = 0; i < layers; ++i) {
    spec.layers.push_back(RandomDataLayer(layer_bytes, files_per_layer,
                                          seed + static_cast<uint64_t>(i), Compression::kGzip));
  }
  auto image = BuildImage(spec);
  if (!image.ok()) {
    std::cerr << image.status() << "\n";
    return 1;
  }
  PushTarget target;
  target.base_url = "http://" + registry;
  for (const auto& blob : image->blobs) {
    auto d = PushBlob(target, repository, blob.data);
    if (!d.ok()) {
      std::cerr << d.status() << "\n";
      return 1;
    }
  }
  auto m = PushManifest(target, repository, tag, image->top.media_type, image->top.data);
  if (!m.ok()) {
    std::cerr << m.status() << "\n";
    return 1;
  }
  uint64_t total = 0;
  for (const auto& b : image->blobs) total += b.data.size();
  std::cout << registry << "/" << repository << ":" << tag << " " << image->config_digest.str()
            << " compressed_bytes=" << total << " layers=" << image->diff_ids.size() << "\n";
  return 0;
}
