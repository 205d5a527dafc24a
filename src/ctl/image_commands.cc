// pull, images, inspecti, rmi, imagefsinfo: the image commands.
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <system_error>

#include "common/base64.h"
#include "common/fs.h"
#include "ctl/commands.h"
#include "ctl/go_json.h"
#include "ctl/output.h"
#include "ctl/table.h"
#include "ctl/yaml_reader.h"

namespace berth::ctl {
namespace {

// --- pull -------------------------------------------------------------------

struct PullOptions {
  std::string creds;
  std::string auth;
  std::string username;
  std::string pod_config;
  std::vector<std::string> annotations;
  std::vector<std::string> args;
};

// crictl's parseCreds: "user[:password]".
StatusOr<std::pair<std::string, std::string>> ParseCreds(const std::string& creds) {
  if (creds.empty()) return InvalidArgumentError("credentials can't be empty");
  size_t colon = creds.find(':');
  if (colon == std::string::npos) return std::pair<std::string, std::string>{creds, ""};
  if (colon == 0) return InvalidArgumentError("username can't be empty");
  return std::pair<std::string, std::string>{creds.substr(0, colon), creds.substr(colon + 1)};
}

Status RunPull(CommandEnv& env, const PullOptions& o) {
  if (o.args.empty() || o.args[0].empty())
    return InvalidArgumentError("Image name cannot be empty");
  if (o.args.size() > 1) {
    env.show_help();
    return OkStatus();
  }
  // Like crictl, an unusable endpoint is reported before any RPC context.
  RETURN_IF_ERROR(env.client.images().status());
  cri::PullImageRequest req;
  req.mutable_image()->set_image(o.args[0]);
  ASSIGN_OR_RETURN(bool has_auth,
                   FillPullAuth(env, o.creds, o.auth, o.username, *req.mutable_auth()));
  if (!has_auth) req.clear_auth();
  if (!o.pod_config.empty()) {
    StatusOr<cri::PodSandboxConfig> cfg = LoadPodSandboxConfig(o.pod_config);
    if (!cfg.ok()) return Annotate(cfg.status(), "load podSandboxConfig");
    *req.mutable_sandbox_config() = *cfg;
  }
  if (!o.annotations.empty()) {
    ASSIGN_OR_RETURN(auto ann, ParseLabels(o.annotations));
    req.mutable_image()->mutable_annotations()->insert(ann.begin(), ann.end());
  }
  StatusOr<cri::PullImageResponse> r = PullImage(env.client, req);
  if (!r.ok()) return Annotate(r.status(), "pulling image");
  env.out << "Image is up to date for " << r->image_ref() << "\n";
  return OkStatus();
}

// --- images -----------------------------------------------------------------

struct ImagesOptions {
  ImageListOptions list;
  std::string output;
  std::vector<std::string> args;
};

Status RunImages(CommandEnv& env, const ImagesOptions& o) {
  if (o.args.size() > 1) {
    env.show_help();
    return OkStatus();
  }
  RETURN_IF_ERROR(env.client.images().status());
  StatusOr<cri::ListImagesResponse> r =
      ListImages(env.client, o.args.empty() ? std::string() : o.args[0]);
  if (!r.ok()) return Annotate(r.status(), "listing images");
  std::vector<cri::Image> images(r->images().begin(), r->images().end());
  SortImagesByRef(images);
  cri::ListImagesResponse sorted;
  for (const cri::Image& image : images) *sorted.add_images() = image;
  if (o.output == "json") {
    env.out << ProtoAsJson(sorted);
    return OkStatus();
  }
  if (o.output == "yaml") {
    ASSIGN_OR_RETURN(std::string text, ProtoAsYaml(sorted));
    env.out << text;
    return OkStatus();
  }
  env.out << ImageListText(images, o.list);
  return OkStatus();
}

// --- inspecti ---------------------------------------------------------------

struct InspectOptions {
  std::string output;
  bool quiet = false;
  std::string tmpl;
  std::vector<std::string> args;
};

Status RunInspecti(CommandEnv& env, const InspectOptions& o) {
  if (o.args.empty()) {
    env.show_help();
    return OkStatus();
  }
  RETURN_IF_ERROR(env.client.images().status());
  bool verbose = !o.quiet;
  std::string output = o.output.empty() ? "json" : o.output;
  for (const std::string& id : o.args) {
    StatusOr<cri::ImageStatusResponse> r = ImageStatus(env.client, id, verbose);
    if (!r.ok()) return Annotate(r.status(), StrCat("image status for ", GoQuote(id), " request"));
    if (!r->has_image()) return NotFoundError(StrCat("no such image ", GoQuote(id), " present"));
    std::map<std::string, std::string> info = ToStdMap(r->info());
    if (output == "json" || output == "yaml" || output == "go-template") {
      StatusOr<std::string> text = StatusInfoOutput(MarshalProtoJson(r->image()), info, output);
      if (!text.ok()) return Annotate(text.status(), StrCat("output status for ", GoQuote(id)));
      env.out << *text;
      continue;
    }
    if (output != "table") return InvalidArgumentError(StrCat("output option cannot be ", output));
    env.out << ImageStatusTable(r->image(), info, verbose);
  }
  return OkStatus();
}

// --- rmi --------------------------------------------------------------------

struct RmiOptions {
  bool all = false;
  bool prune = false;
  std::vector<std::string> args;
};

Status RunRmi(CommandEnv& env, const RmiOptions& o) {
  RETURN_IF_ERROR(env.client.images().status());
  // Images to remove, in the order they were named; false marks an image
  // that is in use and must be kept.
  std::vector<std::pair<std::string, bool>> ids;
  auto mark = [&ids](const std::string& id, bool remove) {
    auto it = std::find_if(ids.begin(), ids.end(), [&id](const auto& e) { return e.first == id; });
    if (it == ids.end()) {
      ids.emplace_back(id, remove);
    } else {
      it->second = remove;
    }
  };
  for (const std::string& id : o.args) {
    env.log.Debug(StrCat("User specified image to be removed: ", id));
    mark(id, true);
  }
  if (o.all || o.prune) {
    ASSIGN_OR_RETURN(cri::ListImagesResponse list, ListImages(env.client, ""));
    for (const cri::Image& image : list.images()) {
      env.log.Debug(StrCat("Adding image to be removed: ", image.id()));
      mark(image.id(), true);
    }
  }
  if (o.prune) {
    RETURN_IF_ERROR(env.client.runtime().status());
    StatusOr<cri::ListContainersResponse> containers = ListContainers(env.client, nullptr);
    if (!containers.ok() && containers.status().code() != StatusCode::kUnimplemented) {
      return containers.status();
    }
    if (containers.ok()) {
      for (const cri::Container& c : containers->containers()) {
        const std::string& image = c.image().image();
        StatusOr<cri::ImageStatusResponse> st = ImageStatus(env.client, image, false);
        if (!st.ok()) {
          env.log.Error(StrCat("image status request for ", GoQuote(image),
                               " failed: ", st.status().message()));
          continue;
        }
        env.log.Debug(StrCat("Excluding in use container image: ", st->image().id()));
        mark(st->image().id(), false);
      }
    }
  }
  if (ids.empty()) {
    env.log.Info("No images to remove");
    return OkStatus();
  }
  bool errored = false;
  for (const auto& [id, remove] : ids) {
    if (!remove) continue;
    StatusOr<cri::ImageStatusResponse> st = ImageStatus(env.client, id, false);
    if (!st.ok()) {
      env.log.Error(
          StrCat("image status request for ", GoQuote(id), " failed: ", st.status().message()));
      errored = true;
      continue;
    }
    if (!st->has_image()) {
      env.log.Error(StrCat("no such image ", id));
      errored = true;
      continue;
    }
    Status removed = RemoveImage(env.client, id);
    if (!removed.ok()) {
      // A pruned image may vanish in between; that is not an error.
      if (!o.prune) {
        env.log.Error(StrCat("error of removing image ", GoQuote(id), ": ", removed.message()));
        errored = true;
      }
      continue;
    }
    // An image pulled by digest has no tags; name it by its digests then.
    const auto& names =
        st->image().repo_tags_size() > 0 ? st->image().repo_tags() : st->image().repo_digests();
    for (const std::string& name : names) env.out << "Deleted: " << name << "\n";
    env.out.flush();
  }
  if (errored) return UnknownError("unable to remove the image(s)");
  return OkStatus();
}

// --- imagefsinfo ------------------------------------------------------------

struct FsInfoOptions {
  std::string output;
  std::string tmpl;
};

Status RunImageFsInfo(CommandEnv& env, const FsInfoOptions& o) {
  RETURN_IF_ERROR(env.client.images().status());
  std::string output = o.output.empty() ? "json" : o.output;
  StatusOr<cri::ImageFsInfoResponse> r = ImageFsInfo(env.client);
  if (!r.ok()) return Annotate(r.status(), "image filesystem info request");
  for (const cri::FilesystemUsage& fs : r->image_filesystems()) {
    if (output == "json" || output == "yaml" || output == "go-template") {
      StatusOr<std::string> text = StatusInfoOutput(MarshalProtoJson(fs), {}, output);
      if (!text.ok()) return Annotate(text.status(), "output image filesystem info");
      env.out << *text;
      continue;
    }
    if (output != "table") return InvalidArgumentError(StrCat("output option cannot be ", output));
    env.out << FilesystemUsageTable(fs);
  }
  return OkStatus();
}

const google::protobuf::FieldDescriptor* FindConfigField(const google::protobuf::Descriptor* d,
                                                         const std::string& key) {
  if (const auto* f = d->FindFieldByName(key)) return f;
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->json_name() == key) return d->field(i);
  }
  return nullptr;
}

