#include "network/cni_config.h"

#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/fs.h"

namespace berth::network {

namespace fs = std::filesystem;

StatusOr<NetworkConfigList> ParseNetworkConfig(const fs::path& file, std::string_view content) {
  nlohmann::json j = nlohmann::json::parse(content, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgumentError(StrCat("CNI config ", file.string(), " is not a JSON object"));
  }
  NetworkConfigList out;
  out.file = file;
  if (file.extension() != ".conflist") {
    // A single plugin config: libcni wraps it into a list of one.
    nlohmann::json list{{"cniVersion", j.contains("cniVersion") ? j["cniVersion"] : ""},
                        {"name", j.contains("name") ? j["name"] : ""},
                        {"plugins", nlohmann::json::array({j})}};
    j = std::move(list);
  }
  // Fields of the wrong type are treated as absent rather than throwing.
  if (j.contains("name") && j["name"].is_string()) out.name = j["name"];
  if (j.contains("cniVersion") && j["cniVersion"].is_string()) out.cni_version = j["cniVersion"];
  if (out.name.empty()) {
    return InvalidArgumentError(StrCat("CNI config ", file.string(), " has no network name"));
  }
  if (!j.contains("plugins") || !j["plugins"].is_array() || j["plugins"].empty()) {
    return InvalidArgumentError(StrCat("CNI config ", file.string(), " lists no plugins"));
  }
  for (const auto& p : j["plugins"]) {
    if (!p.is_object() || !p.contains("type") || !p["type"].is_string()) {
      return InvalidArgumentError(
          StrCat("CNI config ", file.string(), " has a plugin without a type"));
    }
    out.plugin_types.push_back(p["type"].get<std::string>());
  }
  out.raw = j.dump();
  return out;
}

StatusOr<NetworkConfigList> LoadDefaultNetwork(const fs::path& conf_dir,
                                               const std::vector<std::string>& bin_dirs) {
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(conf_dir, ec)) {
    auto ext = e.path().extension();
    if (ext == ".conflist" || ext == ".conf" || ext == ".json") files.push_back(e.path());
  }
  if (files.empty()) {
    return FailedPreconditionError(
        StrCat("no network config found in ", conf_dir.string(), ": cni plugin not initialized"));
  }
  std::sort(files.begin(), files.end());
  std::string problems;
  for (const auto& f : files) {
    auto content = ReadFile(f);
    if (!content.ok()) {
      problems += StrCat("; ", content.status().message());
      continue;
    }
    auto cfg = ParseNetworkConfig(f, *content);
    if (!cfg.ok()) {
      problems += StrCat("; ", cfg.status().message());
      continue;
    }
    std::string missing;
    for (const auto& type : cfg->plugin_types) {
      bool found = std::any_of(bin_dirs.begin(), bin_dirs.end(), [&](const std::string& d) {
        return ::access((fs::path(d) / type).c_str(), X_OK) == 0;
      });
      if (!found) missing += StrCat(missing.empty() ? "" : ", ", type);
    }
    if (!missing.empty()) {
      problems +=
          StrCat("; ", f.string(), ": plugin(s) ", missing, " not found in the CNI bin dirs");
      continue;
    }
    return cfg;
  }
  return FailedPreconditionError(
      StrCat("no usable network config in ", conf_dir.string(), problems));
}

}  // namespace berth::network
