#include "ctl/output.h"

#include <algorithm>

#include "ctl/go_json.h"
#include "ctl/go_yaml.h"
#include "ctl/table.h"

namespace berth::ctl {

namespace cri = ::runtime::v1;

std::string ProtoAsJson(const google::protobuf::Message& msg) {
  return MarshalProtoJson(msg) + "\n";
}

StatusOr<std::string> ProtoAsYaml(const google::protobuf::Message& msg) {
  ASSIGN_OR_RETURN(std::string yaml, JsonToYaml(MarshalProtoJson(msg)));
  return yaml + "\n";
}

StatusOr<std::string> InspectionOutput(std::string_view output, std::string_view status_json,
                                       const std::map<std::string, std::string>& info,
                                       const std::function<std::string()>& table) {
  if (output.empty()) output = "json";
  if (output == "json" || output == "yaml" || output == "go-template") {
    return StatusInfoOutput(status_json, info, output);
  }
  if (output != "table") return InvalidArgumentError(StrCat("output option cannot be ", output));
  return table();
}

StatusOr<std::string> StatusInfoOutput(std::string_view status_json,
                                       const std::map<std::string, std::string>& info,
                                       std::string_view format) {
  std::string doc = StatusInfoJson(status_json, info);
  if (format == "json") {
    ASSIGN_OR_RETURN(std::string text, IndentJson(doc));
    return text + "\n";
  }
  if (format == "yaml") {
    ASSIGN_OR_RETURN(std::string text, JsonToYaml(doc));
    return text + "\n";
  }
  if (format == "go-template") {
    return UnimplementedError("go-template output is not supported by berthctl; use -o json");
  }
  return StrCat("Don't support ", GoQuote(format), " format\n");
}

std::map<std::string, std::string> ToStdMap(
    const google::protobuf::Map<std::string, std::string>& m) {
  return std::map<std::string, std::string>(m.begin(), m.end());
}

std::string GoMapString(const std::map<std::string, std::string>& m) {
  std::string out = "map[";
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) out += ' ';
    first = false;
    out += StrCat(k, ":", v);
  }
  return out + "]";
}

std::string Int64ValueString(const cri::Int64Value& v) {
  return StrCat("&Int64Value{Value:", v.value(), ",}");
}

std::string UInt64ValueString(const cri::UInt64Value& v) {
  return StrCat("&UInt64Value{Value:", v.value(), ",}");
}

void SortImagesByRef(std::vector<cri::Image>& images) {
  std::stable_sort(images.begin(), images.end(), [](const cri::Image& a, const cri::Image& b) {
    if (a.repo_tags_size() > 0 && b.repo_tags_size() > 0) return a.repo_tags(0) < b.repo_tags(0);
    if (a.repo_digests_size() > 0 && b.repo_digests_size() > 0) {
      return a.repo_digests(0) < b.repo_digests(0);
    }
    return a.id() < b.id();
  });
}

std::pair<std::string, std::string> NormalizeRepoDigest(
    const std::vector<std::string>& repo_digests) {
  if (repo_digests.empty()) return {"<none>", "<none>"};
  const std::string& d = repo_digests[0];
  size_t at = d.find('@');
  if (at == std::string::npos || d.find('@', at + 1) != std::string::npos) {
    return {"errorName", "errorRepoDigest"};
  }
  return {d.substr(0, at), d.substr(at + 1)};
}

std::vector<std::pair<std::string, std::string>> NormalizeRepoTagPairs(
    const std::vector<std::string>& repo_tags, const std::string& image_name) {
  static const std::string kNone = "<none>";
  std::vector<std::pair<std::string, std::string>> out;
  if (repo_tags.empty()) {
    out.emplace_back(image_name, kNone);
    return out;
  }
  for (const std::string& tag : repo_tags) {
    size_t colon = tag.rfind(':');
    if (colon == std::string::npos) {
      out.emplace_back("errorRepoTag", "errorRepoTag");
      continue;
    }
    std::string name = tag.substr(0, colon);
    if (name == kNone) name = image_name;
    out.emplace_back(name, tag.substr(colon + 1));
  }
  return out;
}

std::string ImageListText(const std::vector<cri::Image>& images, const ImageListOptions& opts) {
  TableWriter table;
  std::string text;
  if (!opts.verbose && !opts.quiet) {
    if (opts.digests) {
      table.AddRow({"IMAGE", "TAG", "DIGEST", "IMAGE ID", "SIZE"});
    } else {
      table.AddRow({"IMAGE", "TAG", "IMAGE ID", "SIZE"});
    }
  }
  for (const cri::Image& image : images) {
    if (opts.quiet) {
      text += image.id() + "\n";
      continue;
    }
    std::vector<std::string> tags(image.repo_tags().begin(), image.repo_tags().end());
    std::vector<std::string> digests(image.repo_digests().begin(), image.repo_digests().end());
    if (!opts.verbose) {
      auto [name, repo_digest] = NormalizeRepoDigest(digests);
      std::string size = HumanSize(static_cast<double>(image.size()));
      std::string id = image.id();
      if (!opts.no_trunc) {
        id = TruncateId(id, "sha256:");
        repo_digest = TruncateId(repo_digest, "sha256:");
      }
      for (const auto& [repo, tag] : NormalizeRepoTagPairs(tags, name)) {
        if (opts.digests) {
          table.AddRow({repo, tag, repo_digest, id, size});
        } else {
          table.AddRow({repo, tag, id, size});
        }
      }
      continue;
    }
    text += "ID: " + image.id() + "\n";
    for (const std::string& tag : tags) text += "RepoTags: " + tag + "\n";
    for (const std::string& digest : digests) text += "RepoDigests: " + digest + "\n";
    if (image.size() != 0) text += StrCat("Size: ", image.size(), "\n");
    if (image.has_uid()) text += "Uid: " + Int64ValueString(image.uid()) + "\n";
    if (!image.username().empty()) text += "Username: " + image.username() + "\n";
    text += "\n";
  }
  // Quiet and verbose lines are printed as they come, the table at the end.
  return text + table.Flush();
}

std::string ImageStatusTable(const cri::Image& image,
                             const std::map<std::string, std::string>& info, bool verbose) {
  std::string out = "ID: " + image.id() + "\n";
  for (const std::string& tag : image.repo_tags()) out += "Tag: " + tag + "\n";
  for (const std::string& digest : image.repo_digests()) out += "Digest: " + digest + "\n";
  out += "Size: " + HumanSize(static_cast<double>(image.size())) + "\n";
  if (verbose) out += "Info: " + GoMapString(info) + "\n";
  return out;
}

std::string FilesystemUsageTable(const cri::FilesystemUsage& fs) {
  std::string out = StrCat("TimeStamp: ", fs.timestamp(), "\n");
  out += "UsedBytes: " +
         (fs.has_used_bytes() ? UInt64ValueString(fs.used_bytes()) : std::string("nil")) + "\n";
  out += "Mountpoint: " + fs.fs_id().mountpoint() + "\n";
  return out;
}

}  // namespace berth::ctl
