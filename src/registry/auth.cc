#include "registry/auth.h"

#include <cctype>
#include <nlohmann/json.hpp>

#include "common/fs.h"

namespace berth::registry {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Docker's rule for config.json keys: drop the scheme, keep what precedes the first '/'.
std::string KeyToHost(std::string_view key) {
  if (key.starts_with("http://")) {
    key.remove_prefix(7);
  } else if (key.starts_with("https://")) {
    key.remove_prefix(8);
  }
  size_t slash = key.find('/');
  if (slash != std::string_view::npos) key = key.substr(0, slash);
  return Lower(key);
}

std::string CanonicalHost(std::string_view host) {
  std::string h = Lower(host);
  if (h == "index.docker.io" || h == "registry-1.docker.io") return "docker.io";
  return h;
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

}  // namespace

StatusOr<BasicCredentials> ResolveBasicCredentials(const AuthConfig& auth) {
  BasicCredentials creds{auth.username, auth.password};
  if (!creds.empty() || auth.auth.empty()) return creds;
  std::optional<std::string> decoded = Base64Decode(auth.auth);
  size_t colon = decoded ? decoded->find(':') : std::string::npos;
  if (colon == std::string::npos) {
    return InvalidArgumentError("credential field \"auth\" is not base64 of \"username:password\"");
  }
  creds.username = decoded->substr(0, colon);
  creds.password = decoded->substr(colon + 1);
  return creds;
}

StatusOr<std::optional<AuthConfig>> ParseDockerConfig(std::string_view json_text,
                                                      std::string_view registry_host,
                                                      std::string_view source_name) {
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgumentError(StrCat("docker config ", source_name, " is not a JSON object"));
  }
  auto auths = doc.find("auths");
  if (auths == doc.end() || auths->is_null()) return std::optional<AuthConfig>();
  if (!auths->is_object()) {
    return InvalidArgumentError(
        StrCat("docker config ", source_name, ": \"auths\" must be an object"));
  }
  const nlohmann::json* entry = nullptr;
  std::string matched_key;
  if (auto it = auths->find(std::string(registry_host)); it != auths->end()) {
    entry = &*it;
    matched_key = it.key();
  } else {
    std::string want = CanonicalHost(registry_host);
    for (auto it2 = auths->begin(); it2 != auths->end(); ++it2) {
      if (CanonicalHost(KeyToHost(it2.key())) == want) {
        entry = &*it2;
        matched_key = it2.key();
        break;
      }
    }
  }
  if (entry == nullptr) return std::optional<AuthConfig>();
  if (!entry->is_object()) {
    return InvalidArgumentError(
        StrCat("docker config ", source_name, ": auths.\"", matched_key, "\" must be an object"));
  }
  AuthConfig cfg;
  for (auto [field, out] :
       {std::pair{"auth", &cfg.auth}, std::pair{"username", &cfg.username},
        std::pair{"password", &cfg.password}, std::pair{"identitytoken", &cfg.identity_token},
        std::pair{"registrytoken", &cfg.registry_token}}) {
    auto it = entry->find(field);
    if (it == entry->end() || it->is_null()) continue;
    if (!it->is_string()) {
      return InvalidArgumentError(StrCat("docker config ", source_name, ": auths.\"", matched_key,
                                         "\".", field, " must be a string"));
    }
    *out = it->get<std::string>();
  }
  StatusOr<BasicCredentials> basic = ResolveBasicCredentials(cfg);
  if (!basic.ok()) {
    return Annotate(basic.status(),
                    StrCat("docker config ", source_name, ": auths.\"", matched_key, "\""));
  }
  if (cfg.username.empty() && cfg.password.empty()) {
    cfg.username = basic->username;
    cfg.password = basic->password;
  }
  return std::optional<AuthConfig>(std::move(cfg));
}

StatusOr<std::optional<AuthConfig>> LookupDockerConfig(const std::filesystem::path& config_json,
                                                       std::string_view registry_host) {
  StatusOr<std::string> text = ReadFile(config_json);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return std::optional<AuthConfig>();
    return text.status();
  }
  return ParseDockerConfig(*text, registry_host, config_json.string());
}

std::vector<AuthChallenge> ParseAuthChallenges(std::string_view header_value) {
  const std::string_view v = header_value;
  std::vector<AuthChallenge> out;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < v.size() && IsSpace(v[i])) ++i;
  };
  while (i < v.size()) {
    while (i < v.size() && (IsSpace(v[i]) || v[i] == ',')) ++i;
    if (i >= v.size()) break;
    size_t start = i;
    while (i < v.size() && !IsSpace(v[i]) && v[i] != ',' && v[i] != '=') ++i;
    std::string_view token = v.substr(start, i - start);
    if (token.empty()) {  // a stray '='
      ++i;
      continue;
    }
    skip_space();
    if (i < v.size() && v[i] == '=') {
      ++i;
      skip_space();
      std::string value;
      if (i < v.size() && v[i] == '"') {
        ++i;
        while (i < v.size() && v[i] != '"') {
          if (v[i] == '\\' && i + 1 < v.size()) ++i;
          value.push_back(v[i++]);
        }
        if (i < v.size()) ++i;  // closing quote
      } else {
        while (i < v.size() && !IsSpace(v[i]) && v[i] != ',') value.push_back(v[i++]);
      }
      if (!out.empty()) out.back().params[Lower(token)] = std::move(value);
    } else {
      out.push_back(AuthChallenge{Lower(token), {}});
    }
  }
  return out;
}

}  // namespace berth::registry
