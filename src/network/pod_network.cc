#include "network/pod_network.h"

#include <arpa/inet.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "network/cni_config.h"

namespace berth::network {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kBuiltinTemplate = R"({
  "cniVersion": "1.0.0",
  "name": "berth-default",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "berth0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "{{.IPAMDataDir}}",
        "ranges": {{.PodCIDRRanges}},
        "routes": {{.Routes}}
      }
    },
    {
      "type": "portmap",
      "capabilities": {"portMappings": true}
    },
    {
      "type": "loopback"
    }
  ]
}
)";

StatusOr<PodCidr> ParseOneCidr(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError(StrCat("pod CIDR \"", text, "\" ", why));
  };
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return bad("has no prefix length (e.g. 10.244.0.0/24)");
  std::string addr(text.substr(0, slash));
  // inet_pton stops at a NUL: "10.0.0.0\0junk/24" must not pass as 10.0.0.0/24.
  if (addr.find('\0') != std::string::npos) return bad("is not an IPv4 or IPv6 network");
  std::string_view len = text.substr(slash + 1);
  if (len.empty() || len.size() > 3 || len.find_first_not_of("0123456789") != std::string::npos) {
    return bad("has a bad prefix length");
  }
  int prefix = std::stoi(std::string(len));
  unsigned char bytes[16] = {};
  PodCidr out;
  int bits = 0;
  if (::inet_pton(AF_INET, addr.c_str(), bytes) == 1) {
    bits = 32;
  } else if (::inet_pton(AF_INET6, addr.c_str(), bytes) == 1) {
    bits = 128;
    out.ipv6 = true;
  } else {
    return bad("is not an IPv4 or IPv6 network");
  }
  if (prefix > bits) return bad(StrCat("has a prefix longer than ", bits, " bits"));
  // host-local hands out addresses between network and broadcast: a /31 or
  // /32 (/127, /128) leaves none for pods.
  if (prefix > bits - 2) return bad("leaves no addresses for pods");
  for (int i = prefix; i < bits; ++i) {
    if (bytes[i / 8] & (0x80 >> (i % 8))) {
      return bad(StrCat("has host bits set (the network is written with zeros after the first ",
                        prefix, " bits)"));
    }
  }
  char canonical[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(out.ipv6 ? AF_INET6 : AF_INET, bytes, canonical, sizeof canonical);
  out.cidr = StrCat(canonical, "/", prefix);
  return out;
}