// crictl reads configs into Go structs whose fields are all text; where
// Berth's proto declares bytes (KeyValue.value), protobuf's JSON mapping
// wants base64. Encoding such values first keeps plain text working.
void EncodeBytesFields(nlohmann::json& j, const google::protobuf::Descriptor* d) {
  using google::protobuf::FieldDescriptor;
  if (!j.is_object()) return;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const FieldDescriptor* f = FindConfigField(d, it.key());
    if (f == nullptr) continue;
    auto convert = [f](nlohmann::json& v) {
      if (f->type() == FieldDescriptor::TYPE_BYTES && v.is_string()) {
        v = Base64Encode(v.get<std::string>());
      } else if (f->type() == FieldDescriptor::TYPE_MESSAGE && !f->is_map()) {
        EncodeBytesFields(v, f->message_type());
      }
    };
    if (f->is_repeated() && !f->is_map() && it->is_array()) {
      for (nlohmann::json& v : *it) convert(v);
    } else if (!f->is_repeated()) {
      convert(*it);
    }
  }
}

// Reads a JSON or YAML file into `msg`; snake_case and lowerCamelCase keys
// both work, unknown keys are ignored (as Go's decoder ignores them).
Status LoadConfigMessage(const std::string& path, google::protobuf::Message& msg) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return NotFoundError(StrCat("config at ", path, " not found"));
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  StatusOr<nlohmann::json> doc = ParseJsonOrYaml(text);
  if (!doc.ok()) return Annotate(doc.status(), path);
  EncodeBytesFields(*doc, msg.GetDescriptor());
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;
  auto st = google::protobuf::util::JsonStringToMessage(doc->dump(), &msg, opts);
  if (!st.ok()) {
    return InvalidArgumentError(
        StrCat(path, ": not a ", msg.GetDescriptor()->name(), ": ", st.ToString()));
  }
  return OkStatus();
}

}  // namespace

