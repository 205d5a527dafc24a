#include "image_builder.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <utility>

#include "common/fs.h"

namespace berth::testing {
namespace {

using nlohmann::json;

constexpr int kGzipLevel = 6;  // what `gzip` and Docker use by default
constexpr int kZstdLevel = 3;  // zstd's default

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

la_ssize_t AppendToString(archive*, void* client, const void* buf, size_t len) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), len);
  return static_cast<la_ssize_t>(len);
}

// Ordinary layers store names relative to the root, as image builders do.
StatusOr<std::string> NormalizeName(const std::string& raw, bool is_dir) {
  std::string name = raw;
  size_t first = name.find_first_not_of('/');
  name = first == std::string::npos ? "" : name.substr(first);
  while (!is_dir && !name.empty() && name.back() == '/') name.pop_back();
  if (name.empty()) {
    return InvalidArgumentError(StrCat("tar entry name \"", raw,
                                       "\" is empty after stripping '/'; use RawTarLayer for it"));
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, "..") == 0 && end - start == 2) {
      return InvalidArgumentError(
          StrCat("tar entry name \"", raw, "\" has a \"..\" component; use RawTarLayer for it"));
    }
    start = end + 1;
  }
  if (is_dir && name.back() != '/') name += '/';
  return name;
}

mode_t TypeBits(FileSpec::Type type) {
  switch (type) {
    case FileSpec::kFile:
    case FileSpec::kHardlink:
      return AE_IFREG;
    case FileSpec::kDir:
      return AE_IFDIR;
    case FileSpec::kSymlink:
      return AE_IFLNK;
    case FileSpec::kCharDev:
      return AE_IFCHR;
    case FileSpec::kBlockDev:
      return AE_IFBLK;
    case FileSpec::kFifo:
      return AE_IFIFO;
  }
  return AE_IFREG;
}

std::pair<std::string, std::string> SplitDirBase(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {"", std::string(path)};
  return {std::string(path.substr(0, slash + 1)), std::string(path.substr(slash + 1))};
}

json Descriptor(const BuiltBlob& blob) {
  return json{{"mediaType", blob.media_type}, {"size", blob.size()}, {"digest", blob.digest.str()}};
}

}  // namespace

FileSpec FileSpec::File(std::string path, std::string content, mode_t mode) {
  FileSpec f;
  f.path = std::move(path);
  f.content = std::move(content);
  f.mode = mode;
  return f;
}

FileSpec FileSpec::Dir(std::string path, mode_t mode) {
  FileSpec f;
  f.path = std::move(path);
  f.mode = mode;
  f.type = kDir;
  return f;
}

FileSpec FileSpec::Symlink(std::string path, std::string target) {
  FileSpec f;
  f.path = std::move(path);
  f.mode = 0777;
  f.type = kSymlink;
  f.link_target = std::move(target);
  return f;
}

FileSpec FileSpec::Hardlink(std::string path, std::string target, mode_t mode) {
  FileSpec f;
  f.path = std::move(path);
  f.mode = mode;
  f.type = kHardlink;
  f.link_target = std::move(target);
  return f;
}

FileSpec WhiteoutFile(std::string_view path) {
  auto [dir, base] = SplitDirBase(path);
  FileSpec f = FileSpec::File(StrCat(dir, ".wh.", base), "", 0644);
  return f;
}

FileSpec OpaqueDir(std::string_view dir) {
  std::string d(dir);
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return FileSpec::File(d.empty() || d == "/" ? ".wh..wh..opq" : StrCat(d, "/.wh..wh..opq"), "",
                        0644);
}

const std::vector<std::string>& BusyboxApplets() {
  static const std::vector<std::string> applets = {
      "sh",     "ash",       "ls",       "cat",     "echo",  "sleep",  "id",       "true",
      "false",  "env",       "ps",       "mkdir",   "rm",    "rmdir",  "touch",    "test",
      "[",      "grep",      "head",     "tail",    "wc",    "stat",   "hostname", "kill",
      "printf", "readlink",  "date",     "sed",     "awk",   "tr",     "cut",      "sort",
      "uname",  "whoami",    "nc",       "wget",    "ping",  "ip",     "nslookup", "dd",
      "cp",     "mv",        "ln",       "chmod",   "chown", "find",   "seq",      "timeout",
      "pwd",    "yes",       "top",      "df",      "du",    "xargs",  "tee",      "sync",
      "usleep", "nproc",     "free",     "uptime",  "mount", "umount", "mkfifo",   "mknod",
      "md5sum", "sha256sum", "basename", "dirname", "which", "groups", "nsenter",  "unshare",
      "setsid", "pidof",     "killall",  "time",    "httpd", "stty",   "tty",
  };
  return applets;
}

