#include "image/manifest.h"

#include <sys/utsname.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <exception>
#include <nlohmann/json.hpp>
#include <utility>

namespace berth::image {
namespace {

using json = nlohmann::json;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Names a blob in messages: "manifest sha256:...".
std::string Subject(std::string_view kind, const Digest& d) { return StrCat(kind, " ", d.str()); }

Status Invalid(std::string_view subject, std::string_view what) {
  return InvalidArgumentError(StrCat(subject, ": ", what));
}

// Parses without exceptions so that "not JSON" can be told apart (DATA_LOSS) from "wrong
// shape" (INVALID_ARGUMENT).
StatusOr<json> ParseJsonObject(std::string_view subject, std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return DataLossError(StrCat(subject, ": not valid JSON"));
  if (!j.is_object()) return Invalid(subject, "top-level JSON value is not an object");
  return j;
}

std::string_view TypeName(const json& j) { return j.type_name(); }

// Optional string field: absent or null -> empty.
Status GetString(std::string_view subject, const json& obj, const char* key, std::string* out,
                 bool required = false) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return Invalid(subject, StrCat("required field \"", key, "\" is missing"));
    return OkStatus();
  }
  if (!it->is_string()) {
    return Invalid(subject, StrCat("field \"", key, "\" must be a string, not ", TypeName(*it)));
  }
  *out = it->get<std::string>();
  if (required && out->empty()) {
    return Invalid(subject, StrCat("required field \"", key, "\" is empty"));
  }
  return OkStatus();
}

Status GetStringArray(std::string_view subject, const json& obj, const char* key,
                      std::vector<std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return OkStatus();
  if (!it->is_array()) {
    return Invalid(subject, StrCat("field \"", key, "\" must be an array, not ", TypeName(*it)));
  }
  out->clear();
  for (const json& e : *it) {
    if (!e.is_string()) {
      return Invalid(subject,
                     StrCat("field \"", key, "\" must hold only strings, found ", TypeName(e)));
    }
    out->push_back(e.get<std::string>());
  }
  return OkStatus();
}

Status GetStringMap(std::string_view subject, const json& obj, const char* key,
                    std::map<std::string, std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return OkStatus();
  if (!it->is_object()) {
    return Invalid(subject, StrCat("field \"", key, "\" must be an object, not ", TypeName(*it)));
  }
  out->clear();
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string()) {
      return Invalid(subject, StrCat("field \"", key, "\" value of \"", k,
                                     "\" must be a string, not ", TypeName(v)));
    }
    (*out)[k] = v.get<std::string>();
  }
  return OkStatus();
}

// Keys of an object used as a set ({"80/tcp": {}}); std::map iteration keeps them sorted.
Status GetObjectKeys(std::string_view subject, const json& obj, const char* key,
                     std::vector<std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return OkStatus();
  if (!it->is_object()) {
    return Invalid(subject, StrCat("field \"", key, "\" must be an object, not ", TypeName(*it)));
  }
  out->clear();
  for (const auto& [k, v] : it->items()) out->push_back(k);
  return OkStatus();
}

StatusOr<int> GetSchemaVersion(std::string_view subject, const json& obj) {
  auto it = obj.find("schemaVersion");
  if (it == obj.end()) return Invalid(subject, "required field \"schemaVersion\" is missing");
  if (!it->is_number_integer()) {
    return Invalid(subject,
                   StrCat("field \"schemaVersion\" must be an integer, not ", TypeName(*it)));
  }
  int64_t v = it->get<int64_t>();
  if (v == 1) return UnimplementedError(StrCat(subject, ": schema 1 manifests are not supported"));
  if (v != 2) return Invalid(subject, StrCat("unsupported schemaVersion ", v, ", want 2"));
  return 2;
}

