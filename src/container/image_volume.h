// Image volumes (CRI Mount.image, Kubernetes `volumes[].image`): an image's
// unpacked layers mounted read-only as an overlay, without copying anything,
// and bind-mounted by the runtime at the container path, whole or one sub
// path of it.
//
// Each volume gets a mount point <bundle>/volumes/<n>, mounted by berthd
// before the runtime's create and unmounted when the container is removed
// (or its create is rolled back). The overlay has no upper directory, so
// nothing can be written through it: the layers shared with every other user
// of the image stay as they were.
//
// Free functions, no state: thread-safety is the caller's (one create or
// remove per container at a time).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "image/image_service.h"
#include "image/image_store.h"
#include "oci/container_config.h"
#include "snapshot/layer_store.h"

namespace berth::container {

// Mounts the layers of `image` read-only at `mount_point` (created), and
// returns the host path the runtime is to bind: `mount_point` itself, or
// `sub_path` resolved inside the image (symlinks are followed as if the
// image were "/", so nothing outside it can be reached). `sub_path` must be
// relative and free of ".." (INVALID_ARGUMENT); a sub path the image does
// not have is NOT_FOUND. On error nothing stays mounted.
StatusOr<std::string> MountImageVolume(const snapshot::LayerStore& layers,
                                       const image::ImageRecord& image,
                                       const std::filesystem::path& mount_point,
                                       std::string_view sub_path,
                                       const std::filesystem::path& userns_path = {});

// Mounts every image volume among `mounts` (those with `image` set) at
// `volumes_dir`/<index>, and points its host_path at what the runtime is to
// bind, read-only. Returns the image id of each mount (empty for the others).
// A missing image is NOT_FOUND, naming the volume. On error, what was
// mounted is left for the caller's UnmountEntriesAndRemove(volumes_dir).
// With `userns_path` (a pod's user namespace), the layers are ID-mapped
// through it (container/userns.h). Each image is resolved with
// ImageService::Use; its hold is appended to `holds`, for the caller to keep
// until the container's record is saved.
StatusOr<std::vector<std::string>> MountImageVolumes(image::ImageService& images,
                                                     std::vector<oci::Mount>& mounts,
                                                     const std::filesystem::path& volumes_dir,
                                                     const std::filesystem::path& userns_path,
                                                     std::vector<image::ImageHold>* holds);

// Checks an image volume's sub path (relative, no "..", no empty or "."
// components beyond what normalising removes). Pure.
Status ValidateImageSubPath(std::string_view sub_path);

// Resolves `rel` inside `root` as if `root` were "/" (openat2
// RESOLVE_IN_ROOT) and returns the resulting host path. NOT_FOUND when
// absent.
StatusOr<std::string> ResolveInRoot(const std::filesystem::path& root, std::string_view rel);

// Unmounts every mount point directly below `dir` (image volumes, ID-mapped
// layers) and removes `dir`. Entries that are not mounted are just removed.
// Absent `dir` is success.
Status UnmountEntriesAndRemove(const std::filesystem::path& dir);

}  // namespace berth::container
