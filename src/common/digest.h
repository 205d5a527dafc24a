// Content digests ("sha256:<64 hex>") and a streaming SHA-256 hasher.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace berth {

// A validated content digest. Only sha256 is accepted: it is the only algorithm
// registries use for manifests and blobs in practice, and the OCI spec requires it.
class Digest {
 public:
  static StatusOr<Digest> Parse(std::string_view text);
  static Digest FromHex(std::string hex) { return Digest(std::move(hex)); }

  const std::string& hex() const { return hex_; }
  std::string str() const { return "sha256:" + hex_; }
  bool operator==(const Digest&) const = default;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads a defaulted <=>
  auto operator<=>(const Digest&) const = default;

 private:
  explicit Digest(std::string hex) : hex_(std::move(hex)) {}
  std::string hex_;
};

// Incremental SHA-256. Not thread-safe; one per stream.
class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t len);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  Digest Finish();  // may be called once

  static Digest Of(std::string_view data);

 private:
  struct CtxDeleter {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx_;
};

}  // namespace berth