StatusOr<Platform> ParsePlatformObject(std::string_view subject, const json& j) {
  if (!j.is_object()) {
    return Invalid(subject, StrCat("\"platform\" must be an object, not ", TypeName(j)));
  }
  Platform p;
  RETURN_IF_ERROR(GetString(subject, j, "os", &p.os, /*required=*/true));
  RETURN_IF_ERROR(GetString(subject, j, "architecture", &p.architecture, /*required=*/true));
  RETURN_IF_ERROR(GetString(subject, j, "variant", &p.variant));
  RETURN_IF_ERROR(GetString(subject, j, "os.version", &p.os_version));
  return p;
}

// `where` says which descriptor ("config", "layers[2]") for the message.
StatusOr<Descriptor> ParseDescriptor(std::string_view blob, std::string_view where, const json& j) {
  std::string subject = StrCat(blob, ": ", where);
  if (!j.is_object())
    return Invalid(subject, StrCat("descriptor must be an object, not ", TypeName(j)));
  Descriptor d;
  RETURN_IF_ERROR(GetString(subject, j, "mediaType", &d.media_type, /*required=*/true));
  std::string digest_text;
  RETURN_IF_ERROR(GetString(subject, j, "digest", &digest_text, /*required=*/true));
  StatusOr<Digest> digest = Digest::Parse(digest_text);
  if (!digest.ok()) return Annotate(digest.status(), subject);
  d.digest = std::move(digest).value();
  auto size = j.find("size");
  if (size == j.end()) return Invalid(subject, "required field \"size\" is missing");
  if (!size->is_number_integer()) {
    return Invalid(subject, StrCat("field \"size\" must be an integer, not ", TypeName(*size)));
  }
  d.size = size->get<int64_t>();
  if (d.size < 0) return Invalid(subject, StrCat("field \"size\" is negative (", d.size, ")"));
  RETURN_IF_ERROR(GetStringMap(subject, j, "annotations", &d.annotations));
  RETURN_IF_ERROR(GetStringArray(subject, j, "urls", &d.urls));
  if (auto p = j.find("platform"); p != j.end() && !p->is_null()) {
    ASSIGN_OR_RETURN(d.platform, ParsePlatformObject(subject, *p));
  }
  return d;
}

std::optional<ManifestKind> KindOfMediaType(std::string_view mt) {
  if (mt == kMediaTypeDockerManifest) return ManifestKind::kDockerManifest;
  if (mt == kMediaTypeDockerManifestList) return ManifestKind::kDockerManifestList;
  if (mt == kMediaTypeOciManifest) return ManifestKind::kOciManifest;
  if (mt == kMediaTypeOciIndex) return ManifestKind::kOciIndex;
  return std::nullopt;
}

bool IsSchema1MediaType(std::string_view mt) {
  return mt == kMediaTypeDockerSchema1Manifest || mt == kMediaTypeDockerSchema1SignedManifest;
}

Status SchemaOneError(std::string_view subject) {
  return UnimplementedError(StrCat(subject, ": schema 1 manifests are not supported"));
}

// An index must not carry manifest fields and the reverse: a body that is both could be read
// differently by different clients.
Status CheckShape(std::string_view subject, const json& j, bool want_index) {
  if (want_index && (j.contains("config") || j.contains("layers"))) {
    return Invalid(subject, "expected an index but the body has \"config\"/\"layers\"");
  }
  if (!want_index && j.contains("manifests")) {
    return Invalid(subject, "expected a manifest but the body has \"manifests\"");
  }
  return OkStatus();
}

template <typename F>
auto CatchJson(std::string_view subject, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Invalid(subject, StrCat("malformed JSON document: ", e.what()));
  }
}

// Variant as an ordered version: "v7" -> 700, "v8.2" -> 802. nullopt if not of that form.
std::optional<int> VariantVersion(std::string_view v) {
  if (!v.starts_with('v')) return std::nullopt;
  v.remove_prefix(1);
  int major = 0, minor = 0;
  size_t dot = v.find('.');
  std::string_view maj = v.substr(0, dot);
  if (maj.empty()) return std::nullopt;
  auto r = std::from_chars(maj.data(), maj.data() + maj.size(), major);
  if (r.ec != std::errc() || r.ptr != maj.data() + maj.size() || major > 99) return std::nullopt;
  if (dot != std::string_view::npos) {
    std::string_view min = v.substr(dot + 1);
    if (min.empty()) return std::nullopt;
    r = std::from_chars(min.data(), min.data() + min.size(), minor);
    if (r.ec != std::errc() || r.ptr != min.data() + min.size() || minor > 99) return std::nullopt;
  }
  return major * 100 + minor;
}

