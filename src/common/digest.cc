#include "common/digest.h"

#include <fmt/format.h>

namespace berth {

StatusOr<Digest> Digest::Parse(std::string_view text) {
  if (!text.starts_with("sha256:")) {
    return InvalidArgumentError(
        StrCat("unsupported digest \"", text, "\": want sha256:<64 hex digits>"));
  }
  std::string_view hex = text.substr(7);
  if (hex.size() != 64) {
    return InvalidArgumentError(StrCat("digest \"", text, "\" has the wrong length"));
  }
  for (char c : hex) {
    if ((c < '0' || c > '9') && (c < 'a' || c > 'f')) {
      return InvalidArgumentError(StrCat("digest \"", text, "\" is not lowercase hexadecimal"));
    }
  }
  return Digest(std::string(hex));
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }

void Sha256::Update(const void* data, size_t len) { EVP_DigestUpdate(ctx_.get(), data, len); }

Digest Sha256::Finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx_.get(), md, &n);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(n * 2);
  for (unsigned int i = 0; i < n; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 0xf]);
  }
  return Digest::FromHex(std::move(hex));
}

Digest Sha256::Of(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Finish();
}

}  // namespace berth
