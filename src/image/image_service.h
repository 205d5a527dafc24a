// The image domain: pull, list, inspect and remove images, and report the
// disk they use. It owns the pull pipeline (registry -> content store ->
// layer store -> image record) and garbage collection of content no image
// refers to. The gRPC layer (server/) maps CRI messages onto these calls.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "content/content_store.h"
#include "image/image_store.h"
#include "image/manifest.h"
#include "image/pinned_images.h"
#include "image/reference.h"
#include "registry/client.h"
#include "snapshot/layer_store.h"
#include "store/metadata_store.h"

namespace berth::image {

struct ImageServiceOptions {
  std::filesystem::path root;  // <root>/content, <root>/snapshots
  int max_concurrent_downloads = 3;
  registry::ClientOptions registry;
  // Patterns of pinned images (see image/pinned_images.h); Open fails with
  // INVALID_ARGUMENT on a bad one.
  std::vector<std::string> pinned_images;
};

struct FsUsage {
  std::string mountpoint;
  uint64_t used_bytes = 0;
  uint64_t inodes_used = 0;
  int64_t timestamp_unix_nanos = 0;
};

// What one Pull cost, for metrics.
struct PullStats {
  uint64_t bytes = 0;   // downloaded from registries by this pull (manifests and blobs)
  double seconds = 0;   // wall time of the pull
  bool shared = false;  // it waited for an identical pull in flight, which did the work
};

// Asks whether the caller of a Pull has gone (see registry::CancelCheck): OK
// while it waits, CANCELLED or DEADLINE_EXCEEDED once it has gone. The gRPC
// handler builds it from its ServerContext; it must stay callable until Pull
// returns, and must be cheap (it is polled about once a second).
using CancelCheck = registry::CancelCheck;

class ImageService;

// A hold on one image, taken by ImageService::Use for a container being
// created: while any hold on an image exists, Remove of it is
// FAILED_PRECONDITION. Move-only; released when destroyed. The service must
// outlive its holds. Not thread-safe itself (one owner).
class ImageHold {
 public:
  ImageHold() = default;
  ImageHold(ImageHold&& other) noexcept;
  ImageHold& operator=(ImageHold&& other) noexcept;
  ImageHold(const ImageHold&) = delete;
  ImageHold& operator=(const ImageHold&) = delete;
  ~ImageHold() { Release(); }
  void Release();

 private:
  friend class ImageService;
  ImageService* owner_ = nullptr;
  std::string image_id_;
};

// Thread-safe. Concurrent pulls of one reference share one download, and a
// layer shared by images being pulled at once is downloaded once.
class ImageService {
 public:
  // Opens the stores under options.root, removes what an interrupted pull
  // left behind, and collects content no image refers to.
  static StatusOr<std::unique_ptr<ImageService>> Open(ImageServiceOptions options,
                                                      store::MetadataStore* db);

  // Pulls `image` (any reference form) and returns its record. The record's
  // id is what PullImage returns as image_ref.
  // `stats`, if given, is filled in whether or not the pull succeeds.
  // `caller_gone`, if set, says when this caller stops waiting: it then gets
  // that status back at once. The shared download goes on while any caller
  // of the same reference still waits; once every one has gone it is
  // aborted (within about a second), its partial files removed, and a later
  // Pull starts afresh. Blobs and layers already complete and verified stay
  // only if an image uses them (garbage collection as after any failed pull).
  StatusOr<ImageRecord> Pull(std::string_view image,
                             const std::optional<registry::AuthConfig>& auth,
                             PullStats* stats = nullptr, const CancelCheck& caller_gone = {});

  // Records come back with `pinned` set from options.pinned_images.
  // By ID, ID prefix, tag or digest reference. NOT_FOUND when absent.
  StatusOr<ImageRecord> Find(std::string_view image) const;
  std::vector<ImageRecord> List() const;
  // Notes that the image `id` was pulled for the runtime handler `handler`
  // (PullImage with image.runtime_handler). Content is shared by all
  // handlers; only the record changes. NOT_FOUND if the image is gone.
  StatusOr<ImageRecord> RecordRuntimeHandler(const std::string& id, const std::string& handler);
  // Removes the image `image` resolves to, with all its names, and the
  // content only it used. An absent image is success (RemoveImage is
  // idempotent per the CRI spec). An image a container uses (see
  // SetInUseCheck) is FAILED_PRECONDITION.
  Status Remove(std::string_view image);
  // Resolves `image` like Find and returns its record with a hold on it,
  // taken atomically with the resolution (under the lock Remove checks
  // under). A container create resolves its images (rootfs, image volumes)
  // this way and keeps the holds until its record is visible to the in-use
  // check (SetInUseCheck): a concurrent Remove then either fails
  // FAILED_PRECONDITION or removed the image before, and this call is
  // NOT_FOUND. Never a container whose layers were deleted.
  StatusOr<ImageRecord> Use(std::string_view image, ImageHold* hold);
  // Who uses an image: given an image id, the id of a container whose
  // rootfs or image volume is made of it, or "" for none. Set once at
  // start-up, before any Remove; `check` must not call back into this
  // service.
  void SetInUseCheck(std::function<std::string(const std::string& image_id)> check);
  // The raw image config JSON of a stored image (for verbose status).
  StatusOr<std::string> ConfigJson(const ImageRecord& record) const;
  StatusOr<ImageConfig> Config(const ImageRecord& record) const;

