#include "image/image_service.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "archive/layer_apply.h"
#include "common/fs.h"
#include "image/byte_pipe.h"

namespace berth::image {

namespace fs = std::filesystem;

namespace {
int64_t NowUnixNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
// Enough buffering to keep a download running while the unpacker writes a
// burst of small files, small enough to stay cheap with several layers at once.
constexpr size_t kPipeBytes = 8 << 20;
constexpr size_t kReadChunk = 1 << 20;
// How often a caller waiting for someone else's download looks whether it
// has gone itself; the download's own check runs from libcurl's progress
// callback at about the same period.
constexpr auto kCallerPoll = std::chrono::milliseconds(250);
}  // namespace

template <typename T>
Status ImageService::Flight<T>::AllGone() {
  std::lock_guard lock(waiters_mu);
  Status last_gone;
  for (const auto& [id, gone] : waiters) {
    if (!gone) return OkStatus();
    Status s = gone();
    if (s.ok()) return OkStatus();
    last_gone = std::move(s);
  }
  // No waiter at all cannot happen while the leader runs (it is one).
  gave_up.store(true);
  return last_gone.ok() ? CancelledError("no caller waits for it any more") : last_gone;
}

namespace {
template <typename F>
uint64_t AddWaiter(F& flight, CancelCheck gone) {
  std::lock_guard lock(flight.waiters_mu);
  uint64_t id = flight.next_waiter++;
  flight.waiters.emplace(id, std::move(gone));
  return id;
}
template <typename F>
void RemoveWaiter(F& flight, uint64_t id) {
  std::lock_guard lock(flight.waiters_mu);
  flight.waiters.erase(id);
}
}  // namespace

template <typename T>
StatusOr<T> ImageService::AwaitFlight(Flight<T>& flight, const CancelCheck& gone, bool* abandoned) {
  std::unique_lock lock(flights_mu_);
  *abandoned = false;
  while (!flight.cv.wait_for(lock, kCallerPoll, [&] { return flight.done; })) {
    if (!gone) continue;
    lock.unlock();
    Status left = gone();
    lock.lock();
    if (!left.ok() && !flight.done) return left;
  }
  *abandoned = flight.abandoned;
  return flight.result;
}

// Registers digests a pull is about to write, so that garbage collection
// running meanwhile leaves them alone; released when the pull ends.
class ImageService::Lease {
 public:
  explicit Lease(ImageService* s) : s_(s) {}
  ~Lease() {
    std::lock_guard lock(s_->gc_mu_);
    for (const auto& d : held_) s_->leased_.erase(s_->leased_.find(d));
  }
  void Add(const Digest& d) {
    std::lock_guard lock(s_->gc_mu_);
    s_->leased_.insert(d.str());
    held_.push_back(d.str());
  }

