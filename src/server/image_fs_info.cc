#include "common/fs.h"
#include "server/cri_services.h"

namespace berth::server {

namespace {
void Fill(const image::FsUsage& u, runtime::v1::FilesystemUsage* out) {
  out->set_timestamp(u.timestamp_unix_nanos);
  out->mutable_fs_id()->set_mountpoint(u.mountpoint);
  out->mutable_used_bytes()->set_value(u.used_bytes);
  out->mutable_inodes_used()->set_value(u.inodes_used);
}
}  // namespace

grpc::Status ImageServiceImpl::ImageFsInfo(grpc::ServerContext*,
                                           const runtime::v1::ImageFsInfoRequest*,
                                           runtime::v1::ImageFsInfoResponse* resp) {
  return rpc_.Run("ImageFsInfo", [&]() -> Status {
    ASSIGN_OR_RETURN(image::FsUsage images, images().ImageFsUsage());
    Fill(images, resp->add_image_filesystems());
    // Writable container layers live beside the images, under <root>/containers.
    image::FsUsage containers;
    containers.mountpoint = (std::filesystem::path(images.mountpoint) / "containers").string();
    containers.timestamp_unix_nanos = images.timestamp_unix_nanos;
    ASSIGN_OR_RETURN(DiskUsage du, MeasureDiskUsage(containers.mountpoint));
    containers.used_bytes = du.bytes;
    containers.inodes_used = du.inodes;
    Fill(containers, resp->add_container_filesystems());
    return OkStatus();
  });
}

}  // namespace berth::server