  StatusOr<FsUsage> ImageFsUsage() const;

  const snapshot::LayerStore& layers() const { return layers_; }

 private:
  ImageService(ImageServiceOptions options, store::MetadataStore* db);

  // `bytes` counts what is downloaded on behalf of this pull.
  // `gone` says when every caller waiting for this pull has gone.
  StatusOr<ImageRecord> PullUncoalesced(const Reference& ref,
                                        const std::optional<registry::AuthConfig>& auth,
                                        std::atomic<uint64_t>& bytes, const CancelCheck& gone);
  // Downloads one layer blob and unpacks it while it streams.
  Status FetchLayer(const Reference& ref, const Descriptor& layer, const Digest& diff_id,
                    const std::optional<registry::AuthConfig>& auth, std::atomic<uint64_t>& bytes,
                    const CancelCheck& gone);
  Status FetchLayerUncoalesced(const Reference& ref, const Descriptor& layer, const Digest& diff_id,
                               const std::optional<registry::AuthConfig>& auth,
                               std::atomic<uint64_t>& bytes, const CancelCheck& gone);
  StatusOr<std::string> FetchSmallBlob(const Reference& ref, const Descriptor& d,
                                       const std::optional<registry::AuthConfig>& auth,
                                       std::atomic<uint64_t>& bytes, const CancelCheck& gone);
  // Removes blobs and layers that no image record and no pull in flight uses.
  Status CollectGarbage();

  // Keeps content of a pull in flight safe from garbage collection.
  class Lease;

  ImageServiceOptions options_;
  PinnedImages pinned_;
  content::ContentStore content_;
  snapshot::LayerStore layers_;
  std::unique_ptr<ImageStore> images_;
  std::unique_ptr<registry::Client> registry_;

  // Serialises garbage collection against record changes.
  mutable std::mutex gc_mu_;
  std::multiset<std::string> leased_;  // digests (blobs and diff_ids) in use by pulls
  std::function<std::string(const std::string&)> in_use_check_;
  std::map<std::string, int> holds_;  // image id -> live ImageHolds (Use)
  friend class ImageHold;
  void ReleaseHold(const std::string& image_id);

  // Single-flight: callers of one key wait for the first caller's result.
  // Each caller registers how to tell that it has gone; the work is
  // abandoned only when all of them have.
  template <typename T>
  struct Flight {
    bool done = false;       // guarded by flights_mu_
    bool abandoned = false;  // the work stopped because every caller had gone
    StatusOr<T> result = UnknownError("pull in progress");
    std::condition_variable cv;
    // Guards waiters; taken without flights_mu_ held, and a layer flight's
    // check takes its pull flight's waiters_mu (never the reverse).
    std::mutex waiters_mu;
    std::map<uint64_t, CancelCheck> waiters;
    uint64_t next_waiter = 0;
    // Set once AllGone has said so: the work then stops on its own accord.
    std::atomic<bool> gave_up{false};
    // OK while some waiter is still there; else the status of one that left.
    Status AllGone();
  };
  // Waits for a flight led by another caller; `gone` lets this caller leave
  // early. Returns the flight's result, or why this caller left;
  // `*abandoned` tells whether the result is the flight's giving up.
  template <typename T>
  StatusOr<T> AwaitFlight(Flight<T>& flight, const CancelCheck& gone, bool* abandoned);
  std::mutex flights_mu_;
  std::map<std::string, std::shared_ptr<Flight<ImageRecord>>> pull_flights_;
  std::map<std::string, std::shared_ptr<Flight<bool>>> layer_flights_;

  // Bounds the number of layer downloads running at once across all pulls.
  std::mutex download_mu_;
  std::condition_variable download_cv_;
  int downloads_running_ = 0;
};

}  // namespace berth::image
