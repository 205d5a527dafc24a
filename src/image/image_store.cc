#include "image/image_store.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "image/reference.h"

namespace berth::image {

namespace {
constexpr std::string_view kBucket = "images";

std::vector<std::string> DigestStrings(const std::vector<Digest>& ds) {
  std::vector<std::string> out;
  for (const auto& d : ds) out.push_back(d.str());
  return out;
}

StatusOr<std::vector<Digest>> ParseDigests(const nlohmann::json& arr) {
  std::vector<Digest> out;
  for (const auto& v : arr) {
    ASSIGN_OR_RETURN(Digest d, Digest::Parse(v.get<std::string>()));
    out.push_back(d);
  }
  return out;
}

void AddUnique(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}
}  // namespace

std::string ImageRecord::ToJson() const {
  nlohmann::json j{{"id", id},
                   {"repo_tags", repo_tags},
                   {"repo_digests", repo_digests},
                   {"size", size},
                   {"manifest_digest", manifest_digest},
                   {"target_media_type", target_media_type},
                   {"diff_ids", DigestStrings(diff_ids)},
                   {"blobs", DigestStrings(blobs)},
                   {"annotations", annotations},
                   {"username", username},
                   {"pinned", pinned},
                   {"pulled_at_unix_nanos", pulled_at_unix_nanos}};
  if (uid) j["uid"] = *uid;
  if (!runtime_handlers.empty()) j["runtime_handlers"] = runtime_handlers;
  return j.dump();
}

StatusOr<ImageRecord> ImageRecord::FromJson(std::string_view json) {
  try {
    auto j = nlohmann::json::parse(json);
    ImageRecord r;
    r.id = j.at("id").get<std::string>();
    r.repo_tags = j.at("repo_tags").get<std::vector<std::string>>();
    r.repo_digests = j.at("repo_digests").get<std::vector<std::string>>();
    r.size = j.at("size").get<uint64_t>();
    r.manifest_digest = j.at("manifest_digest").get<std::string>();
    r.target_media_type = j.value("target_media_type", "");
    ASSIGN_OR_RETURN(r.diff_ids, ParseDigests(j.at("diff_ids")));
    ASSIGN_OR_RETURN(r.blobs, ParseDigests(j.at("blobs")));
    r.annotations = j.value("annotations", std::map<std::string, std::string>{});
    r.username = j.value("username", "");
    r.pinned = j.value("pinned", false);
    r.pulled_at_unix_nanos = j.value("pulled_at_unix_nanos", int64_t{0});
    if (j.contains("uid")) r.uid = j["uid"].get<int64_t>();
    r.runtime_handlers = j.value("runtime_handlers", std::vector<std::string>{});
    return r;
  } catch (const nlohmann::json::exception& e) {
    return DataLossError(StrCat("corrupt image record: ", e.what()));
  }
}

StatusOr<std::unique_ptr<ImageStore>> ImageStore::Load(store::MetadataStore* db) {
  std::unique_ptr<ImageStore> s(new ImageStore(db));
  ASSIGN_OR_RETURN(auto rows, db->List(kBucket));
  for (const auto& [key, value] : rows) {
    ASSIGN_OR_RETURN(ImageRecord r, ImageRecord::FromJson(value));
    s->by_id_[r.id] = r;
    s->IndexLocked(r);
  }
  return s;
}

void ImageStore::IndexLocked(const ImageRecord& r) {
  for (const auto& t : r.repo_tags) by_name_[t] = r.id;
  for (const auto& d : r.repo_digests) by_name_[d] = r.id;
}

void ImageStore::UnindexLocked(const ImageRecord& r) {
  for (const auto& t : r.repo_tags) by_name_.erase(t);
  for (const auto& d : r.repo_digests) by_name_.erase(d);
}

StatusOr<std::vector<std::string>> ImageStore::Put(const ImageRecord& incoming) {
  std::lock_guard lock(mu_);
  ImageRecord merged = incoming;
  if (auto it = by_id_.find(incoming.id); it != by_id_.end()) {
    merged = it->second;
    for (const auto& t : incoming.repo_tags) AddUnique(merged.repo_tags, t);
    for (const auto& d : incoming.repo_digests) AddUnique(merged.repo_digests, d);
    for (const auto& [k, v] : incoming.annotations) merged.annotations[k] = v;
    merged.pinned = merged.pinned || incoming.pinned;
    for (const auto& h : incoming.runtime_handlers) AddUnique(merged.runtime_handlers, h);
    merged.pulled_at_unix_nanos = incoming.pulled_at_unix_nanos;
  }
  // Names this image takes over from other images.
  std::map<std::string, ImageRecord> changed;
  std::vector<std::string> removed;
  auto take = [&](const std::string& name) {
    auto n = by_name_.find(name);
    if (n == by_name_.end() || n->second == merged.id) return;
    ImageRecord& other =
        changed.contains(n->second) ? changed[n->second] : (changed[n->second] = by_id_[n->second]);
    std::erase(other.repo_tags, name);
    std::erase(other.repo_digests, name);
  };
  for (const auto& t : merged.repo_tags) take(t);
  for (const auto& d : merged.repo_digests) take(d);

  store::Batch batch;
  batch.Put(std::string(kBucket), merged.id, merged.ToJson());
  for (auto& [id, other] : changed) {
    if (other.repo_tags.empty() && other.repo_digests.empty()) {
      batch.Delete(std::string(kBucket), id);
      removed.push_back(id);
    } else {
      batch.Put(std::string(kBucket), id, other.ToJson());
    }
  }
  RETURN_IF_ERROR(db_->Update(batch));

  for (auto& [id, other] : changed) {
    UnindexLocked(by_id_[id]);
    if (std::find(removed.begin(), removed.end(), id) != removed.end()) {
      by_id_.erase(id);
    } else {
      by_id_[id] = other;
      IndexLocked(other);
    }
  }
  if (auto it = by_id_.find(merged.id); it != by_id_.end()) UnindexLocked(it->second);
  by_id_[merged.id] = merged;
  IndexLocked(merged);
  return removed;
}

std::optional<ImageRecord> ImageStore::Get(std::string_view id_or_name) const {
  std::lock_guard lock(mu_);
  std::string key(id_or_name);
  if (key.size() == 64) key = "sha256:" + key;
  if (auto it = by_id_.find(key); it != by_id_.end()) return it->second;
  if (auto n = by_name_.find(std::string(id_or_name)); n != by_name_.end()) {
    return by_id_.at(n->second);
  }
  return std::nullopt;
}

std::optional<ImageRecord> ImageStore::Resolve(std::string_view text) const {
  if (LooksLikeImageId(text)) return Get(text);
  if (auto exact = Get(text)) return exact;
  // An ID prefix, as crictl and docker accept ("sha256:" optional).
  std::string_view hex = text;
  if (hex.starts_with("sha256:")) hex.remove_prefix(7);
  bool all_hex = hex.size() >= 12 && std::all_of(hex.begin(), hex.end(), [](char c) {
                   return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                 });
  if (all_hex) {
    std::lock_guard lock(mu_);
    const ImageRecord* found = nullptr;
    for (const auto& [id, r] : by_id_) {
      if (std::string_view(id).substr(7).starts_with(hex)) {
        if (found != nullptr) return std::nullopt;  // ambiguous
        found = &r;
      }
    }
    if (found != nullptr) return *found;
  }
  auto ref = ParseReference(text);
  if (!ref.ok()) return std::nullopt;
  if (ref->digest) return Get(ref->DigestRef(*ref->digest));
  return Get(ref->TagRef());
}

std::vector<ImageRecord> ImageStore::List() const {
  std::lock_guard lock(mu_);
  std::vector<ImageRecord> out;
  for (const auto& [id, r] : by_id_) out.push_back(r);
  return out;
}

Status ImageStore::Remove(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return OkStatus();
  RETURN_IF_ERROR(db_->Delete(kBucket, id));
  UnindexLocked(it->second);
  by_id_.erase(it);
  return OkStatus();
}

StatusOr<ImageRecord> ImageStore::AddRuntimeHandler(const std::string& id,
                                                    const std::string& handler) {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) {
    return NotFoundError(StrCat("image ", id, " was removed while it was being pulled"));
  }
  ImageRecord updated = it->second;
  std::erase(updated.runtime_handlers, handler);
  updated.runtime_handlers.push_back(handler);
  if (updated.runtime_handlers != it->second.runtime_handlers) {
    RETURN_IF_ERROR(db_->Put(kBucket, id, updated.ToJson()));
    it->second = updated;
  }
  return updated;
}

}  // namespace berth::image