// The variant an empty variant stands for, per architecture.
std::string EffectiveVariant(const Platform& p) {
  if (!p.variant.empty()) return p.variant;
  if (p.architecture == "arm64") return "v8";
  if (p.architecture == "arm") return "v7";
  if (p.architecture == "amd64") return "v1";
  return "";
}

// 0 for the wanted variant, larger for older compatible ones, nullopt when `have` cannot run.
// Both arguments are normalised.
std::optional<int> MatchRank(const Platform& want, const Platform& have) {
  if (want.os != have.os || want.architecture != have.architecture) return std::nullopt;
  std::string wv = EffectiveVariant(want);
  std::string hv = EffectiveVariant(have);
  if (wv == hv) return 0;
  const std::string& arch = want.architecture;
  if (arch != "arm" && arch != "arm64" && arch != "amd64") return std::nullopt;
  std::optional<int> w = VariantVersion(wv);
  std::optional<int> h = VariantVersion(hv);
  if (!w || !h || *h > *w) return std::nullopt;
  if (arch == "arm" && *h < 500) return std::nullopt;
  return *w - *h;
}

bool IsAttestation(const Descriptor& d) {
  if (d.platform && d.platform->os == "unknown" && d.platform->architecture == "unknown") {
    return true;
  }
  auto it = d.annotations.find(std::string(kAnnotationDockerReferenceType));
  return it != d.annotations.end() && it->second == kAttestationManifest;
}

}  // namespace

std::string ManifestAcceptHeader() {
  return StrCat(kMediaTypeOciIndex, ", ", kMediaTypeDockerManifestList, ", ", kMediaTypeOciManifest,
                ", ", kMediaTypeDockerManifest);
}

StatusOr<LayerMediaType> ClassifyLayerMediaType(std::string_view mt) {
  using C = LayerCompression;
  if (mt == kMediaTypeDockerLayerGzip) return LayerMediaType{C::kGzip, false};
  if (mt == kMediaTypeDockerLayer) return LayerMediaType{C::kNone, false};
  if (mt == kMediaTypeDockerLayerForeignGzip) return LayerMediaType{C::kGzip, true};
  if (mt == kMediaTypeDockerLayerForeign) return LayerMediaType{C::kNone, true};
  if (mt == kMediaTypeOciLayer) return LayerMediaType{C::kNone, false};
  if (mt == kMediaTypeOciLayerGzip) return LayerMediaType{C::kGzip, false};
  if (mt == kMediaTypeOciLayerZstd) return LayerMediaType{C::kZstd, false};
  if (mt == kMediaTypeOciLayerNondistributable) return LayerMediaType{C::kNone, true};
  if (mt == kMediaTypeOciLayerNondistributableGzip) return LayerMediaType{C::kGzip, true};
  if (mt == kMediaTypeOciLayerNondistributableZstd) return LayerMediaType{C::kZstd, true};
  return InvalidArgumentError(StrCat("unsupported layer media type \"", mt, "\""));
}

bool IsConfigMediaType(std::string_view mt) {
  return mt == kMediaTypeDockerConfig || mt == kMediaTypeOciConfig;
}

std::string Platform::String() const {
  std::string out = StrCat(os, "/", architecture);
  if (!variant.empty()) out += StrCat("/", variant);
  return out;
}

