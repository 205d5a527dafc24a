// Uploads test content to a registry over plain distribution-API HTTP (libcurl): monolithic
// blob uploads (POST /v2/<repo>/blobs/uploads/, then PUT <location>?digest=) and manifest PUTs.
// For tests only; traffic goes to whatever `base_url` names, which tests keep on 127.0.0.1.
#pragma once

#include <string>
#include <string_view>

#include "common/digest.h"
#include "common/status.h"

namespace berth::testing {

struct PushTarget {
  std::string base_url;  // "http://127.0.0.1:5000" (no path)
  std::string username;  // basic auth, if set
  std::string password;
  std::string bearer_token;  // sent as "Authorization: Bearer ..." if set
  std::string ca_file;       // PEM CA for https registries
};

// Uploads `content` as a blob of `repository`; returns its digest. Thread-safe.
StatusOr<Digest> PushBlob(const PushTarget& target, std::string_view repository,
                          std::string_view content);

// PUTs a manifest under `reference` (tag or digest) with Content-Type `media_type`; returns
// the digest of `body`. The blobs it references must be pushed first. Thread-safe.
StatusOr<Digest> PushManifest(const PushTarget& target, std::string_view repository,
                              std::string_view reference, std::string_view media_type,
                              std::string_view body);

}  // namespace berth::testing
