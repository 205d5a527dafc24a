// Builds a pause image for containerd's sandbox_image from Berth's own static
// berth-pause binary (/pause, Entrypoint ["/pause"]) and pushes it into a
// plain-HTTP registry, so the lifecycle benchmark needs nothing from outside.
#include <CLI/CLI.hpp>
#include <iostream>

#include "common/fs.h"
#include "support/image_builder.h"
#include "support/registry_push.h"

using namespace berth::testing;

namespace {

berth::Status Push(const std::string& registry, const std::string& repository,
                   const std::string& tag, const std::string& pause_binary) {
  ASSIGN_OR_RETURN(std::string pause, berth::ReadFile(pause_binary));
  ImageSpec spec;
  LayerSpec layer;
  layer.entries.push_back(FileSpec::File("pause", std::move(pause), 0755));
  spec.layers.push_back(std::move(layer));
  spec.entrypoint = {"/pause"};
  ASSIGN_OR_RETURN(BuiltImage image, BuildImage(spec));
  PushTarget target;
  target.base_url = "http://" + registry;
  for (const auto& blob : image.blobs) {
    RETURN_IF_ERROR(PushBlob(target, repository, blob.data).status());
  }
  RETURN_IF_ERROR(
      PushManifest(target, repository, tag, image.top.media_type, image.top.data).status());
  std::cout << registry << "/" << repository << ":" << tag << " " << image.config_digest.str()
            << "\n";
  return berth::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"push a pause image built from berth-pause into a registry"};
  std::string registry = "127.0.0.1:5000";
  std::string repository = "pause";
  std::string tag = "3.6";
  std::string pause_binary;
  app.add_option("--registry", registry, "registry host:port (plain HTTP)");
  app.add_option("--repository", repository);
  app.add_option("--tag", tag);
  app.add_option("--pause-binary", pause_binary,
                 "a static pause program, e.g. build/bin/berth-pause")
      ->required();
  CLI11_PARSE(app, argc, argv);
  berth::Status s = Push(registry, repository, tag, pause_binary);
  if (!s.ok()) {
    std::cerr << "make_pause_image: " << s << "\n";
    return 1;
  }
  return 0;
}
