#include "server/cri_convert_features.h"

namespace berth::server {

namespace {

// The enum spells "SIGRTMIN+3" as SIGRTMINPLUS3 and "SIGRTMAX-2" as
// SIGRTMAXMINUS2.
constexpr std::string_view kPlus = "SIGRTMINPLUS", kMinus = "SIGRTMAXMINUS";

}  // namespace

std::string StopSignalName(runtime::v1::Signal s) {
  if (s == runtime::v1::RUNTIME_DEFAULT) return "";
  std::string name = runtime::v1::Signal_Name(s);
  if (name.starts_with(kPlus)) return StrCat("SIGRTMIN+", name.substr(kPlus.size()));
  if (name.starts_with(kMinus)) return StrCat("SIGRTMAX-", name.substr(kMinus.size()));
  return name;
}

runtime::v1::Signal ToCriSignal(const std::string& name) {
  std::string enum_name = name;
  if (name.starts_with("SIGRTMIN+")) enum_name = StrCat(kPlus, name.substr(9));
  if (name.starts_with("SIGRTMAX-")) enum_name = StrCat(kMinus, name.substr(9));
  runtime::v1::Signal out = runtime::v1::RUNTIME_DEFAULT;
  if (!runtime::v1::Signal_Parse(enum_name, &out)) return runtime::v1::RUNTIME_DEFAULT;
  return out;
}

}  // namespace berth::server