StatusOr<LayerSpec> BusyboxLayer(Compression compression) {
  ASSIGN_OR_RETURN(std::string busybox, ReadFile("/bin/busybox"));
  LayerSpec layer;
  layer.compression = compression;
  auto& e = layer.entries;
  e.push_back(FileSpec::Dir("bin/"));
  e.push_back(FileSpec::File("bin/busybox", std::move(busybox), 0755));
  for (const std::string& applet : BusyboxApplets()) {
    e.push_back(FileSpec::Hardlink(StrCat("bin/", applet), "bin/busybox", 0755));
  }
  e.push_back(FileSpec::Dir("etc/"));
  e.push_back(FileSpec::File("etc/passwd",
                             "root:x:0:0:root:/root:/bin/sh\n"
                             "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                             "berthuser:x:1234:1234:berthuser:/home/berthuser:/bin/sh\n"));
  e.push_back(FileSpec::File("etc/group",
                             "root:x:0:\n"
                             "nobody:x:65534:\n"
                             "berthuser:x:1234:\n"
                             "berthextra:x:5678:berthuser\n"));
  e.push_back(FileSpec::Dir("root/", 0700));
  e.push_back(FileSpec::Dir("home/"));
  FileSpec home = FileSpec::Dir("home/berthuser/");
  home.uid = kBerthUserUid;
  home.gid = kBerthUserGid;
  e.push_back(home);
  e.push_back(FileSpec::Dir("tmp/", 01777));
  return layer;
}

LayerSpec RandomDataLayer(uint64_t total_bytes, int files, uint64_t seed, Compression compression) {
  LayerSpec layer;
  layer.compression = compression;
  layer.entries.push_back(FileSpec::Dir("data/"));
  if (files <= 0) return layer;
  // mt19937_64's output sequence is fixed by the standard, so the bytes are the
  // same on every platform and library.
  std::mt19937_64 rng(seed);
  uint64_t base = total_bytes / static_cast<uint64_t>(files);
  uint64_t extra = total_bytes % static_cast<uint64_t>(files);
  for (int i = 0; i < files; ++i) {
    uint64_t size = base + (static_cast<uint64_t>(i) < extra ? 1 : 0);
    std::string content(size, '\0');
    for (uint64_t off = 0; off < size; off += 8) {
      uint64_t word = rng();
      size_t n = static_cast<size_t>(std::min<uint64_t>(8, size - off));
      std::memcpy(content.data() + off, &word, n);
    }
    layer.entries.push_back(FileSpec::File(fmt::format("data/file-{:04d}", i), std::move(content)));
  }
  return layer;
}

LayerSpec RawTarLayer(std::vector<FileSpec> entries, Compression compression) {
  LayerSpec layer;
  layer.entries = std::move(entries);
  layer.compression = compression;
  layer.preserve_names = true;
  return layer;
}

BuiltBlob MakeBlob(std::string media_type, std::string data) {
  BuiltBlob blob;
  blob.digest = Sha256::Of(data);
  blob.media_type = std::move(media_type);
  blob.data = std::move(data);
  return blob;
}

BuiltBlob CorruptCopy(const BuiltBlob& blob) {
  BuiltBlob copy = blob;
  if (!copy.data.empty()) copy.data[copy.data.size() / 2] ^= static_cast<char>(0xFF);
  return copy;
}

StatusOr<std::string> LayerMediaType(MediaTypes media, Compression compression) {
  if (media == MediaTypes::kDocker) {
    switch (compression) {
      case Compression::kNone:
        return std::string(media_types::kDockerLayerTar);
      case Compression::kGzip:
        return std::string(media_types::kDockerLayerGzip);
      case Compression::kZstd:
        return InvalidArgumentError(
            "Docker media types define no zstd layer; build zstd layers with MediaTypes::kOci");
    }
  }
  switch (compression) {
    case Compression::kNone:
      return std::string(media_types::kOciLayerTar);
    case Compression::kGzip:
      return std::string(media_types::kOciLayerGzip);
    case Compression::kZstd:
      return std::string(media_types::kOciLayerZstd);
  }
  return InvalidArgumentError("unknown layer compression");
}

StatusOr<std::string> WriteTar(const std::vector<FileSpec>& entries, bool preserve_names) {
  std::string out;
  std::unique_ptr<archive, ArchiveDeleter> a(archive_write_new());
  if (!a) return ResourceExhaustedError("archive_write_new failed");
  // pax_restricted writes plain ustar headers and adds a pax extended header only
  // when an entry needs one (long names, xattrs, large ids), as Go's archive/tar does.
  if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK ||
      archive_write_open2(a.get(), &out, nullptr, AppendToString, nullptr, nullptr) != ARCHIVE_OK) {
    return InternalError(StrCat("open in-memory tar writer: ", archive_error_string(a.get())));
  }
  for (const FileSpec& spec : entries) {
    std::string name = spec.path;
    std::string link = spec.link_target;
    if (!preserve_names) {
      ASSIGN_OR_RETURN(name, NormalizeName(spec.path, spec.type == FileSpec::kDir));
      if (spec.type == FileSpec::kHardlink) {
        auto normalized = NormalizeName(spec.link_target, false);
        if (!normalized.ok()) {
          return Annotate(normalized.status(), StrCat("hard link ", spec.path));
        }
        link = *normalized;
      }
    }
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), TypeBits(spec.type));
    archive_entry_set_perm(e.get(), spec.mode & 07777);
    archive_entry_set_uid(e.get(), spec.uid);
    archive_entry_set_gid(e.get(), spec.gid);
    archive_entry_set_mtime(e.get(), spec.mtime, 0);
    archive_entry_set_size(e.get(), 0);
    switch (spec.type) {
      case FileSpec::kFile:
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(spec.content.size()));
        break;
      case FileSpec::kSymlink:
        archive_entry_set_symlink(e.get(), link.c_str());
        break;
      case FileSpec::kHardlink:
        archive_entry_set_hardlink(e.get(), link.c_str());
        break;
      case FileSpec::kCharDev:
      case FileSpec::kBlockDev:
        archive_entry_set_rdev(e.get(), spec.rdev);
        break;
      case FileSpec::kDir:
      case FileSpec::kFifo:
        break;
    }
    for (const auto& [key, value] : spec.xattrs) {
      archive_entry_xattr_add_entry(e.get(), key.c_str(), value.data(), value.size());
    }
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) {
      return InternalError(
          StrCat("write tar header of \"", name, "\": ", archive_error_string(a.get())));
    }
    if (spec.type == FileSpec::kFile && !spec.content.empty()) {
      la_ssize_t n = archive_write_data(a.get(), spec.content.data(), spec.content.size());
      if (n != static_cast<la_ssize_t>(spec.content.size())) {
        return InternalError(
            StrCat("write tar data of \"", name, "\": ", archive_error_string(a.get())));
      }
    }
    if (archive_write_finish_entry(a.get()) != ARCHIVE_OK) {
      return InternalError(
          StrCat("finish tar entry \"", name, "\": ", archive_error_string(a.get())));
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    return InternalError(StrCat("close tar writer: ", archive_error_string(a.get())));
  }
  return out;
}

