#include "server/v1alpha2_convert.h"

#include <string>

namespace berth::server::v1alpha2 {

Status Reencode(const google::protobuf::Message& from, google::protobuf::Message* to) {
  std::string wire;
  if (!from.SerializeToString(&wire)) {
    return InternalError(StrCat("CRI version conversion: cannot encode ", from.GetTypeName()));
  }
  to->Clear();
  if (!to->ParseFromString(wire)) {
    return InternalError(StrCat("CRI version conversion: ", from.GetTypeName(),
                                " does not decode as ", to->GetTypeName()));
  }
  // Fields of the newer version that the older one lacks: keep them off the wire.
  to->DiscardUnknownFields();
  return OkStatus();
}

void Adjust(const runtime::v1::VersionResponse&, runtime::v1alpha2::VersionResponse* to) {
  to->set_runtime_api_version("v1alpha2");
}

}  // namespace berth::server::v1alpha2
