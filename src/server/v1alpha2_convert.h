// The one conversion layer between CRI runtime.v1alpha2 (kubelets 1.20-1.25,
// crictl up to v1.22) and runtime.v1, which is what every Berth handler
// speaks.
//
// The two APIs share message names and field numbers: v1 is v1alpha2 plus
// fields and messages added since, and no v1alpha2 field was removed or
// renumbered (the unit test walks both descriptors to keep it so). A message
// therefore converts by re-encoding it through the wire format:
//   - v1alpha2 -> v1 (requests): nothing is lost; v1-only fields stay unset,
//     which every handler treats as "not asked for". The one type change,
//     KeyValue.value (string in v1alpha2, bytes in v1), is the same on the
//     wire and only widens in this direction.
//   - v1 -> v1alpha2 (responses): fields that exist only in v1 (image_id,
//     the pod's container statuses, PSI and swap stats, runtime handlers and
//     features...) are dropped rather than sent as unknown fields, which an
//     old client could not read anyway.
// Where the meaning differs although the bytes match, Adjust() says so.
//
// Pure functions; thread-safe.
#pragma once

// The CRI headers come first: see server/signals.h.
#include "runtime/v1/api.pb.h"
#include "runtime/v1alpha2/api.pb.h"
// (blank line keeps clang-format from reordering)

#include <google/protobuf/message.h>

#include "common/status.h"

namespace berth::server::v1alpha2 {

// Re-encodes `from` into `to` (a message of the other API version with the
// same name) and drops fields `to` does not know. INTERNAL if the bytes do
// not parse, which would mean the two .proto files disagree.
Status Reencode(const google::protobuf::Message& from, google::protobuf::Message* to);

// Explicit differences, applied after Reencode. Most messages have none.
template <typename From, typename To>
void Adjust(const From&, To*) {}
// A v1alpha2 client asked: the API version that answered is v1alpha2 (the
// kubelet and crictl print it; containerd answered the same).
void Adjust(const runtime::v1::VersionResponse& from, runtime::v1alpha2::VersionResponse* to);

// A v1alpha2 request as the v1 request of the same name.
template <typename V1, typename V1alpha2>
Status Upgrade(const V1alpha2& from, V1* to) {
  RETURN_IF_ERROR(Reencode(from, to));
  Adjust(from, to);
  return OkStatus();
}

// A v1 response as the v1alpha2 response of the same name.
template <typename V1alpha2, typename V1>
Status Downgrade(const V1& from, V1alpha2* to) {
  RETURN_IF_ERROR(Reencode(from, to));
  Adjust(from, to);
  return OkStatus();
}

}  // namespace berth::server::v1alpha2
