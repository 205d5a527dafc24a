#include "ctl/runtime_output.h"

#include <google/protobuf/descriptor.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>

#include "ctl/go_json.h"
#include "ctl/go_time.h"
#include "ctl/output.h"
#include "ctl/table.h"

namespace berth::ctl {

namespace cri = ::runtime::v1;

namespace {

// The kubelet's label for the pod name, which `ps` shows in its POD column.
constexpr char kPodNameLabel[] = "io.kubernetes.pod.name";

std::string Ago(int64_t now, int64_t then) {
  return HumanDuration(std::chrono::nanoseconds(now - then)) + " ago";
}

// Go's %s of a protobuf enum: its name, or the number when unknown.
template <typename Enum>
std::string EnumName(const google::protobuf::EnumDescriptor* d, Enum v) {
  const google::protobuf::EnumValueDescriptor* value = d->FindValueByNumber(static_cast<int>(v));
  return value != nullptr ? value->name() : std::to_string(static_cast<int>(v));
}

// Labels and annotations blocks: printed only when the map has entries
// (an empty map arrives as nil in Go).
std::string MapBlock(const char* title, const google::protobuf::Map<std::string, std::string>& m) {
  if (m.empty()) return "";
  std::string out = StrCat(title, ":\n");
  for (const auto& [k, v] : ToStdMap(m)) out += StrCat("\t", k, " -> ", v, "\n");
  return out;
}

// Go's json.Marshal of a value decoded into interface{}: objects with sorted
// keys, numbers as float64.
std::string GoCompactJson(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return GoJsonFloat(v.get<double>(), 64);
    case nlohmann::json::value_t::string:
      return GoJsonQuote(v.get<std::string>());
    case nlohmann::json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) {
        if (i > 0) out += ',';
        out += GoCompactJson(v[i]);
      }
      return out + "]";
    }
    case nlohmann::json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {  // std::map: byte order
        if (!first) out += ',';
        first = false;
        out += GoJsonQuote(it.key()) + ":" + GoCompactJson(it.value());
      }
      return out + "}";
    }
    default:
      return "null";
  }
}

// crictl's marshalMapInOrder over the message's JSON with some fields
// replaced by `overrides` (already JSON text).
StatusOr<std::string> StatusJsonInOrder(const google::protobuf::Message& msg,
                                        const std::map<std::string, std::string>& overrides) {
  nlohmann::json doc = nlohmann::json::parse(MarshalProtoJson(msg), nullptr, false);
  if (doc.is_discarded()) return InternalError("cannot re-read the status JSON");
  const google::protobuf::Descriptor* d = msg.GetDescriptor();
  std::string out = "{";
  for (int i = 0; i < d->field_count(); ++i) {
    const std::string& name = d->field(i)->json_name();
    if (i > 0) out += ',';
    out += GoJsonQuote(name) + ":";
    auto o = overrides.find(name);
    if (o != overrides.end()) {
      out += o->second;
    } else if (auto it = doc.find(name); it != doc.end()) {
      out += GoCompactJson(*it);
    } else {
      out += "null";
    }
  }
  out += "}";
  return IndentJson(out);
}

template <typename Item>
std::vector<Item> NewestFirst(std::vector<Item> items, const ListSelection& sel) {
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.created_at() > b.created_at(); });
  size_t n = items.size();
  if (sel.latest) n = 1;
  if (sel.last > 0) n = static_cast<size_t>(sel.last);
  items.resize(std::min(n, items.size()));
  return items;
}

}  // namespace

StatusOr<std::string> PodStateText(cri::PodSandboxState state) {
  switch (state) {
    case cri::SANDBOX_READY:
      return std::string("Ready");
    case cri::SANDBOX_NOTREADY:
      return std::string("NotReady");
    default:
      return InvalidArgumentError(StrCat("Unknown pod state ", GoQuote(std::to_string(state))));
  }
}

StatusOr<std::string> ContainerStateText(cri::ContainerState state) {
  switch (state) {
    case cri::CONTAINER_CREATED:
      return std::string("Created");
    case cri::CONTAINER_RUNNING:
      return std::string("Running");
    case cri::CONTAINER_EXITED:
      return std::string("Exited");
    case cri::CONTAINER_UNKNOWN:
      return std::string("Unknown");
    default:
      return InvalidArgumentError(
          StrCat("Unknown container state ", GoQuote(std::to_string(state))));
  }
}