 private:
  ImageService* s_;
  std::vector<std::string> held_;
};

ImageService::ImageService(ImageServiceOptions options, store::MetadataStore* /*db*/)
    : options_(std::move(options)),
      content_(options_.root / "content"),
      layers_(options_.root / "snapshots"),
      registry_(std::make_unique<registry::Client>(options_.registry)) {}

StatusOr<std::unique_ptr<ImageService>> ImageService::Open(ImageServiceOptions options,
                                                           store::MetadataStore* db) {
  ASSIGN_OR_RETURN(PinnedImages pinned, PinnedImages::Parse(options.pinned_images));
  std::unique_ptr<ImageService> s(new ImageService(std::move(options), db));
  s->pinned_ = std::move(pinned);
  RETURN_IF_ERROR(s->content_.Init());
  RETURN_IF_ERROR(s->layers_.Init());
  ASSIGN_OR_RETURN(s->images_, ImageStore::Load(db));
  // Content of a pull that was interrupted (crash, SIGKILL) was committed
  // without a record pointing at it; it is garbage now.
  RETURN_IF_ERROR(s->CollectGarbage());
  return s;
}

StatusOr<ImageRecord> ImageService::Pull(std::string_view image,
                                         const std::optional<registry::AuthConfig>& auth,
                                         PullStats* stats, const CancelCheck& caller_gone) {
  const auto started = std::chrono::steady_clock::now();
  std::atomic<uint64_t> bytes{0};
  PullStats ignored;
  PullStats& out = stats != nullptr ? *stats : ignored;
  ScopeGuard fill_stats([&] {
    out.bytes = bytes.load();
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  });
  ASSIGN_OR_RETURN(Reference ref, ParseReference(image));
  const std::string key = ref.String();
  std::shared_ptr<Flight<ImageRecord>> flight;
  bool leader = false;
  uint64_t waiter = 0;
  for (;;) {
    {
      std::lock_guard lock(flights_mu_);
      auto& slot = pull_flights_[key];
      if (!slot) {
        slot = std::make_shared<Flight<ImageRecord>>();
        leader = true;
      }
      flight = slot;
      waiter = AddWaiter(*flight, caller_gone);
    }
    if (leader) break;
    out.shared = true;
    bool abandoned = false;
    StatusOr<ImageRecord> shared = AwaitFlight(*flight, caller_gone, &abandoned);
    RemoveWaiter(*flight, waiter);
    // Joined just as the others left: the pull was dropped without this
    // caller's say, so it starts one of its own.
    if (abandoned && (!caller_gone || caller_gone().ok())) continue;
    return shared;
  }
  // The pull goes on for as long as anyone waits for it, this caller or not.
  Flight<ImageRecord>* f = flight.get();
  CancelCheck everyone_gone = [f] { return f->AllGone(); };
  StatusOr<ImageRecord> result = PullUncoalesced(ref, auth, bytes, everyone_gone);
  bool abandoned = !result.ok() && flight->gave_up.load();
  {
    std::lock_guard lock(flights_mu_);
    flight->result = result;
    flight->abandoned = abandoned;
    flight->done = true;
    pull_flights_.erase(key);
  }
  flight->cv.notify_all();
  RemoveWaiter(*flight, waiter);
  if (abandoned) {
    Status gc = CollectGarbage();
    if (!gc.ok()) spdlog::warn("event=image_gc_failed error=\"{}\"", gc.message());
    spdlog::warn(
        "event=image_pull_aborted ref={} reason=\"every caller has gone ({})\" "
        "bytes_downloaded={} partial_downloads=removed",
        key, result.status().message(), bytes.load());
    if (caller_gone) {
      if (Status mine = caller_gone(); !mine.ok()) return mine;
    }
    return Annotate(result.status(), StrCat("pull ", key, " abandoned"));
  }
  if (!result.ok()) {
    // Whatever the failed pull committed (its config, finished layers) is
    // referenced by no image; collect it now rather than at the next start.
    Status gc = CollectGarbage();
    if (!gc.ok()) spdlog::warn("event=image_gc_failed error=\"{}\"", gc.message());
    return Annotate(result.status(), StrCat("pull ", key));
  }
  return result;
}

StatusOr<std::string> ImageService::FetchSmallBlob(const Reference& ref, const Descriptor& d,
                                                   const std::optional<registry::AuthConfig>& auth,
                                                   std::atomic<uint64_t>& bytes,
                                                   const CancelCheck& gone) {
  if (content_.Exists(d.digest)) return content_.ReadBlob(d.digest);
  if (d.size > (64 << 20)) {
    return InvalidArgumentError(
        StrCat("blob ", d.digest.str(), " claims ", d.size, " bytes; configs are small"));
  }
  std::string data;
  RETURN_IF_ERROR(registry_->GetBlob(
      ref.domain, ref.repository, d.digest, d.size,
      [&](const char* p, size_t n) {
        data.append(p, n);
        bytes += n;
        return OkStatus();
      },
      auth, gone));
  RETURN_IF_ERROR(content_.WriteBlob(d.digest, data));
  return data;
}

StatusOr<ImageRecord> ImageService::PullUncoalesced(const Reference& ref,
                                                    const std::optional<registry::AuthConfig>& auth,
                                                    std::atomic<uint64_t>& bytes,
                                                    const CancelCheck& gone) {
  auto started = std::chrono::steady_clock::now();
  Lease lease(this);
  std::string top_ref = ref.digest ? ref.digest->str() : ref.tag;
  ASSIGN_OR_RETURN(registry::Manifest top,
                   registry_->GetManifest(ref.domain, ref.repository, top_ref, auth, gone));
  bytes += top.body.size();
  ASSIGN_OR_RETURN(ManifestKind kind, DetectKind(top.media_type, top.body));
  registry::Manifest chosen = top;
  if (IsIndex(kind)) {
    ASSIGN_OR_RETURN(ImageIndex index, ParseIndex(top.body));
    Platform host = HostPlatform();
    std::optional<Descriptor> pick = SelectPlatform(index, host);
    if (!pick) {
      return NotFoundError(
          StrCat("no image for platform ", host.String(), " in ", top.digest.str()));
    }
    ASSIGN_OR_RETURN(
        chosen, registry_->GetManifest(ref.domain, ref.repository, pick->digest.str(), auth, gone));
    bytes += chosen.body.size();
    ASSIGN_OR_RETURN(ManifestKind child_kind, DetectKind(chosen.media_type, chosen.body));
    if (IsIndex(child_kind)) {
      return InvalidArgumentError(
          StrCat("nested index ", chosen.digest.str(), " is not supported"));
    }
  }
  ASSIGN_OR_RETURN(ImageManifest manifest, ParseManifest(chosen.body));
  RETURN_IF_ERROR(ValidateImageManifest(manifest));
  lease.Add(manifest.config.digest);
  ASSIGN_OR_RETURN(std::string config_body,
                   FetchSmallBlob(ref, manifest.config, auth, bytes, gone));
  ASSIGN_OR_RETURN(ImageConfig config, ParseImageConfig(config_body));
  RETURN_IF_ERROR(ValidateManifestAgainstConfig(manifest, config));

  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    lease.Add(manifest.layers[i].digest);
    lease.Add(config.diff_ids[i]);
  }
  // Layers download in parallel (bounded across pulls by FetchLayer) and
  // each unpacks while it streams.
  std::vector<Status> results(manifest.layers.size());
  {
    std::vector<std::jthread> workers;
    for (size_t i = 0; i < manifest.layers.size(); ++i) {
      workers.emplace_back([&, i] {
        results[i] = FetchLayer(ref, manifest.layers[i], config.diff_ids[i], auth, bytes, gone);
      });
    }
  }
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i].ok()) {
      // Once the callers have gone every layer fails; say why, not which.
      RETURN_IF_ERROR(gone());
      return Annotate(results[i], StrCat("layer ", manifest.layers[i].digest.str()));
    }
  }
  // Manifests last: their presence never suggests the image is complete.
  lease.Add(top.digest);
  lease.Add(chosen.digest);
  RETURN_IF_ERROR(content_.WriteBlob(top.digest, top.body));
  RETURN_IF_ERROR(content_.WriteBlob(chosen.digest, chosen.body));

  ImageRecord record;
  record.id = config.digest.str();
  if (!ref.tag.empty()) record.repo_tags.push_back(ref.TagRef());
  record.repo_digests.push_back(ref.DigestRef(top.digest));
  record.manifest_digest = chosen.digest.str();
  record.target_media_type = std::string(MediaTypeOf(kind));
  record.diff_ids = config.diff_ids;
  record.size = static_cast<uint64_t>(manifest.config.size);
  record.blobs.push_back(top.digest);
  if (chosen.digest != top.digest) record.blobs.push_back(chosen.digest);
  record.blobs.push_back(manifest.config.digest);
  for (const auto& l : manifest.layers) {
    record.size += static_cast<uint64_t>(l.size);
    record.blobs.push_back(l.digest);
  }
  record.annotations = manifest.annotations;
  ImageUser user = ParseImageUser(config.config.user);
  record.uid = user.uid;
  record.username = user.username;
  record.pulled_at_unix_nanos = NowUnixNanos();

  std::vector<std::string> orphaned;
  {
    std::lock_guard lock(gc_mu_);
    ASSIGN_OR_RETURN(orphaned, images_->Put(record));
  }
  if (!orphaned.empty()) RETURN_IF_ERROR(CollectGarbage());
  auto stored = images_->Get(record.id);
  if (!stored) return InternalError(StrCat("image ", record.id, " vanished after pull"));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  spdlog::info("event=image_pulled ref={} id={} layers={} bytes={} seconds={:.3f}", ref.String(),
               record.id, manifest.layers.size(), record.size, secs);
  return *stored;
}