StatusOr<std::string> Compress(std::string_view data, Compression compression) {
  switch (compression) {
    case Compression::kNone:
      return std::string(data);
    case Compression::kGzip: {
      z_stream zs{};
      // windowBits 15 + 16: a gzip wrapper with no name and mtime 0, so output is
      // a function of the input only.
      if (deflateInit2(&zs, kGzipLevel, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return InternalError("deflateInit2 failed");
      }
      std::string out(deflateBound(&zs, data.size()), '\0');
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
      zs.next_out = reinterpret_cast<Bytef*>(out.data());
      int rc = Z_OK;
      // avail_in/out are 32-bit: feed large inputs in chunks.
      size_t in_left = data.size();
      size_t out_left = out.size();
      while (rc != Z_STREAM_END) {
        uInt in_chunk = static_cast<uInt>(std::min<size_t>(in_left, 1u << 30));
        uInt out_chunk = static_cast<uInt>(std::min<size_t>(out_left, 1u << 30));
        zs.avail_in = in_chunk;
        zs.avail_out = out_chunk;
        rc = deflate(&zs, in_chunk == in_left ? Z_FINISH : Z_NO_FLUSH);
        in_left -= in_chunk - zs.avail_in;
        out_left -= out_chunk - zs.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
          deflateEnd(&zs);
          return InternalError(StrCat("gzip compression failed: zlib code ", rc));
        }
        if (rc == Z_BUF_ERROR && out_left == 0) {
          deflateEnd(&zs);
          return InternalError("gzip compression overflowed deflateBound");
        }
      }
      out.resize(zs.total_out);
      deflateEnd(&zs);
      return out;
    }
    case Compression::kZstd: {
      std::string out(ZSTD_compressBound(data.size()), '\0');
      size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), kZstdLevel);
      if (ZSTD_isError(n)) {
        return InternalError(StrCat("zstd compression failed: ", ZSTD_getErrorName(n)));
      }
      out.resize(n);
      return out;
    }
  }
  return InvalidArgumentError("unknown compression");
}