Platform NormalizePlatform(Platform p) {
  p.os = Lower(p.os);
  if (p.os == "macos") p.os = "darwin";
  p.architecture = Lower(p.architecture);
  p.variant = Lower(p.variant);
  std::string& a = p.architecture;
  std::string& v = p.variant;
  if (a == "i386" || a == "i486" || a == "i586" || a == "i686") {
    a = "386";
    v.clear();
  } else if (a == "x86_64" || a == "x86-64" || a == "amd64") {
    a = "amd64";
    if (v == "v1") v.clear();
  } else if (a == "aarch64" || a == "arm64") {
    a = "arm64";
    if (v == "8") v = "v8";
  } else if (a == "armhf") {
    a = "arm";
    v = "v7";
  } else if (a == "armel") {
    a = "arm";
    v = "v6";
  } else if (a == "arm") {
    if (v.empty() || v == "7") {
      v = "v7";
    } else if (v == "5" || v == "6" || v == "8") {
      v = "v" + v;
    }
  }
  return p;
}

StatusOr<Platform> ParsePlatform(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t slash = text.find('/', start);
    parts.push_back(text.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 2 || parts.size() > 3) {
    return InvalidArgumentError(
        StrCat("invalid platform \"", text, "\": want os/architecture[/variant]"));
  }
  for (std::string_view part : parts) {
    if (part.empty()) {
      return InvalidArgumentError(StrCat("invalid platform \"", text, "\": empty component"));
    }
    for (char c : part) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-' || c == '.';
      if (!ok) {
        return InvalidArgumentError(
            StrCat("invalid platform \"", text, "\": unexpected character '", c, "'"));
      }
    }
  }
  Platform p;
  p.os = std::string(parts[0]);
  p.architecture = std::string(parts[1]);
  if (parts.size() == 3) p.variant = std::string(parts[2]);
  return NormalizePlatform(std::move(p));
}

