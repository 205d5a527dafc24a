// What the pod and container commands print, as crictl v1.26 prints it:
// the `pods` and `ps` tables, their quiet and verbose forms, the `inspectp`
// and `inspect` documents and tables, and the selection crictl applies on
// the client side (name regular expressions, newest first, --latest/--last).
//
// Times are passed in (`now_unix_nanos`) so tests can pin the "5 minutes
// ago" texts. Pure functions, thread-safe.
#pragma once

// First: the CRI header's Signal enum clashes with <signal.h> macros.
// clang-format off
#include "runtime/v1/api.pb.h"
// clang-format on

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::ctl {

// "Ready", "NotReady"; a value crictl does not know is an error.
StatusOr<std::string> PodStateText(::runtime::v1::PodSandboxState state);
// "Created", "Running", "Exited", "Unknown"; others are errors.
StatusOr<std::string> ContainerStateText(::runtime::v1::ContainerState state);

// True when `pattern` is empty or found in `target`; an invalid pattern
// matches nothing (crictl's matchesRegex). Patterns use ECMAScript syntax,
// which agrees with Go's RE2 on the usual constructs.
bool MatchesRegex(const std::string& pattern, const std::string& target);

// crictl's client-side selection: keep items whose name (and for pods the
// namespace) match, sort newest first, then keep 1 (`latest`) or `last`
// items when set.
struct ListSelection {
  std::string name_regexp;
  std::string namespace_regexp;  // pods only
  bool latest = false;
  int last = 0;
};
std::vector<::runtime::v1::PodSandbox> SelectPods(std::vector<::runtime::v1::PodSandbox> pods,
                                                  const ListSelection& sel);
std::vector<::runtime::v1::Container> SelectContainers(
    std::vector<::runtime::v1::Container> containers, const ListSelection& sel);

struct RuntimeListOptions {
  bool quiet = false;     // -q: ids only
  bool verbose = false;   // -v: key/value blocks
  bool no_trunc = false;  // --no-trunc: full ids
};

// `pods` as table (POD ID, CREATED, STATE, NAME, NAMESPACE, ATTEMPT,
// RUNTIME), ids or verbose blocks.
StatusOr<std::string> PodListText(const std::vector<::runtime::v1::PodSandbox>& pods,
                                  const RuntimeListOptions& opts, int64_t now_unix_nanos);

// `ps` as table (CONTAINER, IMAGE, CREATED, STATE, NAME, ATTEMPT, POD ID,
// POD), ids or verbose blocks. `resolve_image`, when set, maps the IMAGE
// cell to a repo tag (ps -r); its errors end the listing.
using ImageResolver = std::function<StatusOr<std::string>(const std::string& image)>;
StatusOr<std::string> ContainerListText(const std::vector<::runtime::v1::Container>& containers,
                                        const RuntimeListOptions& opts, int64_t now_unix_nanos,
                                        const ImageResolver& resolve_image = {});

// The status objects of `inspectp` / `inspect` as crictl builds them: the
// message's JSON with top-level fields in declaration order, nested objects
// with sorted keys, numbers re-encoded the way Go's encoding/json does, and
// the times replaced by RFC 3339 texts (createdAt; for containers also
// startedAt and finishedAt, the zero time when not reached). Indented with
// two spaces; embed it with StatusInfoOutput.
StatusOr<std::string> PodSandboxStatusJson(const ::runtime::v1::PodSandboxStatus& status);
StatusOr<std::string> ContainerStatusJson(const ::runtime::v1::ContainerStatus& status);

// `inspectp -o table` and `inspect -o table`; `verbose` adds the Info line.
std::string PodSandboxStatusTable(const ::runtime::v1::PodSandboxStatusResponse& resp,
                                  bool verbose);
std::string ContainerStatusTable(const ::runtime::v1::ContainerStatusResponse& resp, bool verbose,
                                 int64_t now_unix_nanos);

// True when `image` is "<algorithm>:<hex>" with a registered algorithm and
// the right hex length (go-digest's Parse); crictl then shows it truncated.
bool IsDigest(const std::string& image);

}  // namespace berth::ctl