bool MatchesRegex(const std::string& pattern, const std::string& target) {
  if (pattern.empty()) return true;
  try {
    return std::regex_search(target, std::regex(pattern, std::regex::ECMAScript));
  } catch (const std::regex_error&) {
    return false;
  }
}

std::vector<cri::PodSandbox> SelectPods(std::vector<cri::PodSandbox> pods,
                                        const ListSelection& sel) {
  std::vector<cri::PodSandbox> kept;
  for (cri::PodSandbox& p : pods) {
    if (MatchesRegex(sel.name_regexp, p.metadata().name()) &&
        MatchesRegex(sel.namespace_regexp, p.metadata().namespace_())) {
      kept.push_back(std::move(p));
    }
  }
  return NewestFirst(std::move(kept), sel);
}

std::vector<cri::Container> SelectContainers(std::vector<cri::Container> containers,
                                             const ListSelection& sel) {
  std::vector<cri::Container> kept;
  for (cri::Container& c : containers) {
    if (MatchesRegex(sel.name_regexp, c.metadata().name())) kept.push_back(std::move(c));
  }
  return NewestFirst(std::move(kept), sel);
}

StatusOr<std::string> PodListText(const std::vector<cri::PodSandbox>& pods,
                                  const RuntimeListOptions& opts, int64_t now) {
  TableWriter table;
  std::string text;
  if (!opts.verbose && !opts.quiet) {
    table.AddRow({"POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"});
  }
  for (const cri::PodSandbox& pod : pods) {
    if (opts.quiet) {
      text += pod.id() + "\n";
      continue;
    }
    ASSIGN_OR_RETURN(std::string state, PodStateText(pod.state()));
    std::string handler = pod.runtime_handler().empty() ? "(default)" : pod.runtime_handler();
    if (!opts.verbose) {
      table.AddRow({opts.no_trunc ? pod.id() : TruncateId(pod.id(), ""), Ago(now, pod.created_at()),
                    state, pod.metadata().name(), pod.metadata().namespace_(),
                    std::to_string(pod.metadata().attempt()), handler});
      continue;
    }
    text += "ID: " + pod.id() + "\n";
    if (pod.has_metadata()) {
      const cri::PodSandboxMetadata& md = pod.metadata();
      if (!md.name().empty()) text += "Name: " + md.name() + "\n";
      if (!md.uid().empty()) text += "UID: " + md.uid() + "\n";
      if (!md.namespace_().empty()) text += "Namespace: " + md.namespace_() + "\n";
      if (md.attempt() != 0) text += StrCat("Attempt: ", md.attempt(), "\n");
    }
    text += "Status: " + state + "\n";
    text += "Created: " + GoTimeString(pod.created_at()) + "\n";
    text += MapBlock("Labels", pod.labels());
    text += MapBlock("Annotations", pod.annotations());
    text += "Runtime: " + handler + "\n\n";
  }
  return text + table.Flush();
}

