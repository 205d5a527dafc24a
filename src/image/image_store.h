// The images Berth knows: metadata records keyed by image ID (the config
// digest), with the names (repo tags and repo digests) that point at them.
// Records live in the crash-safe MetadataStore; this class keeps an in-memory
// index for lookups and writes through on every change.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/status.h"
#include "store/metadata_store.h"

namespace berth::image {

struct ImageRecord {
  std::string id;                         // "sha256:<config digest hex>"
  std::vector<std::string> repo_tags;     // "docker.io/library/busybox:latest"
  std::vector<std::string> repo_digests;  // "docker.io/library/busybox@sha256:..."
  uint64_t size = 0;                      // bytes of content: config + compressed layers
  std::string manifest_digest;            // the per-platform manifest pulled
  std::string target_media_type;          // media type of what the tag resolved to
  std::vector<Digest> diff_ids;           // unpacked layers, base first
  std::vector<Digest> blobs;              // every content-store blob this image holds
  std::map<std::string, std::string> annotations;
  std::optional<int64_t> uid;  // from the config's User, per CRI ImageStatus
  std::string username;
  bool pinned = false;
  int64_t pulled_at_unix_nanos = 0;
  // Runtime handlers (RuntimeClasses) the image was pulled for, oldest first.
  // All handlers share the one copy of the content; the list is what the
  // kubelet's RuntimeClassInImageCriApi asks about.
  std::vector<std::string> runtime_handlers;

  std::string ToJson() const;
  static StatusOr<ImageRecord> FromJson(std::string_view json);
};

// Thread-safe.
class ImageStore {
 public:
  // Loads every record from `db` (which must outlive the store).
  static StatusOr<std::unique_ptr<ImageStore>> Load(store::MetadataStore* db);

  // Adds `incoming` or merges its names into an existing record with the same
  // ID. A name that pointed at another image moves to this one; images left
  // without any name are removed and their IDs returned, so the caller can
  // collect their content.
  StatusOr<std::vector<std::string>> Put(const ImageRecord& incoming);

  // Looks up by image ID ("sha256:<hex>" or bare hex), or by a normalised
  // reference string (TagRef or DigestRef). Not found is an empty optional.
  std::optional<ImageRecord> Get(std::string_view id_or_name) const;
  // Looks up by what a user typed: an ID, an unambiguous ID prefix of at least
  // 12 hex digits, or any reference form ("busybox", "busybox:1.36", ...).
  std::optional<ImageRecord> Resolve(std::string_view text) const;

  std::vector<ImageRecord> List() const;
  Status Remove(const std::string& id);  // absent is success
  // Records that image `id` was pulled for `handler` (moved to the end of the
  // list: the most recent). NOT_FOUND when the image was removed meanwhile,
  // so a racing RemoveImage is never undone.
  StatusOr<ImageRecord> AddRuntimeHandler(const std::string& id, const std::string& handler);

 private:
  explicit ImageStore(store::MetadataStore* db) : db_(db) {}
  void IndexLocked(const ImageRecord& r);
  void UnindexLocked(const ImageRecord& r);

  store::MetadataStore* db_;
  mutable std::mutex mu_;
  std::map<std::string, ImageRecord> by_id_;
  std::map<std::string, std::string> by_name_;  // name -> id
};

}  // namespace berth::image