StatusOr<BuiltLayer> BuildLayer(const LayerSpec& layer, MediaTypes media) {
  std::string media_type = layer.media_type;
  if (media_type.empty()) {
    ASSIGN_OR_RETURN(media_type, LayerMediaType(media, layer.compression));
  }
  BuiltLayer built;
  ASSIGN_OR_RETURN(built.tar, WriteTar(layer.entries, layer.preserve_names));
  built.diff_id = Sha256::Of(built.tar);
  ASSIGN_OR_RETURN(std::string compressed, Compress(built.tar, layer.compression));
  built.blob = MakeBlob(std::move(media_type), std::move(compressed));
  return built;
}

StatusOr<ImageSpec> BusyboxImageSpec(MediaTypes media) {
  ImageSpec spec;
  spec.media = media;
  ASSIGN_OR_RETURN(LayerSpec layer, BusyboxLayer());
  spec.layers.push_back(std::move(layer));
  spec.env = {std::string(kDefaultPathEnv)};
  spec.cmd = {"/bin/sh"};
  return spec;
}

StatusOr<BuiltImage> BuildImage(const ImageSpec& spec) {
  const bool docker = spec.media == MediaTypes::kDocker;
  BuiltImage image;
  json diff_ids = json::array();
  json history = json::array();
  json layer_descriptors = json::array();
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    auto built = BuildLayer(spec.layers[i], spec.media);
    if (!built.ok()) return Annotate(built.status(), StrCat("layer ", i));
    image.diff_ids.push_back(built->diff_id);
    image.layer_digests.push_back(built->blob.digest);
    image.uncompressed_size += built->tar.size();
    diff_ids.push_back(built->diff_id.str());
    history.push_back(
        {{"created", kFixedCreated}, {"created_by", StrCat("berth image_builder: layer ", i)}});
    layer_descriptors.push_back(Descriptor(built->blob));
    image.blobs.push_back(std::move(built->blob));
  }

  json config = json::object();
  if (!spec.user.empty()) config["User"] = spec.user;
  if (!spec.env.empty()) config["Env"] = spec.env;
  if (!spec.entrypoint.empty()) config["Entrypoint"] = spec.entrypoint;
  if (!spec.cmd.empty()) config["Cmd"] = spec.cmd;
  if (!spec.working_dir.empty()) config["WorkingDir"] = spec.working_dir;
  if (!spec.labels.empty()) config["Labels"] = spec.labels;
  if (!spec.stop_signal.empty()) config["StopSignal"] = spec.stop_signal;
  for (const std::string& v : spec.volumes) config["Volumes"][v] = json::object();
  for (const std::string& p : spec.exposed_ports) config["ExposedPorts"][p] = json::object();

  json config_doc = {{"architecture", spec.architecture},
                     {"os", spec.os},
                     {"created", kFixedCreated},
                     {"config", config},
                     {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}},
                     {"history", history}};
  if (!spec.variant.empty()) config_doc["variant"] = spec.variant;
  BuiltBlob config_blob =
      MakeBlob(std::string(docker ? media_types::kDockerConfig : media_types::kOciConfig),
               config_doc.dump());
  image.config_digest = config_blob.digest;

  std::string manifest_type(docker ? media_types::kDockerManifest : media_types::kOciManifest);
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", manifest_type},
                   {"config", Descriptor(config_blob)},
                   {"layers", layer_descriptors}};
  if (!docker && !spec.annotations.empty()) manifest["annotations"] = spec.annotations;
  image.blobs.push_back(std::move(config_blob));
  image.top = MakeBlob(std::move(manifest_type), manifest.dump());
  return image;
}

