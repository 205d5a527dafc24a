// What berthctl commands print, as crictl prints it. The functions return
// the exact text (including the trailing newlines crictl's fmt.Println adds)
// so commands only write it out and tests can compare it.
//
// Pure functions, thread-safe.
#pragma once

// First: the CRI header's Signal enum clashes with <signal.h> macros.
// clang-format off
#include "runtime/v1/api.pb.h"
// clang-format on

#include <google/protobuf/map.h>
#include <google/protobuf/message.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace berth::ctl {

// `-o json` / `-o yaml` of a whole response (crictl's outputProtobufObjAsJSON
// and outputProtobufObjAsYAML): jsonpb text plus "\n", or its YAML plus "\n"
// (so YAML ends with an empty line).
std::string ProtoAsJson(const google::protobuf::Message& msg);
StatusOr<std::string> ProtoAsYaml(const google::protobuf::Message& msg);

// crictl's outputStatusInfo: {"status": <status_json>, <info keys>...} as
// indented JSON or YAML. `format` "json" or "yaml"; "go-template" is not
// supported (Unimplemented); any other format yields crictl's
// "Don't support \"<format>\" format\n" line.
StatusOr<std::string> StatusInfoOutput(std::string_view status_json,
                                       const std::map<std::string, std::string>& info,
                                       std::string_view format);

// The body of `inspect` and `inspectp` for one object: `output` "" or
// "json"/"yaml"/"go-template" prints StatusInfoOutput of the status and info;
// "table" prints `table()`; anything else is crictl's "output option cannot
// be" error.
StatusOr<std::string> InspectionOutput(std::string_view output, std::string_view status_json,
                                       const std::map<std::string, std::string>& info,
                                       const std::function<std::string()>& table);

// A protobuf map<string,string> as an ordered std::map.
std::map<std::string, std::string> ToStdMap(
    const google::protobuf::Map<std::string, std::string>& m);

// Go's %v of a map[string]string: "map[a:1 b:2]".
std::string GoMapString(const std::map<std::string, std::string>& m);

// gogo-protobuf String() of the CRI wrapper messages, which crictl prints
// with %v / %s: "&Int64Value{Value:1000,}", "&UInt64Value{Value:42,}".
std::string Int64ValueString(const ::runtime::v1::Int64Value& v);
std::string UInt64ValueString(const ::runtime::v1::UInt64Value& v);

// --- images -----------------------------------------------------------------

// crictl's imageByRef order: first repo tag, else first repo digest, else id.
void SortImagesByRef(std::vector<::runtime::v1::Image>& images);

// crictl's normalizeRepoDigest: ("repo", "sha256:...") from the first repo
// digest; ("<none>", "<none>") without one; ("errorName", "errorRepoDigest")
// when it is not of the form name@digest.
std::pair<std::string, std::string> NormalizeRepoDigest(
    const std::vector<std::string>& repo_digests);

// crictl's normalizeRepoTagPair: one (repository, tag) per repo tag, split at
// the last ':'; (image_name, "<none>") when there are no tags.
std::vector<std::pair<std::string, std::string>> NormalizeRepoTagPairs(
    const std::vector<std::string>& repo_tags, const std::string& image_name);

struct ImageListOptions {
  bool quiet = false;     // -q: ids only
  bool verbose = false;   // -v: key/value blocks
  bool digests = false;   // --digests: DIGEST column
  bool no_trunc = false;  // --no-trunc: full ids and digests
};

// The text of `images` in table, quiet or verbose form for images already
// sorted with SortImagesByRef.
std::string ImageListText(const std::vector<::runtime::v1::Image>& images,
                          const ImageListOptions& opts);

// `inspecti -o table` of one image.
std::string ImageStatusTable(const ::runtime::v1::Image& image,
                             const std::map<std::string, std::string>& info, bool verbose);

// `imagefsinfo -o table` of one filesystem.
std::string FilesystemUsageTable(const ::runtime::v1::FilesystemUsage& fs);

}  // namespace berth::ctl
