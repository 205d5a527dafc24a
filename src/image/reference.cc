#include "image/reference.h"

#include <cstdint>

namespace berth::image {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsWordChar(char c) { return IsAlnum(c) || c == '_'; }
bool IsLowerHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f'); }

bool IsHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!IsLowerHex(c)) return false;
  }
  return true;
}

Status Invalid(std::string_view input, std::string_view what) {
  return InvalidArgumentError(StrCat("invalid image reference \"", input, "\": ", what));
}

Status ValidateTag(std::string_view input, std::string_view tag) {
  if (tag.empty()) return Invalid(input, "tag after ':' is empty");
  if (tag.size() > kMaxTagLength) {
    return Invalid(input, StrCat("tag is ", tag.size(), " characters long, at most ", kMaxTagLength,
                                 " are allowed"));
  }
  if (!IsWordChar(tag[0])) {
    return Invalid(input, StrCat("tag \"", tag, "\" must start with a letter, digit or '_'"));
  }
  for (char c : tag) {
    if (!IsWordChar(c) && c != '.' && c != '-') {
      return Invalid(input, StrCat("tag \"", tag, "\" contains '", c,
                                   "'; tags may contain only letters, digits, '_', '.' and '-'"));
    }
  }
  return OkStatus();
}

// One label of a DNS-style host: [A-Za-z0-9] or [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9].
bool IsHostLabel(std::string_view label) {
  if (label.empty() || !IsAlnum(label.front()) || !IsAlnum(label.back())) return false;
  for (char c : label) {
    if (!IsAlnum(c) && c != '-') return false;
  }
  return true;
}

Status ValidateDomain(std::string_view input, std::string_view domain) {
  std::string_view host = domain;
  std::string_view port;
  bool has_port = false;
  if (domain.starts_with('[')) {
    size_t close = domain.find(']');
    if (close == std::string_view::npos) {
      return Invalid(input, StrCat("registry host \"", domain, "\" has no closing ']'"));
    }
    std::string_view inner = domain.substr(1, close - 1);
    if (inner.empty() || inner.find(':') == std::string_view::npos) {
      return Invalid(input, StrCat("registry host \"", domain, "\" is not an IPv6 address"));
    }
    for (char c : inner) {
      if (!IsLowerHex(c) && (c < 'A' || c > 'F') && c != ':' && c != '.') {
        return Invalid(input, StrCat("registry host \"", domain, "\" is not an IPv6 address"));
      }
    }
    std::string_view rest = domain.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        return Invalid(input, StrCat("unexpected \"", rest, "\" after IPv6 registry host"));
      }
      has_port = true;
      port = rest.substr(1);
    }
  } else {
    size_t colon = domain.find(':');
    if (colon != std::string_view::npos) {
      host = domain.substr(0, colon);
      port = domain.substr(colon + 1);
      has_port = true;
    }
    if (host.empty()) return Invalid(input, StrCat("registry host in \"", domain, "\" is empty"));
    size_t start = 0;
    while (true) {
      size_t dot = host.find('.', start);
      std::string_view label =
          host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
      if (!IsHostLabel(label)) {
        return Invalid(input, StrCat("registry host \"", host,
                                     "\" is not a valid host name (labels of letters, digits "
                                     "and inner '-', separated by '.')"));
      }
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  if (has_port) {
    if (port.empty()) return Invalid(input, StrCat("registry port in \"", domain, "\" is empty"));
    uint32_t value = 0;
    for (char c : port) {
      if (!IsDigit(c)) {
        return Invalid(input, StrCat("registry port \"", port, "\" is not a number"));
      }
      value = value * 10 + static_cast<uint32_t>(c - '0');
      if (value > 65535) {
        return Invalid(input, StrCat("registry port \"", port, "\" is larger than 65535"));
      }
    }
  }
  return OkStatus();
}

// alnum+ ( ("." | "_" | "__" | "-"+) alnum+ )*
Status ValidatePathComponent(std::string_view input, std::string_view comp) {
  if (comp.empty()) {
    return Invalid(input,
                   "repository has an empty path component (leading, trailing or double '/')");
  }
  for (char c : comp) {
    if (c >= 'A' && c <= 'Z') {
      return Invalid(input, StrCat("repository name must be lowercase (component \"", comp, "\")"));
    }
  }
  size_t i = 0;
  auto bad = [&](std::string_view why) {
    return Invalid(input, StrCat("repository component \"", comp, "\" ", why,
                                 "; components are lowercase letters and digits separated by "
                                 "'.', '_', '__' or dashes"));
  };
  if (!IsLowerAlnum(comp[0])) return bad("must start with a letter or digit");
  while (i < comp.size()) {
    while (i < comp.size() && IsLowerAlnum(comp[i])) ++i;
    if (i == comp.size()) break;
    char sep = comp[i];
    if (sep == '.') {
      ++i;
    } else if (sep == '_') {
      ++i;
      if (i < comp.size() && comp[i] == '_') ++i;
    } else if (sep == '-') {
      while (i < comp.size() && comp[i] == '-') ++i;
    } else {
      return bad(StrCat("contains '", sep, "'"));
    }
    if (i == comp.size()) return bad("must end with a letter or digit");
    if (!IsLowerAlnum(comp[i]))
      return bad(StrCat("has an invalid separator before '", comp[i], "'"));
  }
  return OkStatus();
}

}  // namespace