StatusOr<BuiltImage> BuildMultiPlatformImage(const std::vector<ImageSpec>& per_platform,
                                             MediaTypes media) {
  if (per_platform.empty()) {
    return InvalidArgumentError("a multi-platform image needs at least one platform spec");
  }
  const bool docker = media == MediaTypes::kDocker;
  BuiltImage result;
  std::set<Digest> seen_blobs;
  std::set<std::string> seen_platforms;
  json manifests = json::array();
  const BuiltImage* host = nullptr;
  std::vector<BuiltImage> images;
  images.reserve(per_platform.size());
  for (const ImageSpec& original : per_platform) {
    std::string platform = PlatformString(original);
    if (!seen_platforms.insert(platform).second) {
      return InvalidArgumentError(StrCat("platform ", platform, " appears twice in the index"));
    }
    ImageSpec spec = original;
    spec.media = media;
    auto built = BuildImage(spec);
    if (!built.ok()) return Annotate(built.status(), StrCat("platform ", platform));
    images.push_back(std::move(*built));
    BuiltImage& image = images.back();
    json descriptor = Descriptor(image.top);
    descriptor["platform"] = {{"architecture", spec.architecture}, {"os", spec.os}};
    if (!spec.variant.empty()) descriptor["platform"]["variant"] = spec.variant;
    manifests.push_back(std::move(descriptor));
    for (BuiltBlob& blob : image.blobs) {
      if (seen_blobs.insert(blob.digest).second) result.blobs.push_back(blob);
    }
    result.child_manifests.push_back(image.top);
    if (host == nullptr && spec.os == "linux" && spec.architecture == "amd64") host = &image;
  }
  if (host == nullptr) host = &images.front();
  result.config_digest = host->config_digest;
  result.diff_ids = host->diff_ids;
  result.layer_digests = host->layer_digests;
  result.uncompressed_size = host->uncompressed_size;

  std::string index_type(docker ? media_types::kDockerManifestList : media_types::kOciIndex);
  json index = {{"schemaVersion", 2}, {"mediaType", index_type}, {"manifests", manifests}};
  result.top = MakeBlob(std::move(index_type), index.dump());
  return result;
}

std::vector<ImageSpec> StandardPlatformSpecs(const ImageSpec& base) {
  struct Platform {
    const char* arch;
    const char* variant;
  };
  static constexpr Platform kPlatforms[] = {{"amd64", ""}, {"arm64", "v8"}, {"arm", "v7"}};
  std::vector<ImageSpec> specs;
  for (const Platform& p : kPlatforms) {
    ImageSpec spec = base;
    spec.os = "linux";
    spec.architecture = p.arch;
    spec.variant = p.variant;
    LayerSpec marker;
    marker.compression = Compression::kGzip;  // valid with both media type families
    marker.entries.push_back(FileSpec::File("platform", PlatformString(spec)));
    spec.layers.push_back(std::move(marker));
    specs.push_back(std::move(spec));
  }
  return specs;
}

std::string PlatformString(const ImageSpec& spec) {
  std::string s = StrCat(spec.os, "/", spec.architecture);
  if (!spec.variant.empty()) s += StrCat("/", spec.variant);
  return s;
}

}  // namespace berth::testing