Platform PlatformForMachine(std::string_view machine) {
  Platform p;
  p.os = "linux";
  if (machine == "x86_64" || machine == "amd64") {
    p.architecture = "amd64";
  } else if (machine == "aarch64" || machine == "arm64" || machine == "armv8l" ||
             machine == "aarch64_be") {
    // armv8l is a 32-bit personality on a 64-bit core; containerd treats it as arm64 too.
    p.architecture = "arm64";
    p.variant = "v8";
  } else if (machine.starts_with("armv7")) {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (machine.starts_with("armv6")) {
    p.architecture = "arm";
    p.variant = "v6";
  } else if (machine.starts_with("armv5")) {
    p.architecture = "arm";
    p.variant = "v5";
  } else if (machine.size() == 4 && machine[0] == 'i' && machine.substr(2) == "86") {
    p.architecture = "386";
  } else {
    // ppc64le, s390x, riscv64, mips64, loongarch64 are already OCI architecture names.
    p.architecture = std::string(machine);
  }
  return p;
}

Platform HostPlatform() {
  struct utsname u;
  std::memset(&u, 0, sizeof(u));
  if (uname(&u) != 0) return PlatformForMachine("");
  return PlatformForMachine(u.machine);
}

bool PlatformMatches(const Platform& want, const Platform& have) {
  return MatchRank(NormalizePlatform(want), NormalizePlatform(have)).has_value();
}

bool IsIndex(ManifestKind kind) {
  return kind == ManifestKind::kDockerManifestList || kind == ManifestKind::kOciIndex;
}

std::string_view MediaTypeOf(ManifestKind kind) {
  switch (kind) {
    case ManifestKind::kDockerManifest:
      return kMediaTypeDockerManifest;
    case ManifestKind::kDockerManifestList:
      return kMediaTypeDockerManifestList;
    case ManifestKind::kOciManifest:
      return kMediaTypeOciManifest;
    case ManifestKind::kOciIndex:
      return kMediaTypeOciIndex;
  }
  return "";
}

StatusOr<ManifestKind> DetectKind(std::string_view media_type_header, std::string_view body) {
  std::string subject = Subject("manifest", Sha256::Of(body));
  std::string header = Lower(Trim(media_type_header.substr(0, media_type_header.find(';'))));
  if (IsSchema1MediaType(header)) return SchemaOneError(subject);

  ASSIGN_OR_RETURN(json j, ParseJsonObject(subject, body));
  return CatchJson(subject, [&]() -> StatusOr<ManifestKind> {
    if (auto sv = j.find("schemaVersion");
        sv != j.end() && sv->is_number_integer() && sv->get<int64_t>() == 1) {
      return SchemaOneError(subject);
    }
    std::string body_type;
    RETURN_IF_ERROR(GetString(subject, j, "mediaType", &body_type));
    if (IsSchema1MediaType(body_type)) return SchemaOneError(subject);

    std::optional<ManifestKind> kind = KindOfMediaType(header);
    if (kind) {
      if (!body_type.empty() && body_type != header) {
        return Invalid(
            subject, StrCat("served as \"", header, "\" but its mediaType is \"", body_type, "\""));
      }
    } else if (!body_type.empty()) {
      kind = KindOfMediaType(body_type);
      if (!kind) {
        return Invalid(subject, StrCat("unsupported manifest mediaType \"", body_type, "\""));
      }
    } else if (j.contains("manifests")) {
      kind = ManifestKind::kOciIndex;
    } else if (j.contains("layers") || j.contains("config")) {
      kind = ManifestKind::kOciManifest;
    } else {
      return Invalid(subject,
                     StrCat("cannot tell the kind of manifest: Content-Type \"", media_type_header,
                            "\" is not a manifest type and the body has no mediaType, "
                            "\"manifests\" or \"layers\""));
    }
    RETURN_IF_ERROR(CheckShape(subject, j, IsIndex(*kind)));
    return *kind;
  });
}

StatusOr<ImageIndex> ParseIndex(std::string_view body) {
  ImageIndex index;
  index.digest = Sha256::Of(body);
  std::string subject = Subject("index", index.digest);
  ASSIGN_OR_RETURN(json j, ParseJsonObject(subject, body));
  return CatchJson(subject, [&]() -> StatusOr<ImageIndex> {
    ASSIGN_OR_RETURN(index.schema_version, GetSchemaVersion(subject, j));
    RETURN_IF_ERROR(GetString(subject, j, "mediaType", &index.media_type));
    if (!index.media_type.empty()) {
      std::optional<ManifestKind> k = KindOfMediaType(index.media_type);
      if (!k || !IsIndex(*k)) {
        return Invalid(subject,
                       StrCat("mediaType \"", index.media_type, "\" is not an index type"));
      }
    }
    RETURN_IF_ERROR(CheckShape(subject, j, /*want_index=*/true));
    auto m = j.find("manifests");
    if (m == j.end()) return Invalid(subject, "required field \"manifests\" is missing");
    if (!m->is_array()) {
      return Invalid(subject, StrCat("field \"manifests\" must be an array, not ", TypeName(*m)));
    }
    for (size_t i = 0; i < m->size(); ++i) {
      ASSIGN_OR_RETURN(Descriptor d,
                       ParseDescriptor(subject, StrCat("manifests[", i, "]"), (*m)[i]));
      index.manifests.push_back(std::move(d));
    }
    RETURN_IF_ERROR(GetStringMap(subject, j, "annotations", &index.annotations));
    return std::move(index);
  });
}

StatusOr<ImageManifest> ParseManifest(std::string_view body) {
  ImageManifest manifest;
  manifest.digest = Sha256::Of(body);
  std::string subject = Subject("manifest", manifest.digest);
  ASSIGN_OR_RETURN(json j, ParseJsonObject(subject, body));
  return CatchJson(subject, [&]() -> StatusOr<ImageManifest> {
    ASSIGN_OR_RETURN(manifest.schema_version, GetSchemaVersion(subject, j));
    RETURN_IF_ERROR(GetString(subject, j, "mediaType", &manifest.media_type));
    if (!manifest.media_type.empty()) {
      std::optional<ManifestKind> k = KindOfMediaType(manifest.media_type);
      if (!k || IsIndex(*k)) {
        return Invalid(subject,
                       StrCat("mediaType \"", manifest.media_type, "\" is not a manifest type"));
      }
    }
    RETURN_IF_ERROR(CheckShape(subject, j, /*want_index=*/false));
    auto c = j.find("config");
    if (c == j.end() || c->is_null())
      return Invalid(subject, "required field \"config\" is missing");
    ASSIGN_OR_RETURN(manifest.config, ParseDescriptor(subject, "config", *c));
    auto l = j.find("layers");
    if (l == j.end() || l->is_null())
      return Invalid(subject, "required field \"layers\" is missing");
    if (!l->is_array()) {
      return Invalid(subject, StrCat("field \"layers\" must be an array, not ", TypeName(*l)));
    }
    for (size_t i = 0; i < l->size(); ++i) {
      ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(subject, StrCat("layers[", i, "]"), (*l)[i]));
      manifest.layers.push_back(std::move(d));
    }
    RETURN_IF_ERROR(GetStringMap(subject, j, "annotations", &manifest.annotations));
    if (auto s = j.find("subject"); s != j.end() && !s->is_null()) {
      ASSIGN_OR_RETURN(manifest.subject, ParseDescriptor(subject, "subject", *s));
    }
    return std::move(manifest);
  });
}