StatusOr<cri::PodSandboxConfig> LoadPodSandboxConfig(const std::string& path) {
  cri::PodSandboxConfig cfg;
  RETURN_IF_ERROR(LoadConfigMessage(path, cfg));
  return cfg;
}

StatusOr<cri::ContainerConfig> LoadContainerConfig(const std::string& path) {
  cri::ContainerConfig cfg;
  RETURN_IF_ERROR(LoadConfigMessage(path, cfg));
  return cfg;
}

StatusOr<bool> FillPullAuth(CommandEnv& env, const std::string& creds, const std::string& auth,
                            const std::string& username, cri::AuthConfig& out) {
  if (!username.empty()) {
    ASSIGN_OR_RETURN(std::string password, env.read_password("Enter Password:"));
    out.set_username(username);
    out.set_password(password);
    return true;
  }
  if (!creds.empty() && !auth.empty()) {
    return InvalidArgumentError("both `--creds` and `--auth` are specified");
  }
  if (!creds.empty()) {
    ASSIGN_OR_RETURN(auto up, ParseCreds(creds));
    out.set_username(up.first);
    out.set_password(up.second);
    return true;
  }
  if (!auth.empty()) {
    out.set_auth(auth);
    return true;
  }
  return false;
}

StatusOr<std::map<std::string, std::string>> ParseLabels(const std::vector<std::string>& items) {
  std::map<std::string, std::string> out;
  for (const std::string& item : items) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || item.find('=', eq + 1) != std::string::npos) {
      return InvalidArgumentError(StrCat("incorrectly specified label: ", item));
    }
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

