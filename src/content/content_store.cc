#include "content/content_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace berth::content {

namespace fs = std::filesystem;

Writer::~Writer() {
  if (!committed_) ::unlink(ingest_.c_str());
}

Status Writer::Write(const char* data, size_t len) {
  hash_.Update(data, len);
  size_t off = 0;
  while (off < len) {
    ssize_t n = ::write(fd_.get(), data + off, len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, StrCat("write blob ", expected_.str(), " to ", ingest_.string()));
    }
    off += static_cast<size_t>(n);
  }
  written_ += len;
  return OkStatus();
}

Status Writer::Commit() {
  if (expected_size_ >= 0 && written_ != static_cast<uint64_t>(expected_size_)) {
    return DataLossError(StrCat("blob ", expected_.str(), " has ", written_,
                                " bytes, its descriptor says ", expected_size_));
  }
  Digest got = hash_.Finish();
  if (got != expected_) {
    return DataLossError(
        StrCat("blob digest mismatch: expected ", expected_.str(), ", content is ", got.str()));
  }
  // fdatasync before rename: after a crash a visible blob must be whole.
  if (::fdatasync(fd_.get()) != 0) {
    return ErrnoStatus(errno, StrCat("sync blob ", ingest_.string()));
  }
  fd_.Reset();
  if (::rename(ingest_.c_str(), target_.c_str()) != 0) {
    return ErrnoStatus(errno, StrCat("commit blob ", expected_.str()));
  }
  committed_ = true;
  return OkStatus();
}

Status ContentStore::Init() {
  RETURN_IF_ERROR(MakeDirs(root_ / "blobs" / "sha256", 0700));
  RETURN_IF_ERROR(RemoveAll(root_ / "ingest"));
  return MakeDirs(root_ / "ingest", 0700);
}

fs::path ContentStore::BlobPath(const Digest& d) const {
  return root_ / "blobs" / "sha256" / d.hex();
}

StatusOr<std::unique_ptr<Writer>> ContentStore::NewWriter(const Digest& expected,
                                                          int64_t expected_size) {
  fs::path ingest = root_ / "ingest" / StrCat(expected.hex(), "-", RandomHex(6));
  UniqueFd fd(::open(ingest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("create ingest file ", ingest.string()));
  return std::unique_ptr<Writer>(
      new Writer(ingest, BlobPath(expected), expected, expected_size, std::move(fd)));
}

Status ContentStore::WriteBlob(const Digest& expected, std::string_view data) {
  if (Exists(expected)) {
    if (Sha256::Of(data) != expected) {
      return DataLossError(StrCat("blob digest mismatch for ", expected.str()));
    }
    return OkStatus();
  }
  ASSIGN_OR_RETURN(auto writer, NewWriter(expected, static_cast<int64_t>(data.size())));
  RETURN_IF_ERROR(writer->Write(data.data(), data.size()));
  return writer->Commit();
}

bool ContentStore::Exists(const Digest& d) const {
  struct stat st;
  return ::stat(BlobPath(d).c_str(), &st) == 0;
}

StatusOr<std::string> ContentStore::ReadBlob(const Digest& d) const {
  auto data = ReadFile(BlobPath(d));
  if (!data.ok() && data.status().code() == StatusCode::kNotFound) {
    return NotFoundError(StrCat("blob ", d.str(), " is not in the content store"));
  }
  return data;
}

Status ContentStore::Delete(const Digest& d) {
  if (::unlink(BlobPath(d).c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, StrCat("delete blob ", d.str()));
  }
  return OkStatus();
}

StatusOr<std::vector<BlobInfo>> ContentStore::List() const {
  std::vector<BlobInfo> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ / "blobs" / "sha256", ec)) {
    auto d = Digest::Parse("sha256:" + e.path().filename().string());
    if (!d.ok()) continue;  // not ours
    out.push_back({*d, static_cast<uint64_t>(e.file_size(ec))});
  }
  if (ec) return ErrnoStatus(ec.value(), StrCat("list blobs in ", root_.string()));
  return out;
}

}  // namespace berth::content
