#include "server/image_socket.h"
// (blank line keeps clang-format from reordering)

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "server/listen.h"

namespace berth::server {

StatusOr<std::unique_ptr<ImageSocket>> ImageSocket::Start(
    const std::string& path, const std::unique_ptr<image::ImageService>& images,
    const RpcDecorator& rpc, const PullMetrics* pull_metrics,
    const oci::HandlerRegistry* handlers) {
  RETURN_IF_ERROR(PrepareSocket(path, "--image-socket"));
  std::unique_ptr<ImageSocket> socket(new ImageSocket(path, images, rpc, pull_metrics, handlers));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(StrCat("unix://", path), grpc::InsecureServerCredentials());
  builder.RegisterService(&socket->v1_);
  builder.RegisterService(&socket->v1alpha2_);
  ApplyServerSettings(builder);
  socket->server_ = builder.BuildAndStart();
  if (!socket->server_) return UnavailableError(StrCat("cannot listen on image socket ", path));
  if (::chmod(path.c_str(), 0660) != 0) return ErrnoStatus(errno, StrCat("chmod ", path));
  return socket;
}

void ImageSocket::Stop() {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now());
  server_->Wait();
  server_.reset();
  ::unlink(path_.c_str());
}

}  // namespace berth::server