std::string Reference::Name() const { return StrCat(domain, "/", repository); }

std::string Reference::String() const {
  std::string out = Name();
  if (!tag.empty()) out += StrCat(":", tag);
  if (digest) out += StrCat("@", digest->str());
  return out;
}

std::string Reference::TagRef() const {
  if (tag.empty()) return "";
  return StrCat(Name(), ":", tag);
}

std::string Reference::DigestRef(const Digest& d) const { return StrCat(Name(), "@", d.str()); }

StatusOr<Reference> ParseReference(std::string_view text) {
  if (text.empty()) return InvalidArgumentError("invalid image reference: it is empty");
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Invalid(text, "contains whitespace or control characters");
    }
  }
  if (text.find("://") != std::string_view::npos) {
    return Invalid(text, "must not contain a URL scheme (write host/path, not scheme://host/path)");
  }
  if (IsHex64(text)) {
    return Invalid(text, "is a 64-hex image ID, not a repository name");
  }

  Reference ref;
  std::string_view rest = text;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    std::string_view digest_text = rest.substr(at + 1);
    if (digest_text.empty()) return Invalid(text, "digest after '@' is empty");
    StatusOr<Digest> d = Digest::Parse(digest_text);
    if (!d.ok()) return Annotate(d.status(), StrCat("invalid image reference \"", text, "\""));
    ref.digest = std::move(d).value();
    rest = rest.substr(0, at);
  }

  size_t last_slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || colon > last_slash)) {
    std::string_view tag = rest.substr(colon + 1);
    RETURN_IF_ERROR(ValidateTag(text, tag));
    ref.tag = std::string(tag);
    rest = rest.substr(0, colon);
  }

  std::string_view name = rest;
  if (name.empty()) return Invalid(text, "repository name is empty");

  std::string_view path = name;
  size_t first_slash = name.find('/');
  if (first_slash != std::string_view::npos) {
    std::string_view first = name.substr(0, first_slash);
    if (first.find_first_of(".:") != std::string_view::npos || first == "localhost" ||
        first.starts_with('[')) {
      RETURN_IF_ERROR(ValidateDomain(text, first));
      ref.domain = std::string(first);
      path = name.substr(first_slash + 1);
    }
  }
  if (ref.domain.empty() || ref.domain == kLegacyDockerHubDomain) {
    ref.domain = std::string(kDockerHubDomain);
  }

  if (path.empty()) return Invalid(text, "repository path after the registry host is empty");
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string_view comp = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    RETURN_IF_ERROR(ValidatePathComponent(text, comp));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }

  if (ref.domain == kDockerHubDomain && path.find('/') == std::string_view::npos) {
    ref.repository = StrCat(kOfficialRepoPrefix, path);
  } else {
    ref.repository = std::string(path);
  }
  // The limit holds for the full name, as Docker's reference library checks it
  // after adding the default registry: a name that fits only without
  // "docker.io/" would not parse again once printed (found by the
  // image_reference fuzzer).
  if (const size_t full = ref.Name().size(); full > kMaxNameLength) {
    return Invalid(text, StrCat("name ", ref.Name(), " is ", full, " characters long, at most ",
                                kMaxNameLength, " are allowed"));
  }
  if (ref.tag.empty() && !ref.digest) ref.tag = std::string(kDefaultTag);
  return ref;
}

bool LooksLikeImageId(std::string_view text) {
  if (text.starts_with("sha256:")) text.remove_prefix(7);
  return IsHex64(text);
}

}  // namespace berth::image