bool IsDigest(const std::string& image) {
  size_t colon = image.find(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string algo = image.substr(0, colon);
  std::string hex = image.substr(colon + 1);
  size_t want = algo == "sha256" ? 64 : algo == "sha384" ? 96 : algo == "sha512" ? 128 : 0;
  if (want == 0 || hex.size() != want) return false;
  return std::all_of(hex.begin(), hex.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

StatusOr<std::string> ContainerListText(const std::vector<cri::Container>& containers,
                                        const RuntimeListOptions& opts, int64_t now,
                                        const ImageResolver& resolve_image) {
  TableWriter table;
  std::string text;
  if (!opts.verbose && !opts.quiet) {
    table.AddRow({"CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD"});
  }
  for (const cri::Container& c : containers) {
    if (opts.quiet) {
      text += c.id() + "\n";
      continue;
    }
    std::string created = Ago(now, c.created_at());
    ASSIGN_OR_RETURN(std::string state, ContainerStateText(c.state()));
    if (!opts.verbose) {
      std::string id = c.id();
      std::string image = c.image().image();
      std::string pod_id = c.pod_sandbox_id();
      if (!opts.no_trunc) {
        id = TruncateId(id, "");
        pod_id = TruncateId(pod_id, "");
        if (IsDigest(image)) image = TruncateId(image, image.substr(0, image.find(':') + 1));
      }
      if (resolve_image) {
        StatusOr<std::string> resolved = resolve_image(image);
        if (!resolved.ok()) {
          return Annotate(resolved.status(), "failed to fetch repo image");
        }
        image = *resolved;
      }
      auto pod_name = c.labels().find(kPodNameLabel);
      table.AddRow({id, image, created, state, c.metadata().name(),
                    std::to_string(c.metadata().attempt()), pod_id,
                    pod_name != c.labels().end() ? pod_name->second : "unknown"});
      continue;
    }
    text += "ID: " + c.id() + "\n";
    text += "PodID: " + c.pod_sandbox_id() + "\n";
    if (c.has_metadata()) {
      if (!c.metadata().name().empty()) text += "Name: " + c.metadata().name() + "\n";
      text += StrCat("Attempt: ", c.metadata().attempt(), "\n");
    }
    text += "State: " + state + "\n";
    if (c.has_image()) text += "Image: " + c.image().image() + "\n";
    text += "Created: " + created + "\n";
    text += MapBlock("Labels", c.labels());
    text += MapBlock("Annotations", c.annotations());
    text += "\n";
  }
  return text + table.Flush();
}

StatusOr<std::string> PodSandboxStatusJson(const cri::PodSandboxStatus& status) {
  return StatusJsonInOrder(status,
                           {{"createdAt", GoJsonQuote(GoRfc3339Nano(status.created_at()))}});
}

StatusOr<std::string> ContainerStatusJson(const cri::ContainerStatus& status) {
  std::string started(kGoZeroTimeRfc3339);
  std::string finished(kGoZeroTimeRfc3339);
  // Anything past "created" has been started; only exited containers (or
  // unknown ones that report an end) have finished.
  if (status.state() != cri::CONTAINER_CREATED) started = GoRfc3339Nano(status.started_at());
  if (status.state() == cri::CONTAINER_EXITED ||
      (status.state() == cri::CONTAINER_UNKNOWN && status.finished_at() > 0)) {
    finished = GoRfc3339Nano(status.finished_at());
  }
  return StatusJsonInOrder(status, {{"createdAt", GoJsonQuote(GoRfc3339Nano(status.created_at()))},
                                    {"startedAt", GoJsonQuote(started)},
                                    {"finishedAt", GoJsonQuote(finished)}});
}

std::string PodSandboxStatusTable(const cri::PodSandboxStatusResponse& resp, bool verbose) {
  const cri::PodSandboxStatus& st = resp.status();
  std::string out = "ID: " + st.id() + "\n";
  if (st.has_metadata()) {
    const cri::PodSandboxMetadata& md = st.metadata();
    if (!md.name().empty()) out += "Name: " + md.name() + "\n";
    if (!md.uid().empty()) out += "UID: " + md.uid() + "\n";
    if (!md.namespace_().empty()) out += "Namespace: " + md.namespace_() + "\n";
    out += StrCat("Attempt: ", md.attempt(), "\n");
  }
  out += "Status: " + EnumName(cri::PodSandboxState_descriptor(), st.state()) + "\n";
  out += "Created: " + GoTimeString(st.created_at()) + "\n";
  if (st.has_network()) {
    out += "IP Addresses: " + st.network().ip() + "\n";
    for (const cri::PodIP& ip : st.network().additional_ips()) {
      out += "Additional IP: " + ip.ip() + "\n";
    }
  }
  out += MapBlock("Labels", st.labels());
  out += MapBlock("Annotations", st.annotations());
  if (verbose) out += "Info: " + GoMapString(ToStdMap(resp.info())) + "\n";
  return out;
}

std::string ContainerStatusTable(const cri::ContainerStatusResponse& resp, bool verbose,
                                 int64_t now) {
  const cri::ContainerStatus& st = resp.status();
  std::string out = "ID: " + st.id() + "\n";
  if (st.has_metadata()) {
    if (!st.metadata().name().empty()) out += "Name: " + st.metadata().name() + "\n";
    if (st.metadata().attempt() != 0) out += StrCat("Attempt: ", st.metadata().attempt(), "\n");
  }
  out += "State: " + EnumName(cri::ContainerState_descriptor(), st.state()) + "\n";
  out += "Created: " + Ago(now, st.created_at()) + "\n";
  if (st.state() != cri::CONTAINER_CREATED) out += "Started: " + Ago(now, st.started_at()) + "\n";
  if (st.state() == cri::CONTAINER_EXITED) {
    if (st.finished_at() > 0) out += "Finished: " + Ago(now, st.finished_at()) + "\n";
    out += StrCat("Exit Code: ", st.exit_code(), "\n");
  }
  out += MapBlock("Labels", st.labels());
  out += MapBlock("Annotations", st.annotations());
  if (verbose) out += "Info: " + GoMapString(ToStdMap(resp.info())) + "\n";
  return out;
}

}  // namespace berth::ctl