Status ImageService::FetchLayer(const Reference& ref, const Descriptor& layer,
                                const Digest& diff_id,
                                const std::optional<registry::AuthConfig>& auth,
                                std::atomic<uint64_t>& bytes, const CancelCheck& gone) {
  if (layers_.Has(diff_id) && content_.Exists(layer.digest)) return OkStatus();
  const std::string key = diff_id.str();
  std::shared_ptr<Flight<bool>> flight;
  bool leader = false;
  uint64_t waiter = 0;
  for (;;) {
    {
      std::lock_guard lock(flights_mu_);
      auto& slot = layer_flights_[key];
      if (!slot) {
        slot = std::make_shared<Flight<bool>>();
        leader = true;
      }
      flight = slot;
      waiter = AddWaiter(*flight, gone);
    }
    if (leader) break;
    bool abandoned = false;
    StatusOr<bool> shared = AwaitFlight(*flight, gone, &abandoned);
    RemoveWaiter(*flight, waiter);
    // Another image's pull gave this layer up; this pull still wants it.
    if (abandoned && gone().ok()) continue;
    return shared.status();
  }
  // A layer shared by several images' pulls goes on while any of them waits.
  Flight<bool>* f = flight.get();
  CancelCheck everyone_gone = [f] { return f->AllGone(); };
  Status s;
  {
    std::unique_lock lock(download_mu_);
    while (!download_cv_.wait_for(lock, kCallerPoll, [&] {
      return downloads_running_ < options_.max_concurrent_downloads;
    })) {
      lock.unlock();
      s = everyone_gone();
      lock.lock();
      if (!s.ok()) break;
    }
    if (s.ok()) ++downloads_running_;
  }
  if (s.ok()) {
    s = FetchLayerUncoalesced(ref, layer, diff_id, auth, bytes, everyone_gone);
    {
      std::lock_guard lock(download_mu_);
      --downloads_running_;
    }
    download_cv_.notify_one();
  }
  bool abandoned = !s.ok() && flight->gave_up.load();
  {
    std::lock_guard lock(flights_mu_);
    flight->result = s.ok() ? StatusOr<bool>(true) : StatusOr<bool>(s);
    flight->abandoned = abandoned;
    flight->done = true;
    layer_flights_.erase(key);
  }
  flight->cv.notify_all();
  RemoveWaiter(*flight, waiter);
  return s;
}

