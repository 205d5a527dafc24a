#include "store/metadata_store.h"

#include "common/fs.h"

namespace berth::store {

namespace {

// Finalizes a prepared statement on scope exit.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

void BindText(sqlite3_stmt* s, int idx, std::string_view v) {
  sqlite3_bind_text(s, idx, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

std::string ColumnText(sqlite3_stmt* s, int idx) {
  const void* p = sqlite3_column_blob(s, idx);
  int n = sqlite3_column_bytes(s, idx);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

}  // namespace

void Batch::Put(std::string bucket, std::string key, std::string value) {
  ops_.push_back({false, std::move(bucket), std::move(key), std::move(value)});
}

void Batch::Delete(std::string bucket, std::string key) {
  ops_.push_back({true, std::move(bucket), std::move(key), {}});
}

StatusOr<std::unique_ptr<MetadataStore>> MetadataStore::Open(const std::filesystem::path& path) {
  RETURN_IF_ERROR(MakeDirs(path.parent_path(), 0711));
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return InternalError(StrCat("open metadata database ", path.string(), ": ", msg));
  }
  std::unique_ptr<MetadataStore> store(new MetadataStore(db, path));
  sqlite3_busy_timeout(db, 5000);
  RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(store->Exec(
      "CREATE TABLE IF NOT EXISTS kv (bucket TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT "
      "NULL, PRIMARY KEY (bucket, key)) WITHOUT ROWID"));
  return store;
}

MetadataStore::~MetadataStore() { sqlite3_close(db_); }

Status MetadataStore::SqlError(std::string_view what) {
  return InternalError(
      StrCat("metadata database ", path_.string(), ": ", what, ": ", sqlite3_errmsg(db_)));
}

Status MetadataStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return InternalError(StrCat("metadata database ", path_.string(), ": ", sql, ": ", msg));
  }
  return OkStatus();
}

StatusOr<std::optional<std::string>> MetadataStore::Get(std::string_view bucket,
                                                        std::string_view key) {
  std::lock_guard lock(mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT value FROM kv WHERE bucket=?1 AND key=?2", -1, &st.s,
                         nullptr) != SQLITE_OK) {
    return SqlError("prepare get");
  }
  BindText(st.s, 1, bucket);
  BindText(st.s, 2, key);
  int rc = sqlite3_step(st.s);
  if (rc == SQLITE_ROW) return std::optional<std::string>(ColumnText(st.s, 0));
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return SqlError(StrCat("get ", bucket, "/", key));
}

StatusOr<std::vector<std::pair<std::string, std::string>>> MetadataStore::List(
    std::string_view bucket) {
  std::lock_guard lock(mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT key, value FROM kv WHERE bucket=?1 ORDER BY key", -1, &st.s,
                         nullptr) != SQLITE_OK) {
    return SqlError("prepare list");
  }
  BindText(st.s, 1, bucket);
  std::vector<std::pair<std::string, std::string>> out;
  for (;;) {
    int rc = sqlite3_step(st.s);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return SqlError(StrCat("list ", bucket));
    out.emplace_back(ColumnText(st.s, 0), ColumnText(st.s, 1));
  }
  return out;
}

Status MetadataStore::Put(std::string_view bucket, std::string_view key, std::string_view value) {
  Batch b;
  b.Put(std::string(bucket), std::string(key), std::string(value));
  return Update(b);
}

Status MetadataStore::Delete(std::string_view bucket, std::string_view key) {
  Batch b;
  b.Delete(std::string(bucket), std::string(key));
  return Update(b);
}

Status MetadataStore::DeleteUnsynced(std::string_view bucket, std::string_view key) {
  Batch b;
  b.Delete(std::string(bucket), std::string(key));
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(Exec("PRAGMA synchronous=NORMAL"));
  Status s = UpdateLocked(b);
  Status restored = Exec("PRAGMA synchronous=FULL");
  RETURN_IF_ERROR(s);
  return restored;
}

Status MetadataStore::Update(const Batch& batch) {
  std::lock_guard lock(mu_);
  return UpdateLocked(batch);
}

Status MetadataStore::UpdateLocked(const Batch& batch) {
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  ScopeGuard rollback([this] { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); });
  Stmt put, del;
  if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO kv(bucket, key, value) VALUES (?1, ?2, ?3)",
                         -1, &put.s, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db_, "DELETE FROM kv WHERE bucket=?1 AND key=?2", -1, &del.s, nullptr) !=
          SQLITE_OK) {
    return SqlError("prepare update");
  }
  for (const auto& op : batch.ops_) {
    sqlite3_stmt* s = op.is_delete ? del.s : put.s;
    sqlite3_reset(s);
    BindText(s, 1, op.bucket);
    BindText(s, 2, op.key);
    if (!op.is_delete) {
      sqlite3_bind_blob(s, 3, op.value.data(), static_cast<int>(op.value.size()), SQLITE_TRANSIENT);
    }
    if (sqlite3_step(s) != SQLITE_DONE) return SqlError(StrCat("write ", op.bucket, "/", op.key));
  }
  RETURN_IF_ERROR(Exec("COMMIT"));
  rollback.Cancel();
  return OkStatus();
}

}  // namespace berth::store
