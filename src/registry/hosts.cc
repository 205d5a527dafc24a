#include "registry/hosts.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <sstream>
#include <system_error>

#include "common/fs.h"

namespace berth::registry {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "host[:port]" without the port; handles "[::1]:5000".
std::string_view HostName(std::string_view host) {
  if (host.starts_with("[")) {
    size_t end = host.find(']');
    return end == std::string_view::npos ? host : host.substr(0, end + 1);
  }
  size_t colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

bool IsLoopbackHost(std::string_view host) {
  std::string name = Lower(HostName(host));
  return name == "localhost" || name == "[::1]" || name.starts_with("127.");
}

Status ValidateRegistryHost(std::string_view host) {
  if (host.empty() || host == "." || host == ".." || host.find('/') != std::string_view::npos ||
      host.find('\0') != std::string_view::npos) {
    return InvalidArgumentError(StrCat("invalid registry host \"", host, "\""));
  }
  return OkStatus();
}

Status TypeError(std::string_view source, std::string_view where, std::string_view key,
                 std::string_view want) {
  return InvalidArgumentError(StrCat("hosts file ", source, ": ", where, key, " must be ", want));
}

std::string AbsPath(const std::string& p, const std::filesystem::path& base) {
  std::filesystem::path path(p);
  if (path.is_absolute()) return path.string();
  return (base / path).lexically_normal().string();
}

// Accepts a string or a list of strings.
StatusOr<std::vector<std::string>> StringOrList(const toml::node& node, std::string_view source,
                                                std::string_view where, std::string_view key) {
  std::vector<std::string> out;
  if (auto s = node.value<std::string>()) {
    out.push_back(*s);
    return out;
  }
  const toml::array* arr = node.as_array();
  if (arr == nullptr) return TypeError(source, where, key, "a string or a list of strings");
  for (const auto& el : *arr) {
    auto s = el.value<std::string>();
    if (!s) return TypeError(source, where, key, "a string or a list of strings");
    out.push_back(*s);
  }
  return out;
}

// Splits "scheme://host[:port]/path" the way containerd reads a server or host key: a missing
// scheme means https, the path gets "/v2" appended unless it already ends so or the path is
// declared the API root with override_path.
Status ParseUrl(std::string_view text, bool override_path, std::string_view source, Endpoint& ep) {
  std::string url(text);
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    if (url.find("://") != std::string::npos) {
      return InvalidArgumentError(
          StrCat("hosts file ", source, ": URL \"", text, "\" must use http or https"));
    }
    url = "https://" + url;
  }
  size_t scheme_end = url.find("://") + 3;
  size_t path_start = url.find_first_of("/?#", scheme_end);
  std::string authority = url.substr(
      scheme_end, path_start == std::string::npos ? std::string::npos : path_start - scheme_end);
  if (authority.empty() || authority.find('@') != std::string::npos ||
      authority.find_first_of(" \t\r\n") != std::string::npos) {
    return InvalidArgumentError(
        StrCat("hosts file ", source, ": URL \"", text, "\" has no valid host"));
  }
  std::string path = path_start == std::string::npos ? "" : url.substr(path_start);
  if (path.find_first_of("?#") != std::string::npos) {
    return InvalidArgumentError(
        StrCat("hosts file ", source, ": URL \"", text, "\" must not have a query or fragment"));
  }
  if (!path.empty()) {
    path = std::filesystem::path(path).lexically_normal().generic_string();
    while (path.size() > 1 && path.ends_with("/")) path.pop_back();
    if (path == "/") path.clear();
  }
  if (!override_path && !path.ends_with("/v2")) path += "/v2";
  ep.url = Lower(url.substr(0, scheme_end)) + authority;
  ep.path_prefix = path;
  return OkStatus();
}

// Reads the settings shared by `[host."..."]` tables and the top level (for `server`).
Status ParseHostSettings(const toml::table& table, std::string_view url_text,
                         const std::filesystem::path& base_dir, std::string_view source,
                         std::string_view where, Endpoint& ep) {
  bool override_path = false;
  if (const toml::node* n = table.get("override_path")) {
    auto v = n->value<bool>();
    if (!v) return TypeError(source, where, "override_path", "true or false");
    override_path = *v;
  }
  RETURN_IF_ERROR(ParseUrl(url_text, override_path, source, ep));

  if (const toml::node* n = table.get("capabilities")) {
    ASSIGN_OR_RETURN(auto caps, StringOrList(*n, source, where, "capabilities"));
    ep.can_pull = ep.can_resolve = ep.can_push = false;
    for (const std::string& c : caps) {
      std::string cap = Lower(c);
      if (cap == "pull") {
        ep.can_pull = true;
      } else if (cap == "resolve") {
        ep.can_resolve = true;
      } else if (cap == "push") {
        ep.can_push = true;
      } else {
        return InvalidArgumentError(StrCat("hosts file ", source, ": ", where,
                                           "capabilities: unknown capability \"", c,
                                           "\" (want pull, resolve or push)"));
      }
    }
  }
  if (const toml::node* n = table.get("skip_verify")) {
    auto v = n->value<bool>();
    if (!v) return TypeError(source, where, "skip_verify", "true or false");
    ep.skip_verify = *v;
  }
  if (const toml::node* n = table.get("ca")) {
    ASSIGN_OR_RETURN(auto files, StringOrList(*n, source, where, "ca"));
    for (const std::string& f : files) ep.ca_files.push_back(AbsPath(f, base_dir));
  }
  if (const toml::node* n = table.get("client")) {
    // curl presents one client certificate, so only the first entry is used.
    if (auto s = n->value<std::string>()) {
      ep.client_cert = AbsPath(*s, base_dir);
    } else if (const toml::array* arr = n->as_array(); arr != nullptr && !arr->empty()) {
      const toml::node& first = *arr->get(0);
      if (auto s = first.value<std::string>()) {
        ep.client_cert = AbsPath(*s, base_dir);
      } else if (const toml::array* pair = first.as_array(); pair != nullptr && pair->size() == 2 &&
                                                             pair->get(0)->is_string() &&
                                                             pair->get(1)->is_string()) {
        ep.client_cert = AbsPath(*pair->get(0)->value<std::string>(), base_dir);
        ep.client_key = AbsPath(*pair->get(1)->value<std::string>(), base_dir);
      } else {
        return TypeError(source, where, "client",
                         "a path, or a list of paths or [cert, key] pairs");
      }
    } else {
      return TypeError(source, where, "client", "a path, or a list of paths or [cert, key] pairs");
    }
  }
  if (const toml::node* n = table.get("header")) {
    const toml::table* headers = n->as_table();
    if (headers == nullptr) return TypeError(source, where, "header", "a table");
    for (const auto& [name, value] : *headers) {
      std::string key(name.str());
      ASSIGN_OR_RETURN(auto values, StringOrList(value, source, where, StrCat("header.", key)));
      std::string joined;
      for (const std::string& v : values) {
        if (v.find_first_of("\r\n") != std::string::npos) {
          return InvalidArgumentError(StrCat("hosts file ", source, ": ", where, "header.", key,
                                             " must not contain line breaks"));
        }
        if (!joined.empty()) joined += ", ";
        joined += v;
      }
      if (key.empty() || key.find_first_of(":\r\n ") != std::string::npos) {
        return InvalidArgumentError(
            StrCat("hosts file ", source, ": ", where, "invalid header name \"", key, "\""));
      }
      ep.headers[key] = joined;
    }
  }
  return OkStatus();
}

}  // namespace