Status ImageService::FetchLayerUncoalesced(const Reference& ref, const Descriptor& layer,
                                           const Digest& diff_id,
                                           const std::optional<registry::AuthConfig>& auth,
                                           std::atomic<uint64_t>& bytes, const CancelCheck& gone) {
  ASSIGN_OR_RETURN(archive::Compression compression,
                   archive::CompressionForMediaType(layer.media_type));
  ASSIGN_OR_RETURN(fs::path tmp, layers_.NewTempDir());
  ScopeGuard discard_tmp([&] { layers_.Discard(tmp); });

  BytePipe pipe(kPipeBytes);
  StatusOr<archive::ApplyResult> applied = UnknownError("layer not unpacked");
  std::thread unpacker([&] {
    applied = archive::ApplyLayer([&](char* buf, size_t n) { return pipe.Read(buf, n); },
                                  compression, tmp);
    if (applied.ok()) {
      // Trailing bytes after the tar end marker still belong to the blob.
      std::string sink(kReadChunk, '\0');
      for (;;) {
        auto n = pipe.Read(sink.data(), sink.size());
        if (!n.ok() || *n == 0) break;
      }
    }
    pipe.CloseRead(applied.ok() ? OkStatus() : applied.status());
  });

  Status download;
  std::unique_ptr<content::Writer> writer;
  if (content_.Exists(layer.digest)) {
    // The blob survived but its unpacked layer did not: unpack from disk.
    UniqueFd fd(::open(content_.BlobPath(layer.digest).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      download = ErrnoStatus(errno, StrCat("open blob ", layer.digest.str()));
    } else {
      std::string buf(kReadChunk, '\0');
      for (;;) {
        ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          download = ErrnoStatus(errno, StrCat("read blob ", layer.digest.str()));
          break;
        }
        if (n == 0) break;
        download = pipe.Write(buf.data(), static_cast<size_t>(n));
        if (!download.ok()) break;
      }
    }
  } else {
    auto w = content_.NewWriter(layer.digest, layer.size);
    if (!w.ok()) {
      download = w.status();
    } else {
      writer = std::move(*w);
      download = registry_->GetBlob(
          ref.domain, ref.repository, layer.digest, layer.size,
          [&](const char* p, size_t n) -> Status {
            bytes += n;
            RETURN_IF_ERROR(writer->Write(p, n));
            return pipe.Write(p, n);
          },
          auth, gone);
    }
  }
  pipe.CloseWrite(download);
  unpacker.join();
  // The download's own error explains more than the unpacker's view of it.
  if (!download.ok() && download.code() != StatusCode::kCancelled) return download;
  if (!applied.ok()) return Annotate(applied.status(), "unpack");
  if (!download.ok()) return download;
  if (applied->diff_id != diff_id) {
    return DataLossError(StrCat("uncompressed content has digest ", applied->diff_id.str(),
                                " but the image config lists diff_id ", diff_id.str()));
  }
  if (writer) RETURN_IF_ERROR(writer->Commit());
  RETURN_IF_ERROR(layers_.Commit(tmp, diff_id));
  discard_tmp.Cancel();
  return OkStatus();
}

