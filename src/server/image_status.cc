#include <nlohmann/json.hpp>

#include "server/cri_services.h"

namespace berth::server {

// An absent image is an empty response, not an error: the kubelet asks
// before pulling.
grpc::Status ImageServiceImpl::ImageStatus(grpc::ServerContext*,
                                           const runtime::v1::ImageStatusRequest* req,
                                           runtime::v1::ImageStatusResponse* resp) {
  return rpc_.Run("ImageStatus", [&]() -> Status {
    const std::string& name = req->image().image();
    if (name.empty()) return InvalidArgumentError("ImageStatus: image.image must name an image");
    auto found = images().Find(name);
    if (!found.ok()) {
      if (found.status().code() == StatusCode::kNotFound) return OkStatus();
      return found.status();
    }
    ToCriImage(*found, resp->mutable_image(), req->image().runtime_handler());
    if (req->verbose()) {
      ASSIGN_OR_RETURN(std::string config, images().ConfigJson(*found));
      std::vector<std::string> diff_ids;
      for (const auto& d : found->diff_ids) diff_ids.push_back(d.str());
      nlohmann::json info{{"imageSpec", nlohmann::json::parse(config, nullptr, false)},
                          {"manifestDigest", found->manifest_digest},
                          {"mediaType", found->target_media_type},
                          {"diffIDs", diff_ids},
                          {"pulledAtUnixNanos", found->pulled_at_unix_nanos},
                          {"runtimeHandlers", found->runtime_handlers}};
      (*resp->mutable_info())["info"] = info.dump();
    }
    return OkStatus();
  });
}

}  // namespace berth::server
