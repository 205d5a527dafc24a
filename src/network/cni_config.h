// Finding the CNI network to use: the first loadable config in the CNI
// configuration directory, in libcni's order (file names sorted; *.conflist,
// *.conf and *.json), whose plugins all exist in one of the plugin
// directories. NetworkReady in the CRI Status follows this.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::network {

struct NetworkConfigList {
  std::filesystem::path file;
  std::string name;
  std::string cni_version;
  std::vector<std::string> plugin_types;  // in chain order
  std::string raw;  // the conflist JSON (a single .conf is wrapped into a list)
};

// FAILED_PRECONDITION, naming the directory and what is wrong, when no usable
// configuration exists.
StatusOr<NetworkConfigList> LoadDefaultNetwork(const std::filesystem::path& conf_dir,
                                               const std::vector<std::string>& bin_dirs);

// Parses one config file's content (conflist or single conf).
StatusOr<NetworkConfigList> ParseNetworkConfig(const std::filesystem::path& file,
                                               std::string_view content);

}  // namespace berth::network
