// Fuzzes the default pod network's inputs (network/pod_network.h): the pod CIDR comes from
// the kubelet (UpdateRuntimeConfig) and the template from a file an operator wrote. Input:
// the first line is the pod CIDR, the rest the template.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "network/cni_config.h"
#include "network/pod_network.h"

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "pod_network: property violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace berth::network;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  const std::string_view cidr = input.substr(0, nl);
  const std::string_view tmpl = nl == std::string_view::npos ? "" : input.substr(nl + 1);

  berth::StatusOr<std::vector<PodCidr>> cidrs = ParsePodCidrs(cidr);
  if (!cidrs.ok()) return 0;
  Check(cidrs->size() == 1 || cidrs->size() == 2, "one CIDR or two");
  std::string joined;
  for (const PodCidr& c : *cidrs) joined += (joined.empty() ? "" : ",") + c.cidr;
  // The canonical form parses to itself.
  berth::StatusOr<std::vector<PodCidr>> again = ParsePodCidrs(joined);
  Check(again.ok() && again->size() == cidrs->size(), "canonical CIDRs parse again");
  for (size_t i = 0; again.ok() && i < again->size(); ++i) {
    Check((*again)[i].cidr == (*cidrs)[i].cidr, "canonical form is stable");
  }

  PodNetworkParams params{*cidrs, "/run/berth/cni/networks"};
  for (std::string_view t : {tmpl, BuiltinPodNetworkTemplate()}) {
    berth::StatusOr<std::string> text = RenderPodNetwork(t, params, "fuzz");
    if (!text.ok()) {
      Check(t != BuiltinPodNetworkTemplate(), "the built-in template renders for every CIDR");
      continue;
    }
    Check(ParseNetworkConfig("fuzz.conflist", *text).ok(), "what renders is a network config");
  }
  return 0;
}