void AddImageCommands(CLI::App& app, CommandSink& sink) {
  auto pull = std::make_shared<PullOptions>();
  CLI::App* pull_cmd = app.add_subcommand("pull", "Pull an image from a registry");
  pull_cmd
      ->add_option("--creds", pull->creds,
                   "Use USERNAME[:PASSWORD] for accessing the registry (env CRICTL_CREDS)")
      ->envname("CRICTL_CREDS");
  pull_cmd
      ->add_option("--auth", pull->auth,
                   "Use AUTH_STRING for accessing the registry. AUTH_STRING is a base64 "
                   "encoded 'USERNAME[:PASSWORD]' (env CRICTL_AUTH)")
      ->envname("CRICTL_AUTH");
  pull_cmd->add_option("-u,--username", pull->username,
                       "Use USERNAME for accessing the registry. The password will be requested "
                       "on the command line");
  pull_cmd->add_option("--pod-config", pull->pod_config,
                       "Use pod-config.[json|yaml] to override the pull context");
  pull_cmd
      ->add_option("-a,--annotation", pull->annotations,
                   "Annotation KEY=VALUE to be set on the pulled image (repeatable)")
      ->allow_extra_args(false);
  pull_cmd->add_option("image", pull->args, "NAME[:TAG|@DIGEST]");
  sink.Bind(pull_cmd, [pull](CommandEnv& env) { return RunPull(env, *pull); });

  auto images = std::make_shared<ImagesOptions>();
  CLI::App* images_cmd = app.add_subcommand("images", "List images");
  images_cmd->alias("image");
  images_cmd->alias("img");
  images_cmd->add_flag("-v,--verbose", images->list.verbose, "Show verbose info for images");
  images_cmd->add_flag("-q,--quiet", images->list.quiet, "Only show image IDs");
  images_cmd->add_option("-o,--output", images->output, "Output format, One of: json|yaml|table");
  images_cmd->add_flag("--digests", images->list.digests, "Show digests");
  images_cmd->add_flag("--no-trunc", images->list.no_trunc,
                       "Show output without truncating the ID");
  images_cmd->add_option("repository", images->args, "[REPOSITORY[:TAG]]");
  sink.Bind(images_cmd, [images](CommandEnv& env) { return RunImages(env, *images); });

  auto inspect = std::make_shared<InspectOptions>();
  CLI::App* inspect_cmd = app.add_subcommand("inspecti", "Return the status of one or more images");
  inspect_cmd->add_option("-o,--output", inspect->output,
                          "Output format, One of: json|yaml|go-template|table (default json)");
  inspect_cmd->add_flag("-q,--quiet", inspect->quiet, "Do not show verbose information");
  inspect_cmd->add_option("--template", inspect->tmpl,
                          "The template string is only used when output is go-template (not "
                          "supported by berthctl)");
  inspect_cmd->add_option("image", inspect->args, "IMAGE-ID [IMAGE-ID...]");
  sink.Bind(inspect_cmd, [inspect](CommandEnv& env) { return RunInspecti(env, *inspect); });

  auto rmi = std::make_shared<RmiOptions>();
  CLI::App* rmi_cmd = app.add_subcommand("rmi", "Remove one or more images");
  rmi_cmd->add_flag("-a,--all", rmi->all, "Remove all images");
  // crictl v1.26 binds -q to --prune.
  rmi_cmd->add_flag("-q,--prune", rmi->prune,
                    "Remove all unused images (not used by any container)");
  rmi_cmd->add_option("image", rmi->args, "IMAGE-ID [IMAGE-ID...]");
  sink.Bind(rmi_cmd, [rmi](CommandEnv& env) { return RunRmi(env, *rmi); });

  auto fsinfo = std::make_shared<FsInfoOptions>();
  CLI::App* fsinfo_cmd = app.add_subcommand("imagefsinfo", "Return image filesystem info");
  fsinfo_cmd->add_option("-o,--output", fsinfo->output,
                         "Output format, One of: json|yaml|go-template|table (default json)");
  fsinfo_cmd->add_option("--template", fsinfo->tmpl,
                         "The template string is only used when output is go-template (not "
                         "supported by berthctl)");
  sink.Bind(fsinfo_cmd, [fsinfo](CommandEnv& env) { return RunImageFsInfo(env, *fsinfo); });
}

}  // namespace berth::ctl
