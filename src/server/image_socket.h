// The optional image-only socket (--image-socket): a second gRPC server that
// serves ImageService alone, in runtime.v1 and runtime.v1alpha2, for a
// kubelet started with --image-service-endpoint. The main socket keeps
// serving both services. Calls go through the same RpcDecorator (so they
// are refused while recovering and drained at shutdown) and the same image
// store.
#pragma once

// The CRI headers come first: see server/signals.h.
#include "server/cri_services.h"
#include "server/v1alpha2_services.h"
// (blank line keeps clang-format from reordering)

#include <memory>
#include <string>

namespace berth::server {

// Not thread-safe; owned by the daemon's main thread. `images`, `rpc` and
// `pull_metrics` must outlive it.
class ImageSocket {
 public:
  // Listens on `path` (replacing a stale socket file, mode 0660).
  static StatusOr<std::unique_ptr<ImageSocket>> Start(
      const std::string& path, const std::unique_ptr<image::ImageService>& images,
      const RpcDecorator& rpc, const PullMetrics* pull_metrics,
      const oci::HandlerRegistry* handlers);
  ~ImageSocket() { Stop(); }
  ImageSocket(const ImageSocket&) = delete;
  ImageSocket& operator=(const ImageSocket&) = delete;

  // Stops serving at once (the caller drains calls first) and removes the
  // socket file. Idempotent.
  void Stop();

 private:
  ImageSocket(std::string path, const std::unique_ptr<image::ImageService>& images,
              const RpcDecorator& rpc, const PullMetrics* pull_metrics,
              const oci::HandlerRegistry* handlers)
      : path_(std::move(path)), v1_(images, rpc, pull_metrics, handlers), v1alpha2_(v1_) {}

  std::string path_;
  ImageServiceImpl v1_;
  V1alpha2ImageService v1alpha2_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace berth::server
