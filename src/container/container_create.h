// The doing half of CreateContainer (the planning half is container_plan.h):
// the steps ContainerManager::CreateLocked runs in order, each undoing its
// own work when the create fails after it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"
#include "container/container_manager.h"
#include "container/container_plan.h"
#include "image/image_service.h"
#include "monitor/client.h"
#include "oci/oci_runtime.h"
#include "sandbox/sandbox_manager.h"

namespace berth::container {

// Everything PlanContainer needs that is not a decision: the request, the
// pod, the image and its config, the runtime handler and the host.
ContainerPlanInputs PlanInputsFor(const CreateRequest& req, const sandbox::SandboxRecord& sb,
                                  const image::ImageRecord& img,
                                  const image::ImageConfig& img_config,
                                  const snapshot::LayerStore& layers, const std::string& handler,
                                  const oci::HandlerFeatures& features,
                                  const ContainerManagerOptions& options);

// A container's writable layer, rootfs overlay, image volumes and ID-mapped
// binds. Each step records what it made; the destructor undoes it in reverse
// (volumes, rootfs, directories) unless Keep() was called, so that a create
// failing anywhere after it leaves no mount and no directory.
//
// Not thread-safe: lives on the stack of one create, which holds the
// container's locks.
class ContainerRootfs {
 public:
  ContainerRootfs(const ContainerRecord& record, const ContainerPlan& plan)
      : record_(record), plan_(plan) {}
  ~ContainerRootfs();
  ContainerRootfs(const ContainerRootfs&) = delete;
  ContainerRootfs& operator=(const ContainerRootfs&) = delete;

  // Makes the writable layer's directories, checks every layer of `img` is
  // still stored (FAILED_PRECONDITION otherwise), and mounts the overlay
  // (ID-mapped into the pod's user namespace when the plan says so).
  Status Mount(const image::ImageRecord& img, const snapshot::LayerStore& layers,
               const std::string& userns_path);
  // Mounts the config's image volumes and, in a user-namespace pod, the
  // ID-mapped clones of its binds, filling `facts.mounts` and
  // `facts.volume_image_ids`; every image used is held in `holds`.
  Status MountVolumes(image::ImageService& images, const std::string& userns_path,
                      ContainerRootfsFacts& facts, std::vector<image::ImageHold>* holds);
  // Reads what the spec needs from the mounted rootfs and the host: the
  // rootfs's /etc/passwd and /etc/group, the Localhost seccomp profile.
  Status ReadFacts(const oci::ContainerConfig& config, ContainerRootfsFacts& facts) const;

  // The create succeeded (or its remains are kept for a later remove).
  void Keep() { keep_ = true; }

 private:
  const ContainerRecord& record_;
  const ContainerPlan& plan_;
  bool made_dirs_ = false;
  bool mounted_rootfs_ = false;
  bool mounted_volumes_ = false;
  bool keep_ = false;
};

// What berth-monitor is started with for `record`: its runtime, bundle,
// log, stdio and terminal settings. The monitor deletes the runtime's state
// when the container exits, so that RemoveContainer runs no runtime.
monitor::MonitorSpec MonitorSpecFor(const ContainerRecord& record, const ContainerPlan& plan,
                                    const oci::OciRuntime& runtime,
                                    const std::filesystem::path& monitor_binary);

}  // namespace berth::container