StatusOr<ImageConfig> ParseImageConfig(std::string_view body) {
  ImageConfig cfg;
  cfg.digest = Sha256::Of(body);
  std::string subject = Subject("image config", cfg.digest);
  ASSIGN_OR_RETURN(json j, ParseJsonObject(subject, body));
  return CatchJson(subject, [&]() -> StatusOr<ImageConfig> {
    cfg.raw = std::string(body);
    RETURN_IF_ERROR(GetString(subject, j, "architecture", &cfg.architecture));
    RETURN_IF_ERROR(GetString(subject, j, "os", &cfg.os));
    RETURN_IF_ERROR(GetString(subject, j, "variant", &cfg.variant));
    RETURN_IF_ERROR(GetString(subject, j, "os.version", &cfg.os_version));
    RETURN_IF_ERROR(GetString(subject, j, "created", &cfg.created));

    if (auto c = j.find("config"); c != j.end() && !c->is_null()) {
      if (!c->is_object()) {
        return Invalid(subject, StrCat("field \"config\" must be an object, not ", TypeName(*c)));
      }
      std::string where = StrCat(subject, ": config");
      ContainerDefaults& d = cfg.config;
      RETURN_IF_ERROR(GetString(where, *c, "User", &d.user));
      RETURN_IF_ERROR(GetStringArray(where, *c, "Env", &d.env));
      RETURN_IF_ERROR(GetStringArray(where, *c, "Entrypoint", &d.entrypoint));
      RETURN_IF_ERROR(GetStringArray(where, *c, "Cmd", &d.cmd));
      RETURN_IF_ERROR(GetString(where, *c, "WorkingDir", &d.working_dir));
      RETURN_IF_ERROR(GetStringMap(where, *c, "Labels", &d.labels));
      RETURN_IF_ERROR(GetString(where, *c, "StopSignal", &d.stop_signal));
      RETURN_IF_ERROR(GetObjectKeys(where, *c, "ExposedPorts", &d.exposed_ports));
      RETURN_IF_ERROR(GetObjectKeys(where, *c, "Volumes", &d.volumes));
    }

    auto r = j.find("rootfs");
    if (r == j.end() || r->is_null())
      return Invalid(subject, "required field \"rootfs\" is missing");
    if (!r->is_object()) {
      return Invalid(subject, StrCat("field \"rootfs\" must be an object, not ", TypeName(*r)));
    }
    std::string where = StrCat(subject, ": rootfs");
    std::string type;
    RETURN_IF_ERROR(GetString(where, *r, "type", &type, /*required=*/true));
    if (type != "layers") {
      return Invalid(where, StrCat("type is \"", type, "\", want \"layers\""));
    }
    auto ids = r->find("diff_ids");
    if (ids == r->end()) return Invalid(where, "required field \"diff_ids\" is missing");
    if (!ids->is_array()) {
      return Invalid(where, StrCat("field \"diff_ids\" must be an array, not ", TypeName(*ids)));
    }
    for (size_t i = 0; i < ids->size(); ++i) {
      const json& e = (*ids)[i];
      if (!e.is_string()) {
        return Invalid(where, StrCat("diff_ids[", i, "] must be a string, not ", TypeName(e)));
      }
      StatusOr<Digest> d = Digest::Parse(e.get<std::string>());
      if (!d.ok()) return Annotate(d.status(), StrCat(where, ": diff_ids[", i, "]"));
      cfg.diff_ids.push_back(std::move(d).value());
    }

    if (auto h = j.find("history"); h != j.end() && !h->is_null()) {
      if (!h->is_array()) {
        return Invalid(subject, StrCat("field \"history\" must be an array, not ", TypeName(*h)));
      }
      cfg.history_count = h->size();
    }
    return std::move(cfg);
  });
}