StatusOr<ImageRecord> ImageService::Find(std::string_view image) const {
  auto r = images_->Resolve(image);
  if (!r) return NotFoundError(StrCat("image \"", image, "\" not found"));
  r->pinned = r->pinned || pinned_.Matches(*r);
  return *r;
}

StatusOr<ImageRecord> ImageService::RecordRuntimeHandler(const std::string& id,
                                                         const std::string& handler) {
  ASSIGN_OR_RETURN(ImageRecord r, images_->AddRuntimeHandler(id, handler));
  r.pinned = r.pinned || pinned_.Matches(r);
  return r;
}

std::vector<ImageRecord> ImageService::List() const {
  std::vector<ImageRecord> all = images_->List();
  for (ImageRecord& r : all) r.pinned = r.pinned || pinned_.Matches(r);
  return all;
}

Status ImageService::Remove(std::string_view image) {
  auto r = images_->Resolve(image);
  if (!r) return OkStatus();
  {
    std::lock_guard lock(gc_mu_);
    // Its layers are the lower directories of the user's mounts: removing
    // them would change files under a container.
    if (auto held = holds_.find(r->id); held != holds_.end()) {
      return FailedPreconditionError(StrCat("image ", r->id,
                                            " is in use by a container being created; remove "
                                            "that container first"));
    }
    if (in_use_check_) {
      if (std::string user = in_use_check_(r->id); !user.empty()) {
        return FailedPreconditionError(StrCat("image ", r->id, " is in use by container ", user,
                                              " (its rootfs or an image volume); remove the "
                                              "container first"));
      }
    }
    RETURN_IF_ERROR(images_->Remove(r->id));
  }
  spdlog::info("event=image_removed id={} tags={}", r->id, r->repo_tags.size());
  return CollectGarbage();
}

void ImageService::SetInUseCheck(std::function<std::string(const std::string&)> check) {
  std::lock_guard lock(gc_mu_);
  in_use_check_ = std::move(check);
}

StatusOr<std::string> ImageService::ConfigJson(const ImageRecord& record) const {
  ASSIGN_OR_RETURN(Digest d, Digest::Parse(record.id));
  return content_.ReadBlob(d);
}

StatusOr<ImageConfig> ImageService::Config(const ImageRecord& record) const {
  ASSIGN_OR_RETURN(std::string body, ConfigJson(record));
  return ParseImageConfig(body);
}

Status ImageService::CollectGarbage() {
  std::lock_guard lock(gc_mu_);
  std::set<std::string> keep(leased_.begin(), leased_.end());
  for (const auto& r : images_->List()) {
    for (const auto& b : r.blobs) keep.insert(b.str());
    for (const auto& d : r.diff_ids) keep.insert(d.str());
  }
  size_t blobs_removed = 0, layers_removed = 0;
  ASSIGN_OR_RETURN(auto blobs, content_.List());
  for (const auto& b : blobs) {
    if (keep.contains(b.digest.str())) continue;
    RETURN_IF_ERROR(content_.Delete(b.digest));
    ++blobs_removed;
  }
  ASSIGN_OR_RETURN(auto layers, layers_.List());
  for (const auto& l : layers) {
    if (keep.contains(l.str())) continue;
    RETURN_IF_ERROR(layers_.Remove(l));
    ++layers_removed;
  }
  if (blobs_removed + layers_removed > 0) {
    spdlog::info("event=image_gc blobs_removed={} layers_removed={}", blobs_removed,
                 layers_removed);
  }
  return OkStatus();
}

StatusOr<FsUsage> ImageService::ImageFsUsage() const {
  FsUsage u;
  u.mountpoint = options_.root.string();
  u.timestamp_unix_nanos = NowUnixNanos();
  for (const fs::path& p : {content_.root(), layers_.root()}) {
    ASSIGN_OR_RETURN(DiskUsage d, MeasureDiskUsage(p));
    u.used_bytes += d.bytes;
    u.inodes_used += d.inodes;
  }
  return u;
}

}  // namespace berth::image
