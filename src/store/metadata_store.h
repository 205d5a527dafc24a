// Crash-safe metadata: named buckets of key -> value (opaque bytes, JSON by
// convention), kept in SQLite in WAL mode with synchronous=FULL, so a write
// that returned is on disk and a SIGKILL at any moment leaves either the old
// or the new state, never a torn one.
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::store {

// A write batch applied atomically by MetadataStore::Update.
class Batch {
 public:
  void Put(std::string bucket, std::string key, std::string value);
  void Delete(std::string bucket, std::string key);

 private:
  friend class MetadataStore;
  struct Op {
    bool is_delete;
    std::string bucket, key, value;
  };
  std::vector<Op> ops_;
};

// Thread-safe: one connection guarded by a mutex (metadata writes are small
// and rare next to image and container I/O).
class MetadataStore {
 public:
  static StatusOr<std::unique_ptr<MetadataStore>> Open(const std::filesystem::path& db_path);
  ~MetadataStore();

  StatusOr<std::optional<std::string>> Get(std::string_view bucket, std::string_view key);
  // Every (key, value) of a bucket, ordered by key.
  StatusOr<std::vector<std::pair<std::string, std::string>>> List(std::string_view bucket);
  Status Put(std::string_view bucket, std::string_view key, std::string_view value);
  Status Delete(std::string_view bucket, std::string_view key);
  // A delete committed without waiting for the disk (synchronous=NORMAL for
  // this one transaction), for records whose return after a power loss is
  // harmless (the caller must make sure of that). Against a crash of the
  // process it is as safe as Delete (the WAL is in the page cache), and the
  // next synced write makes it durable with everything before it.
  Status DeleteUnsynced(std::string_view bucket, std::string_view key);
  // Applies every operation of `batch` in one transaction.
  Status Update(const Batch& batch);

 private:
  MetadataStore(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
  Status Exec(const char* sql);
  Status UpdateLocked(const Batch& batch);
  Status SqlError(std::string_view what);

  std::mutex mu_;
  sqlite3* db_;
  std::filesystem::path path_;
};

}  // namespace berth::store