Status ValidateImageManifest(const ImageManifest& manifest) {
  std::string subject = Subject("manifest", manifest.digest);
  if (!IsConfigMediaType(manifest.config.media_type)) {
    return Invalid(subject, StrCat("not a container image: config media type is \"",
                                   manifest.config.media_type, "\", want \"", kMediaTypeOciConfig,
                                   "\" or \"", kMediaTypeDockerConfig, "\""));
  }
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    StatusOr<LayerMediaType> t = ClassifyLayerMediaType(manifest.layers[i].media_type);
    if (!t.ok()) {
      return Annotate(t.status(),
                      StrCat(subject, ": layers[", i, "] ", manifest.layers[i].digest.str()));
    }
  }
  return OkStatus();
}

Status ValidateManifestAgainstConfig(const ImageManifest& manifest, const ImageConfig& config) {
  std::string subject = Subject("manifest", manifest.digest);
  if (manifest.config.digest != config.digest) {
    return Invalid(subject, StrCat("config descriptor names ", manifest.config.digest.str(),
                                   " but the config given is ", config.digest.str()));
  }
  if (manifest.layers.size() != config.diff_ids.size()) {
    return Invalid(subject,
                   StrCat("has ", manifest.layers.size(), " layers but image config ",
                          config.digest.str(), " lists ", config.diff_ids.size(), " diff_ids"));
  }
  return OkStatus();
}

std::optional<Descriptor> SelectPlatform(const ImageIndex& index, const Platform& want) {
  Platform w = NormalizePlatform(want);
  const Descriptor* best = nullptr;
  int best_rank = 0;
  const Descriptor* fallback = nullptr;
  for (const Descriptor& d : index.manifests) {
    if (IsAttestation(d)) continue;
    if (!d.platform) {
      if (fallback == nullptr) fallback = &d;
      continue;
    }
    std::optional<int> rank = MatchRank(w, NormalizePlatform(*d.platform));
    if (rank && (best == nullptr || *rank < best_rank)) {
      best = &d;
      best_rank = *rank;
    }
  }
  if (best != nullptr) return *best;
  if (fallback != nullptr) return *fallback;
  return std::nullopt;
}

Digest ChainId(const std::vector<Digest>& diff_ids) {
  if (diff_ids.empty()) return Digest::FromHex("");
  return ChainIds(diff_ids).back();
}

std::vector<Digest> ChainIds(const std::vector<Digest>& diff_ids) {
  std::vector<Digest> out;
  out.reserve(diff_ids.size());
  for (const Digest& d : diff_ids) {
    if (out.empty()) {
      out.push_back(d);
    } else {
      out.push_back(Sha256::Of(StrCat(out.back().str(), " ", d.str())));
    }
  }
  return out;
}

ImageUser ParseImageUser(std::string_view user) {
  ImageUser out;
  std::string_view name = user.substr(0, user.find(':'));
  if (name.empty()) return out;
  int64_t uid = 0;
  bool all_digits =
      std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
  auto r = std::from_chars(name.data(), name.data() + name.size(), uid);
  if (all_digits && r.ec == std::errc() && r.ptr == name.data() + name.size()) {
    out.uid = uid;
  } else {
    out.username = std::string(name);
  }
  return out;
}

}  // namespace berth::image