// Config files of the directory, as libcni (and LoadDefaultNetwork) sees them.
std::vector<fs::path> NetworkConfigFiles(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto ext = e.path().extension();
    if (ext == ".conflist" || ext == ".conf" || ext == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

StatusOr<std::vector<PodCidr>> ParsePodCidrs(std::string_view pod_cidr) {
  std::vector<PodCidr> out;
  size_t start = 0;
  while (start <= pod_cidr.size()) {
    size_t end = pod_cidr.find(',', start);
    if (end == std::string_view::npos) end = pod_cidr.size();
    std::string_view part = pod_cidr.substr(start, end - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (part.empty()) return InvalidArgumentError(StrCat("pod CIDR \"", pod_cidr, "\" is empty"));
    ASSIGN_OR_RETURN(PodCidr c, ParseOneCidr(part));
    out.push_back(std::move(c));
    start = end + 1;
  }
  if (out.size() > 2 || (out.size() == 2 && out[0].ipv6 == out[1].ipv6)) {
    return InvalidArgumentError(
        StrCat("pod CIDR \"", pod_cidr,
               "\" must be one CIDR, or an IPv4 and an IPv6 CIDR separated by a comma"));
  }
  return out;
}

std::string_view BuiltinPodNetworkTemplate() { return kBuiltinTemplate; }

StatusOr<std::string> RenderPodNetwork(std::string_view tmpl, const PodNetworkParams& params,
                                       std::string_view source) {
  if (params.cidrs.empty()) return InvalidArgumentError("no pod CIDR to render");
  nlohmann::json ranges = nlohmann::json::array();
  nlohmann::json routes = nlohmann::json::array();
  bool v4_route = false, v6_route = false;
  for (const PodCidr& c : params.cidrs) {
    ranges.push_back(nlohmann::json::array({{{"subnet", c.cidr}}}));
    bool& done = c.ipv6 ? v6_route : v4_route;
    if (!done) routes.push_back({{"dst", c.ipv6 ? "::/0" : "0.0.0.0/0"}});
    done = true;
  }
  // A JSON string's content without its quotes, for use inside "...".
  auto in_string = [](const std::string& s) {
    std::string q = nlohmann::json(s).dump();
    return q.substr(1, q.size() - 2);
  };
  const std::pair<std::string_view, std::string> values[] = {
      {"{{.PodCIDR}}", in_string(params.cidrs.front().cidr)},
      {"{{.PodCIDRRanges}}", ranges.dump()},
      {"{{.Routes}}", routes.dump()},
      {"{{.IPAMDataDir}}", in_string(params.ipam_data_dir)},
  };
  std::string out;
  size_t pos = 0;
  while (pos < tmpl.size()) {
    size_t open = tmpl.find("{{", pos);
    if (open == std::string_view::npos) {
      out.append(tmpl.substr(pos));
      break;
    }
    out.append(tmpl.substr(pos, open - pos));
    size_t close = tmpl.find("}}", open);
    if (close == std::string_view::npos) {
      return InvalidArgumentError(StrCat("CNI template ", source, ": unclosed {{"));
    }
    std::string_view placeholder = tmpl.substr(open, close + 2 - open);
    bool known = false;
    for (const auto& [name, value] : values) {
      if (placeholder == name) {
        out += value;
        known = true;
      }
    }
    if (!known) {
      return InvalidArgumentError(
          StrCat("CNI template ", source, ": unknown placeholder ", placeholder,
                 " (known: {{.PodCIDR}}, {{.PodCIDRRanges}}, {{.Routes}}, {{.IPAMDataDir}})"));
    }
    pos = close + 2;
  }
  // Check that what would be written is a network config list berthd loads.
  StatusOr<NetworkConfigList> parsed = ParseNetworkConfig("rendered.conflist", out);
  if (!parsed.ok()) {
    return InvalidArgumentError(
        StrCat("CNI template ", source,
               " does not render a network config list: ", parsed.status().message()));
  }
  return out;
}

StatusOr<DefaultPodNetwork::Result> DefaultPodNetwork::Apply(std::string_view pod_cidr) {
  std::lock_guard lock(mu_);
  Result result;
  if (pod_cidr.empty()) {
    result.outcome = Outcome::kNoCidr;
    return result;
  }
  ASSIGN_OR_RETURN(result.cidrs, ParsePodCidrs(pod_cidr));
  if (!options_.enabled) {
    result.outcome = Outcome::kDisabled;
    return result;
  }
  const fs::path ours = options_.conf_dir / kDefaultNetworkFile;
  for (const fs::path& f : NetworkConfigFiles(options_.conf_dir)) {
    if (f != ours) {
      result.outcome = Outcome::kOtherConfig;
      result.file = f;
      return result;
    }
  }
  std::string tmpl(BuiltinPodNetworkTemplate());
  std::string source = "(built-in)";
  if (!options_.template_file.empty()) {
    StatusOr<std::string> text = ReadFile(options_.template_file);
    if (!text.ok()) {
      // The kubelet cannot fix this: the node's configuration must.
      return FailedPreconditionError(
          StrCat("cni.default_network_template: ", text.status().message()));
    }
    tmpl = std::move(*text);
    source = options_.template_file.string();
  }
  PodNetworkParams params{result.cidrs, options_.ipam_data_dir};
  ASSIGN_OR_RETURN(std::string text, RenderPodNetwork(tmpl, params, source));
  result.file = ours;
  StatusOr<std::string> existing = ReadFile(ours);
  if (existing.ok() && *existing == text) {
    result.outcome = Outcome::kUnchanged;
    return result;
  }
  RETURN_IF_ERROR(MakeDirs(options_.conf_dir, 0755));
  RETURN_IF_ERROR(WriteFileAtomic(ours, text, 0644));
  result.outcome = Outcome::kWritten;
  return result;
}

std::string_view OutcomeName(DefaultPodNetwork::Outcome outcome) {
  switch (outcome) {
    case DefaultPodNetwork::Outcome::kDisabled:
      return "disabled";
    case DefaultPodNetwork::Outcome::kNoCidr:
      return "no_cidr";
    case DefaultPodNetwork::Outcome::kOtherConfig:
      return "other_config";
    case DefaultPodNetwork::Outcome::kUnchanged:
      return "unchanged";
    case DefaultPodNetwork::Outcome::kWritten:
      return "written";
  }
  return "unknown";
}

}  // namespace berth::network