Endpoint DefaultEndpoint(std::string_view registry_host) {
  Endpoint ep;
  std::string host = Lower(registry_host);
  if (host == "docker.io" || host == "index.docker.io") {
    ep.url = "https://registry-1.docker.io";
  } else if (IsLoopbackHost(host)) {
    ep.url = "http://" + host;
  } else {
    ep.url = "https://" + host;
  }
  return ep;
}

StatusOr<std::vector<Endpoint>> ParseHostsToml(std::string_view toml_text,
                                               const std::filesystem::path& base_dir,
                                               std::string_view source_name) {
  toml::table doc;
  try {
    doc = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << e.source().begin;
    return InvalidArgumentError(
        StrCat("hosts file ", source_name, " ", where.str(), ": ", e.description()));
  }

  std::vector<Endpoint> endpoints;
  if (const toml::node* hosts_node = doc.get("host")) {
    const toml::table* hosts = hosts_node->as_table();
    if (hosts == nullptr) {
      return InvalidArgumentError(
          StrCat("hosts file ", source_name, ": host must be a table of [host.\"URL\"] tables"));
    }
    // toml++ iterates keys sorted; the file order is what administrators expect.
    std::vector<std::pair<const toml::key*, const toml::table*>> ordered;
    for (const auto& [key, node] : *hosts) {
      const toml::table* t = node.as_table();
      if (t == nullptr) {
        return InvalidArgumentError(
            StrCat("hosts file ", source_name, ": host.\"", key.str(), "\" must be a table"));
      }
      ordered.emplace_back(&key, t);
    }
    std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
      const toml::source_position& pa = a.first->source().begin;
      const toml::source_position& pb = b.first->source().begin;
      return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
    });
    for (const auto& [key, table] : ordered) {
      Endpoint ep;
      ep.is_mirror = true;
      std::string where = StrCat("host.\"", key->str(), "\".");
      RETURN_IF_ERROR(ParseHostSettings(*table, key->str(), base_dir, source_name, where, ep));
      endpoints.push_back(std::move(ep));
    }
  }
  if (const toml::node* server = doc.get("server")) {
    auto url = server->value<std::string>();
    if (!url) return TypeError(source_name, "", "server", "a URL string");
    Endpoint ep;
    RETURN_IF_ERROR(ParseHostSettings(doc, *url, base_dir, source_name, "", ep));
    endpoints.push_back(std::move(ep));
  }
  if (endpoints.empty()) {
    return InvalidArgumentError(
        StrCat("hosts file ", source_name,
               " names no endpoint: set server = \"https://<host>\" or add [host.\"URL\"] tables "
               "(Berth never falls back to an upstream the file does not name)"));
  }
  return endpoints;
}

StatusOr<std::vector<Endpoint>> ResolveEndpoints(const std::filesystem::path& hosts_dir,
                                                 std::string_view registry_host) {
  RETURN_IF_ERROR(ValidateRegistryHost(registry_host));
  if (!hosts_dir.empty()) {
    for (const std::filesystem::path& dir :
         {hosts_dir / std::string(registry_host), hosts_dir / "_default"}) {
      std::filesystem::path file = dir / "hosts.toml";
      std::error_code ec;
      bool exists = std::filesystem::exists(file, ec);
      if (ec) return ErrnoStatus(ec.value(), StrCat("stat ", file.string()));
      if (!exists) continue;
      ASSIGN_OR_RETURN(std::string text, ReadFile(file));
      return ParseHostsToml(text, dir, file.string());
    }
  }
  return std::vector<Endpoint>{DefaultEndpoint(registry_host)};
}

}  // namespace berth::registry
