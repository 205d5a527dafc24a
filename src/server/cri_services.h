// gRPC services of the CRI (runtime.v1). Handlers are thin: validate the
// request, call one domain operation, build the response. One file per RPC,
// named noun_verb.cc, holds each handler.
#pragma once

#include <map>
#include <string>

#include "config/config.h"
#include "image/image_service.h"
#include "runtime/v1/api.grpc.pb.h"
#include "server/rpc_decorator.h"

namespace berth::server {

// What the runtime learned about its host at start-up, for Status/Version.
struct RuntimeInfo {
  std::string version;
  std::string oci_runtime;       // path of the default OCI runtime binary; empty if none
  std::string oci_runtime_name;  // "runc" / "crun"
};

class RuntimeServiceImpl final : public runtime::v1::RuntimeService::Service {
 public:
  RuntimeServiceImpl(const config::Config& config, const RuntimeInfo& info,
                     const RpcDecorator& rpc)
      : config_(config), info_(info), rpc_(rpc) {}

  grpc::Status Version(grpc::ServerContext*, const runtime::v1::VersionRequest*,
                       runtime::v1::VersionResponse*) override;
  grpc::Status Status(grpc::ServerContext*, const runtime::v1::StatusRequest*,
                      runtime::v1::StatusResponse*) override;
  grpc::Status RuntimeConfig(grpc::ServerContext*, const runtime::v1::RuntimeConfigRequest*,
                             runtime::v1::RuntimeConfigResponse*) override;

 private:
  const config::Config& config_;
  const RuntimeInfo& info_;
  const RpcDecorator& rpc_;
};

class ImageServiceImpl final : public runtime::v1::ImageService::Service {
 public:
  // `images` is filled in by start-up recovery; handlers only run after the
  // decorator is ready, by which time it is set.
  ImageServiceImpl(const std::unique_ptr<image::ImageService>& images, const RpcDecorator& rpc)
      : images_slot_(images), rpc_(rpc) {}

  grpc::Status ListImages(grpc::ServerContext*, const runtime::v1::ListImagesRequest*,
                          runtime::v1::ListImagesResponse*) override;
  grpc::Status ImageStatus(grpc::ServerContext*, const runtime::v1::ImageStatusRequest*,
                           runtime::v1::ImageStatusResponse*) override;
  grpc::Status PullImage(grpc::ServerContext*, const runtime::v1::PullImageRequest*,
                         runtime::v1::PullImageResponse*) override;
  grpc::Status RemoveImage(grpc::ServerContext*, const runtime::v1::RemoveImageRequest*,
                           runtime::v1::RemoveImageResponse*) override;
  grpc::Status ImageFsInfo(grpc::ServerContext*, const runtime::v1::ImageFsInfoRequest*,
                           runtime::v1::ImageFsInfoResponse*) override;

 private:
  image::ImageService& images() { return *images_slot_; }
  const std::unique_ptr<image::ImageService>& images_slot_;
  const RpcDecorator& rpc_;
};

// Fills a CRI Image from a record (shared by ListImages and ImageStatus).
void ToCriImage(const image::ImageRecord& record, runtime::v1::Image* out);

}  // namespace berth::server
