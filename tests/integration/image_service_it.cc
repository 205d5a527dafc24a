// Integration tests of the CRI ImageService (and the small RuntimeService surface berthd has):
// a real berthd over its gRPC Unix socket, pulling from a real registry (Debian's
// docker-registry on 127.0.0.1) filled with images built in memory by image_builder.
//
// One registry serves the whole suite; every test gets its own berthd (fresh root), so the
// on-disk checks under <root> see only what that test did.
//
// berthd_process.h comes first: the CRI header it includes must precede <signal.h>.
// clang-format off
#include "support/berthd_process.h"
// clang-format on

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <latch>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/digest.h"
#include "common/fs.h"
#include "common/status.h"
#include "support/fake_http_server.h"
#include "support/image_builder.h"
#include "support/registry_push.h"
#include "support/registry_server.h"

#ifndef BERTHD_PATH
#error "BERTHD_PATH must name the berthd binary (see tests/integration/CMakeLists.txt)"
#endif

namespace berth::testing {
namespace {

namespace cri = ::runtime::v1;
namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

#define IT_ASSERT_OK(expr)                                                         \
  do {                                                                             \
    const ::berth::Status it_status_ = (expr);                                     \
    ASSERT_TRUE(it_status_.ok()) << #expr << " failed: " << it_status_.ToString(); \
  } while (0)

// `lhs` is a declaration ("auto x"): it cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define IT_ASSERT_OK_AND_ASSIGN(lhs, expr)                                         \
  auto IT_CONCAT_(it_or_, __LINE__) = (expr);                                      \
  ASSERT_TRUE(IT_CONCAT_(it_or_, __LINE__).ok())                                   \
      << #expr << " failed: " << IT_CONCAT_(it_or_, __LINE__).status().ToString(); \
  lhs = std::move(*IT_CONCAT_(it_or_, __LINE__))
// NOLINTEND(bugprone-macro-parentheses)
#define IT_CONCAT_(a, b) IT_CONCAT_INNER_(a, b)
#define IT_CONCAT_INNER_(a, b) a##b

constexpr auto kRpcTimeout = std::chrono::seconds(60);
constexpr char kCniBinDir[] = "/usr/lib/cni";

std::string Describe(const grpc::Status& s) {
  return StrCat("gRPC code ", static_cast<int>(s.error_code()), ": ", s.error_message());
}

void SetDeadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
}

// Names in a directory (empty when it does not exist).
std::vector<std::string> DirEntries(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  return out;
}

bool Exists(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// A port on 127.0.0.1 that nothing listens on (bound, then closed).
StatusOr<int> ClosedPort() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "bind 127.0.0.1:0");
  }
  socklen_t len = sizeof(addr);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return ErrnoStatus(errno, "getsockname");
  }
  return static_cast<int>(ntohs(addr.sin_port));
}

// A directory under /tmp that must stay empty (or unchanged) while hostile layers are pulled.
class SentinelDir {
 public:
  SentinelDir() {
    std::string tmpl = "/tmp/bt-sentinel-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~SentinelDir() {
    if (!path_.empty()) (void)RemoveAll(path_);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Pushes blobs, then child manifests by digest, then the top manifest under `tag`.
Status PushImage(const PushTarget& target, const std::string& repo, const std::string& tag,
                 const BuiltImage& image) {
  for (const BuiltBlob& b : image.blobs) {
    ASSIGN_OR_RETURN(Digest d, PushBlob(target, repo, b.data));
    if (d != b.digest) {
      return InternalError(
          StrCat("pushed blob hashes to ", d.str(), ", built as ", b.digest.str()));
    }
  }
  for (const BuiltBlob& m : image.child_manifests) {
    RETURN_IF_ERROR(PushManifest(target, repo, m.digest.str(), m.media_type, m.data).status());
  }
  return PushManifest(target, repo, tag, image.top.media_type, image.top.data).status();
}

// A small image: one gzip layer with etc/tiny holding `content`.
ImageSpec TinySpec(const std::string& content, MediaTypes media = MediaTypes::kDocker) {
  ImageSpec spec;
  spec.media = media;
  LayerSpec layer;
  layer.entries = {FileSpec::Dir("etc"), FileSpec::File("etc/tiny", content)};
  spec.layers.push_back(layer);
  spec.cmd = {"/bin/true"};
  return spec;
}

// `layers` layers of `bytes_per_layer` random bytes each, uncompressed OCI layers (cheap to
// build, and big enough that a pull takes a while).
ImageSpec BigSpec(int layers, uint64_t bytes_per_layer, uint64_t seed) {
  ImageSpec spec;
  spec.media = MediaTypes::kOci;
  for (int i = 0; i < layers; ++i) {
    spec.layers.push_back(
        RandomDataLayer(bytes_per_layer, 2, seed + static_cast<uint64_t>(i), Compression::kNone));
  }
  return spec;
}

// The "info" entry of a verbose ImageStatus, parsed (discarded JSON when absent or invalid).
nlohmann::json InfoJson(const cri::ImageStatusResponse& resp) {
  auto it = resp.info().find("info");
  if (it == resp.info().end()) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(it->second, nullptr, false);
}

int CountLinesWith(const std::string& text, const std::vector<std::string>& needles) {
  int n = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    if (std::all_of(needles.begin(), needles.end(),
                    [&](const std::string& w) { return line.find(w) != std::string_view::npos; })) {
      ++n;
    }
    start = end + 1;
  }
  return n;
}

class ImageServiceIT : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    registry_ = new RegistryServer();
    Status s = registry_->Start();
    if (!s.ok()) {
      suite_error_ = StrCat("cannot start the test registry: ", s.ToString());
      return;
    }
    StatusOr<ImageSpec> spec = BusyboxImageSpec(MediaTypes::kDocker);
    if (!spec.ok()) {
      suite_error_ = StrCat("BusyboxImageSpec: ", spec.status().ToString());
      return;
    }
    StatusOr<BuiltImage> built = BuildImage(*spec);
    if (!built.ok()) {
      suite_error_ = StrCat("BuildImage(busybox): ", built.status().ToString());
      return;
    }
    busybox_ = new BuiltImage(std::move(*built));
  }

  static void TearDownTestSuite() {
    delete busybox_;
    busybox_ = nullptr;
    delete registry_;  // stops it and removes its storage
    registry_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(suite_error_.empty()) << suite_error_;
    berthd_ = std::make_unique<BerthdProcess>(BERTHD_PATH);
    IT_ASSERT_OK(berthd_->AddRegistryHost(registry_->host(), registry_->url()));
    IT_ASSERT_OK(berthd_->Start(DefaultArgs()));
  }

  void TearDown() override {
    if (berthd_ && berthd_->running()) {
      // Every test ends with a clean shutdown: SIGTERM, exit code 0.
      Status s = berthd_->Stop();
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    if (berthd_) {
      EXPECT_EQ(berthd_->SanitizerReports(), "") << "sanitizer reports of berthd";
    }
    if (HasFailure() && berthd_) {
      std::cerr << "--- berthd log (tail) ---\n" << berthd_->LogTail(12000) << "\n";
    }
    berthd_.reset();
  }

  static std::vector<std::string> DefaultArgs() { return {"--cni-bin-dir", kCniBinDir}; }

  static PushTarget Target() { return PushTarget{registry_->url(), "", "", "", ""}; }
  static std::string Ref(const std::string& repo, const std::string& tag) {
    return StrCat(registry_->host(), "/", repo, ":", tag);
  }
  static std::string DigestRef(const std::string& repo, const Digest& d) {
    return StrCat(registry_->host(), "/", repo, "@", d.str());
  }

  // CRI calls -------------------------------------------------------------------------------

  grpc::Status Pull(const std::string& image, std::string* image_ref = nullptr,
                    const cri::AuthConfig* auth = nullptr) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::PullImageRequest req;
    req.mutable_image()->set_image(image);
    if (auth != nullptr) *req.mutable_auth() = *auth;
    cri::PullImageResponse resp;
    grpc::Status s = berthd_->images().PullImage(&ctx, req, &resp);
    if (image_ref != nullptr) *image_ref = resp.image_ref();
    return s;
  }

  std::vector<cri::Image> List() {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ListImagesRequest req;
    cri::ListImagesResponse resp;
    grpc::Status s = berthd_->images().ListImages(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << "ListImages: " << Describe(s);
    return {resp.images().begin(), resp.images().end()};
  }

  grpc::Status ImageStatus(const std::string& image, cri::ImageStatusResponse* resp,
                           bool verbose = false) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ImageStatusRequest req;
    req.mutable_image()->set_image(image);
    req.set_verbose(verbose);
    return berthd_->images().ImageStatus(&ctx, req, resp);
  }

  // The image ImageStatus returns for `image`; nullopt when absent (or on error, reported).
  std::optional<cri::Image> StatusOf(const std::string& image) {
    cri::ImageStatusResponse resp;
    grpc::Status s = ImageStatus(image, &resp);
    EXPECT_TRUE(s.ok()) << "ImageStatus(" << image << "): " << Describe(s);
    if (!s.ok() || !resp.has_image()) return std::nullopt;
    return resp.image();
  }

  grpc::Status Remove(const std::string& image) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::RemoveImageRequest req;
    req.mutable_image()->set_image(image);
    cri::RemoveImageResponse resp;
    return berthd_->images().RemoveImage(&ctx, req, &resp);
  }

  grpc::Status FsInfo(cri::ImageFsInfoResponse* resp) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ImageFsInfoRequest req;
    return berthd_->images().ImageFsInfo(&ctx, req, resp);
  }

  grpc::Status Version(cri::VersionResponse* resp) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::VersionRequest req;
    return berthd_->runtime().Version(&ctx, req, resp);
  }

  grpc::Status RuntimeStatus(cri::StatusResponse* resp) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::StatusRequest req;
    return berthd_->runtime().Status(&ctx, req, resp);
  }

  // On-disk layout under the berthd root -----------------------------------------------------

  fs::path LayerDir(const Digest& diff_id) const {
    return berthd_->root() / "snapshots" / "layers" / diff_id.hex();
  }
  fs::path BlobPath(const Digest& d) const {
    return berthd_->root() / "content" / "blobs" / "sha256" / d.hex();
  }
  fs::path IngestDir() const { return berthd_->root() / "content" / "ingest"; }
  fs::path SnapshotTmpDir() const { return berthd_->root() / "snapshots" / "tmp"; }

  // Nothing of a pull in flight may survive its end.
  void ExpectNoPullLeftovers(const std::string& when) {
    EXPECT_THAT(DirEntries(IngestDir()), IsEmpty()) << "content/ingest not empty " << when;
    EXPECT_THAT(DirEntries(SnapshotTmpDir()), IsEmpty()) << "snapshots/tmp not empty " << when;
  }

  void ExpectServing(const std::string& when) {
    cri::VersionResponse v;
    grpc::Status s = Version(&v);
    EXPECT_TRUE(s.ok()) << "berthd stopped answering Version " << when << ": " << Describe(s);
    EXPECT_TRUE(berthd_->running()) << "berthd is gone " << when;
  }

  void PullHostPlatform(MediaTypes media);

  void PushOrFail(const std::string& repo, const std::string& tag, const BuiltImage& image) {
    Status s = PushImage(Target(), repo, tag, image);
    ASSERT_TRUE(s.ok()) << "push " << repo << ":" << tag << ": " << s.ToString();
  }

  static inline RegistryServer* registry_ = nullptr;
  static inline BuiltImage* busybox_ = nullptr;
  static inline std::string suite_error_;
  std::unique_ptr<BerthdProcess> berthd_;
};

// ---------------------------------------------------------------------------------------------
// RuntimeService basics

TEST_F(ImageServiceIT, VersionStatusAndRuntimeConfig) {
  cri::VersionResponse v;
  grpc::Status s = Version(&v);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_FALSE(v.version().empty()) << "version";
  EXPECT_FALSE(v.runtime_name().empty()) << "runtime_name";
  EXPECT_FALSE(v.runtime_version().empty()) << "runtime_version";
  EXPECT_EQ(v.runtime_api_version(), "v1");

  auto conditions = [&]() {
    cri::StatusResponse st;
    grpc::Status g = RuntimeStatus(&st);
    EXPECT_TRUE(g.ok()) << "Status: " << Describe(g);
    std::map<std::string, cri::RuntimeCondition> out;
    for (const auto& c : st.status().conditions()) out[c.type()] = c;
    return out;
  };

  // No CNI config yet: the network is not ready.
  auto before = conditions();
  ASSERT_TRUE(before.contains("RuntimeReady")) << "Status lacks the RuntimeReady condition";
  ASSERT_TRUE(before.contains("NetworkReady")) << "Status lacks the NetworkReady condition";
  if (!before["RuntimeReady"].status()) {
    EXPECT_FALSE(before["RuntimeReady"].reason().empty()) << "RuntimeReady=false needs a reason";
  }
  EXPECT_FALSE(before["NetworkReady"].status()) << "NetworkReady with an empty CNI conf dir";
  EXPECT_EQ(before["NetworkReady"].reason(), "NetworkPluginNotReady");
  EXPECT_FALSE(before["NetworkReady"].message().empty());

  // A bridge network whose plugins exist in /usr/lib/cni makes it ready, without a restart.
  const std::string conflist = R"({
    "cniVersion": "1.0.0",
    "name": "berth-it",
    "plugins": [
      {"type": "bridge", "bridge": "btit0", "isGateway": true, "ipMasq": false,
       "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.233.0.0/24"}]]}},
      {"type": "portmap", "capabilities": {"portMappings": true}}
    ]
  })";
  IT_ASSERT_OK(WriteFileAtomic(berthd_->cni_dir() / "10-berth-it.conflist", conflist));
  auto after = conditions();
  ASSERT_TRUE(after.contains("NetworkReady"));
  EXPECT_TRUE(after["NetworkReady"].status())
      << "NetworkReady still false after writing a bridge conflist: reason="
      << after["NetworkReady"].reason() << " message=" << after["NetworkReady"].message();

  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::RuntimeConfigRequest req;
    cri::RuntimeConfigResponse resp;
    grpc::Status g = berthd_->runtime().RuntimeConfig(&ctx, req, &resp);
    ASSERT_TRUE(g.ok()) << "RuntimeConfig: " << Describe(g);
    EXPECT_EQ(resp.linux().cgroup_driver(), cri::CGROUPFS);
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    // CheckpointContainer of a container that does not exist (checkpoint_it tests the rest).
    cri::CheckpointContainerRequest req;
    req.set_container_id("none");
    req.set_location("/tmp/none.tar");
    cri::CheckpointContainerResponse resp;
    grpc::Status g = berthd_->runtime().CheckpointContainer(&ctx, req, &resp);
    EXPECT_EQ(g.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(g);
  }
}

// ---------------------------------------------------------------------------------------------
// Pulls of well-formed images

TEST_F(ImageServiceIT, PullDockerImageByTagAndLookItUpEveryWay) {
  const std::string repo = "it/busybox";
  ASSERT_NO_FATAL_FAILURE(PushOrFail(repo, "1.0", *busybox_));
  const BuiltImage& img = *busybox_;
  const std::string id = img.config_digest.str();

  std::string image_ref;
  grpc::Status s = Pull(Ref(repo, "1.0"), &image_ref);
  ASSERT_TRUE(s.ok()) << "PullImage: " << Describe(s);
  EXPECT_EQ(image_ref, id) << "image_ref must be the config digest";
  ExpectNoPullLeftovers("after the pull");

  std::vector<cri::Image> images = List();
  ASSERT_EQ(images.size(), 1u);
  const cri::Image& listed = images[0];
  EXPECT_EQ(listed.id(), id);
  EXPECT_THAT(listed.repo_tags(), ElementsAre(Ref(repo, "1.0")));
  EXPECT_THAT(listed.repo_digests(), ElementsAre(DigestRef(repo, img.top.digest)));
  uint64_t content_size = 0;
  for (const BuiltBlob& b : img.blobs) content_size += b.size();  // config + layers
  EXPECT_GT(listed.size(), 0u);
  EXPECT_EQ(listed.size(), content_size) << "size = config + compressed layers";
  EXPECT_EQ(listed.spec().image(), id);
  EXPECT_FALSE(listed.has_uid()) << "busybox config has no User";

  const std::string hex = img.config_digest.hex();
  for (const std::string& name : {Ref(repo, "1.0"), id, hex, DigestRef(repo, img.top.digest),
                                  hex.substr(0, 12), StrCat("sha256:", hex.substr(0, 16))}) {
    std::optional<cri::Image> found = StatusOf(name);
    ASSERT_TRUE(found.has_value()) << "ImageStatus(" << name << ") found nothing";
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*found, listed))
        << "ImageStatus(" << name << ") = " << found->DebugString() << " but ListImages has "
        << listed.DebugString();
  }

  // A pull by digest finds the same image and adds no tag.
  std::string by_digest_ref;
  s = Pull(DigestRef(repo, img.top.digest), &by_digest_ref);
  ASSERT_TRUE(s.ok()) << "pull by digest: " << Describe(s);
  EXPECT_EQ(by_digest_ref, id);
  images = List();
  ASSERT_EQ(images.size(), 1u);
  EXPECT_THAT(images[0].repo_tags(), ElementsAre(Ref(repo, "1.0")));
  EXPECT_THAT(images[0].repo_digests(), ElementsAre(DigestRef(repo, img.top.digest)));

  // Verbose status carries the image config.
  cri::ImageStatusResponse verbose;
  s = ImageStatus(Ref(repo, "1.0"), &verbose, /*verbose=*/true);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(verbose.info().contains("info")) << "verbose ImageStatus has no \"info\" key";
  nlohmann::json info = nlohmann::json::parse(verbose.info().at("info"), nullptr, false);
  ASSERT_FALSE(info.is_discarded()) << "info is not JSON: " << verbose.info().at("info");
  ASSERT_TRUE(info.contains("imageSpec")) << info.dump();
  const nlohmann::json& spec = info["imageSpec"];
  EXPECT_EQ(spec.value("architecture", ""), "amd64") << spec.dump();
  EXPECT_EQ(spec["config"]["Cmd"], nlohmann::json::array({"/bin/sh"})) << spec.dump();
  ASSERT_EQ(spec["rootfs"]["diff_ids"].size(), img.diff_ids.size()) << spec.dump();
  EXPECT_EQ(spec["rootfs"]["diff_ids"][0], img.diff_ids[0].str());

  // Absent images: OK with no image.
  for (const std::string& absent : {Ref(repo, "2.0"), Ref("it/never-pushed", "x"),
                                    std::string("sha256:") + std::string(64, 'f')}) {
    cri::ImageStatusResponse resp;
    s = ImageStatus(absent, &resp);
    EXPECT_TRUE(s.ok()) << "ImageStatus(" << absent << "): " << Describe(s);
    EXPECT_FALSE(resp.has_image())
        << "ImageStatus(" << absent << ") returned " << resp.image().DebugString();
  }

  // On disk: every blob, and every layer unpacked.
  EXPECT_TRUE(Exists(BlobPath(img.top.digest))) << "manifest blob missing";
  EXPECT_TRUE(Exists(BlobPath(img.config_digest))) << "config blob missing";
  for (const Digest& l : img.layer_digests) EXPECT_TRUE(Exists(BlobPath(l))) << l.str();
  for (const Digest& d : img.diff_ids) {
    EXPECT_TRUE(fs::is_directory(LayerDir(d))) << "layer " << d.str() << " not unpacked";
  }
  struct stat st;
  ASSERT_EQ(::lstat((LayerDir(img.diff_ids[0]) / "bin" / "busybox").c_str(), &st), 0)
      << "bin/busybox missing from the unpacked layer";
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_GT(st.st_nlink, 1u) << "applets are hard links to bin/busybox";
  EXPECT_EQ(CountLinesWith(berthd_->Log(), {"event=image_pulled", id}), 2)
      << "one pull event each for the pull by tag and by digest";
}

// Short names mean Docker Hub; a hosts.toml for docker.io sends them to the test registry
// (and berthd must never fall back to the real one).
TEST_F(ImageServiceIT, ShortNamesNormaliseToDockerHubRoutedLocally) {
  IT_ASSERT_OK(berthd_->AddRegistryHost("docker.io", registry_->url()));
  IT_ASSERT_OK_AND_ASSIGN(BuiltImage img, BuildImage(TinySpec("docker hub stand-in")));
  ASSERT_NO_FATAL_FAILURE(PushOrFail("library/hubimage", "latest", img));

  std::string image_ref;
  grpc::Status s = Pull("hubimage", &image_ref);
  ASSERT_TRUE(s.ok()) << "pull of a short name routed to the test registry: " << Describe(s);
  EXPECT_EQ(image_ref, img.config_digest.str());
  std::vector<cri::Image> images = List();
  ASSERT_EQ(images.size(), 1u);
  EXPECT_THAT(images[0].repo_tags(), ElementsAre("docker.io/library/hubimage:latest"));
  EXPECT_THAT(images[0].repo_digests(),
              ElementsAre("docker.io/library/hubimage@" + img.top.digest.str()));
  for (const char* name :
       {"hubimage", "hubimage:latest", "library/hubimage", "docker.io/library/hubimage:latest",
        "index.docker.io/library/hubimage"}) {
    std::optional<cri::Image> found = StatusOf(name);
    ASSERT_TRUE(found.has_value()) << "ImageStatus(" << name << ") found nothing";
    EXPECT_EQ(found->id(), image_ref) << name;
  }
  s = Remove("hubimage");
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_THAT(List(), IsEmpty());
}

TEST_F(ImageServiceIT, PullOciImageWithZstdAndUncompressedLayers) {
  IT_ASSERT_OK_AND_ASSIGN(ImageSpec spec, BusyboxImageSpec(MediaTypes::kOci));
  spec.layers[0].compression = Compression::kZstd;
  LayerSpec plain;
  plain.compression = Compression::kNone;
  plain.entries = {FileSpec::Dir("srv"), FileSpec::File("srv/plain.txt", "uncompressed layer\n")};
  spec.layers.push_back(plain);
  LayerSpec gz;
  gz.entries = {FileSpec::Dir("srv"), FileSpec::File("srv/gz.txt", "gzip layer\n", 0600)};
  spec.layers.push_back(gz);
  IT_ASSERT_OK_AND_ASSIGN(BuiltImage img, BuildImage(spec));
  ASSERT_NO_FATAL_FAILURE(PushOrFail("it/oci", "v1", img));

  std::string image_ref;
  grpc::Status s = Pull(Ref("it/oci", "v1"), &image_ref);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(image_ref, img.config_digest.str());
  ExpectNoPullLeftovers("after the pull");

  ASSERT_EQ(img.diff_ids.size(), 3u);
  EXPECT_TRUE(Exists(LayerDir(img.diff_ids[0]) / "bin" / "busybox")) << "zstd layer";
  StatusOr<std::string> plain_text = ReadFile(LayerDir(img.diff_ids[1]) / "srv" / "plain.txt");
  ASSERT_TRUE(plain_text.ok()) << "uncompressed layer: " << plain_text.status().ToString();
  EXPECT_EQ(*plain_text, "uncompressed layer\n");
  struct stat st;
  ASSERT_EQ(::lstat((LayerDir(img.diff_ids[2]) / "srv" / "gz.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  for (const Digest& l : img.layer_digests) EXPECT_TRUE(Exists(BlobPath(l))) << l.str();

  cri::ImageStatusResponse verbose;
  s = ImageStatus(image_ref, &verbose, true);
  ASSERT_TRUE(s.ok()) << Describe(s);
  nlohmann::json info = InfoJson(verbose);
  ASSERT_FALSE(info.is_discarded());
  EXPECT_EQ(info.value("mediaType", ""), media_types::kOciManifest) << info.dump();
}

// A Docker manifest list and an OCI index: the linux/amd64 image is the one pulled.
TEST_F(ImageServiceIT, PullsTheHostPlatformFromAnIndex) {
  for (MediaTypes media : {MediaTypes::kDocker, MediaTypes::kOci}) {
    SCOPED_TRACE(media == MediaTypes::kOci ? "OCI index" : "Docker manifest list");
    ASSERT_NO_FATAL_FAILURE(PullHostPlatform(media));
  }
}

void ImageServiceIT::PullHostPlatform(MediaTypes media) {
  const std::string repo = media == MediaTypes::kOci ? "it/multi-oci" : "it/multi-docker";
  // Distinct content per index kind: the same config under both would be one image.
  std::vector<ImageSpec> specs = StandardPlatformSpecs(TinySpec("base of " + repo));
  ASSERT_EQ(specs.size(), 3u);
  ASSERT_EQ(PlatformString(specs[0]), "linux/amd64");
  IT_ASSERT_OK_AND_ASSIGN(BuiltImage index, BuildMultiPlatformImage(specs, media));
  ASSERT_EQ(index.child_manifests.size(), 3u);
  EXPECT_EQ(index.top.media_type,
            media == MediaTypes::kOci ? media_types::kOciIndex : media_types::kDockerManifestList);
  ASSERT_NO_FATAL_FAILURE(PushOrFail(repo, "multi", index));

  std::string image_ref;
  grpc::Status s = Pull(Ref(repo, "multi"), &image_ref);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(image_ref, index.config_digest.str()) << "not the linux/amd64 image";
  ExpectNoPullLeftovers("after the pull");

  // The platform layer on disk says which image was unpacked.
  StatusOr<std::string> platform = ReadFile(LayerDir(index.diff_ids.back()) / "platform");
  ASSERT_TRUE(platform.ok()) << platform.status().ToString();
  EXPECT_EQ(*platform, "linux/amd64");
  // ... and the other platforms' own layers were not fetched.
  for (size_t i = 1; i < specs.size(); ++i) {
    ImageSpec other = specs[i];
    other.media = media;
    IT_ASSERT_OK_AND_ASSIGN(BuiltImage single, BuildImage(other));
    EXPECT_FALSE(Exists(LayerDir(single.diff_ids.back())))
        << PlatformString(specs[i]) << " layer was unpacked too";
    EXPECT_FALSE(Exists(BlobPath(single.config_digest)))
        << PlatformString(specs[i]) << " config was fetched";
  }

  std::optional<cri::Image> found = StatusOf(Ref(repo, "multi"));
  ASSERT_TRUE(found.has_value());
  EXPECT_THAT(found->repo_digests(), ElementsAre(DigestRef(repo, index.top.digest)))
      << "the repo digest names what the tag resolved to (the index)";
  cri::ImageStatusResponse verbose;
  s = ImageStatus(image_ref, &verbose, true);
  ASSERT_TRUE(s.ok()) << Describe(s);
  nlohmann::json info = InfoJson(verbose);
  ASSERT_FALSE(info.is_discarded());
  EXPECT_EQ(info.value("manifestDigest", ""), index.child_manifests[0].digest.str())
      << "the amd64 manifest: " << info.dump();
  EXPECT_EQ(info["imageSpec"].value("architecture", ""), "amd64");
}

TEST_F(ImageServiceIT, WhiteoutsAndOpaqueDirsBecomeOverlayForm) {
  ImageSpec spec;
  spec.media = MediaTypes::kOci;
  LayerSpec lower;
  lower.entries = {FileSpec::Dir("a"),
                   FileSpec::File("a/keep", "keep"),
                   FileSpec::File("a/gone", "x"),
                   FileSpec::Dir("a/sub"),
                   FileSpec::File("a/sub/f", "f"),
                   FileSpec::Dir("d"),
                   FileSpec::File("d/old", "old")};
  LayerSpec upper;
  upper.entries = {FileSpec::Dir("a"), WhiteoutFile("a/gone"), WhiteoutFile("a/sub"),
                   FileSpec::Dir("d"), OpaqueDir("d"),         FileSpec::File("d/new", "new")};
  spec.layers = {lower, upper};
  IT_ASSERT_OK_AND_ASSIGN(BuiltImage img, BuildImage(spec));
  ASSERT_NO_FATAL_FAILURE(PushOrFail("it/whiteout", "v1", img));

  grpc::Status s = Pull(Ref("it/whiteout", "v1"));
  ASSERT_TRUE(s.ok()) << Describe(s);
  ExpectNoPullLeftovers("after the pull");

  const fs::path up = LayerDir(img.diff_ids[1]);
  for (const char* name : {"a/gone", "a/sub"}) {
    struct stat st;
    ASSERT_EQ(::lstat((up / name).c_str(), &st), 0) << name << " whiteout missing in " << up;
    EXPECT_TRUE(S_ISCHR(st.st_mode)) << name << " is not a character device";
    EXPECT_EQ(major(st.st_rdev), 0u) << name;
    EXPECT_EQ(minor(st.st_rdev), 0u) << name;
  }
  char value[16] = {0};
  ssize_t n = ::getxattr((up / "d").c_str(), "trusted.overlay.opaque", value, sizeof(value));
  ASSERT_GE(n, 0) << "no trusted.overlay.opaque on d: " << ::strerror(errno);
  EXPECT_EQ(std::string(value, static_cast<size_t>(n)), "y");
  StatusOr<std::string> fresh = ReadFile(up / "d" / "new");
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_EQ(*fresh, "new");
  EXPECT_FALSE(Exists(up / "d" / "old")) << "upper layer holds only its own entries";

  // No .wh. names anywhere; the lower layer is plain.
  for (const fs::path& layer : {up, LayerDir(img.diff_ids[0])}) {
    for (const auto& e : fs::recursive_directory_iterator(layer)) {
      EXPECT_FALSE(e.path().filename().string().starts_with(".wh."))
          << "whiteout marker left on disk: " << e.path();
    }
  }
  EXPECT_TRUE(fs::is_regular_file(LayerDir(img.diff_ids[0]) / "a" / "gone"));
  char lower_value[4];
  EXPECT_LT(::getxattr((LayerDir(img.diff_ids[0]) / "d").c_str(), "trusted.overlay.opaque",
                       lower_value, sizeof(lower_value)),
            0)
      << "the lower layer's d is not opaque";
}

TEST_F(ImageServiceIT, ConfigUserGivesUidOrUsername) {
  struct Case {
    std::string user;
    std::optional<int64_t> uid;
    std::string username;
  };
  const std::vector<Case> cases = {
      {"1234", 1234, ""}, {"nobody", std::nullopt, "nobody"}, {"1234:5678", 1234, ""}};
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("User \"" + cases[i].user + "\"");
    ImageSpec spec = TinySpec("user image");
    spec.user = cases[i].user;
    IT_ASSERT_OK_AND_ASSIGN(BuiltImage img, BuildImage(spec));
    const std::string tag = StrCat("u", i);
    ASSERT_NO_FATAL_FAILURE(PushOrFail("it/user", tag, img));
    grpc::Status s = Pull(Ref("it/user", tag));
    ASSERT_TRUE(s.ok()) << Describe(s);
    std::optional<cri::Image> found = StatusOf(Ref("it/user", tag));
    ASSERT_TRUE(found.has_value());
    if (cases[i].uid) {
      ASSERT_TRUE(found->has_uid()) << found->DebugString();
      EXPECT_EQ(found->uid().value(), *cases[i].uid);
      EXPECT_EQ(found->username(), "");
    } else {
      EXPECT_FALSE(found->has_uid()) << found->DebugString();
      EXPECT_EQ(found->username(), cases[i].username);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Names: several tags, moved tags, removal

TEST_F(ImageServiceIT, TwoTagsOneImageAndRemoveByOneTagRemovesAll) {
  IT_ASSERT_OK_AND_ASSIGN(BuiltImage img, BuildImage(TinySpec("two tags")));
  ASSERT_NO_FATAL_FAILURE(PushOrFail("it/tags", "a", img));
  ASSERT_NO_FATAL_FAILURE(PushOrFail("it/tags", "b", img));

  std::string ref_a, ref_b;
  grpc::Status s = Pull(Ref("it/tags", "a"), &ref_a);
  ASSERT_TRUE(s.ok()) << Describe(s);
  s = Pull(Ref("it/tags", "b"), &ref_b);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(ref_a, ref_b);

  std::vector<cri::Image> images = List();
  ASSERT_EQ(images.size(), 1u) << "two tags of one image must give one image";
  EXPECT_THAT(images[0].repo_tags(),
              UnorderedElementsAre(Ref("it/tags", "a"), Ref("it/tags", "b")));
  EXPECT_THAT(images[0].repo_digests(), ElementsAre(DigestRef("it/tags", img.top.digest)));
  EXPECT_EQ(CountLinesWith(berthd_->Log(), {"event=image_pulled"}), 2);

  s = Remove(Ref("it/tags", "a"));
  ASSERT_TRUE(s.ok()) << "RemoveImage: " << Describe(s);
  EXPECT_THAT(List(), IsEmpty()) << "removing by one tag removes the image with all its tags";
  EXPECT_FALSE(StatusOf(Ref("it/tags", "b")).has_value()) << "tag b still resolves";
  EXPECT_FALSE(StatusOf(ref_a).has_value()) << "the ID still resolves";
  for (const BuiltBlob& b : img.blobs) {
    EXPECT_FALSE(Exists(BlobPath(b.digest))) << "blob " << b.digest.str() << " left on disk";
  }
  EXPECT_FALSE(Exists(BlobPath(img.top.digest))) << "manifest blob left on disk";
  for (const Digest& d : img.diff_ids) {
    EXPECT_FALSE(Exists(LayerDir(d))) << "layer " << d.str() << " left on disk";
  }

  // Idempotent (CRI spec): again, and for an image never pulled.
  s = Remove(Ref("it/tags", "a"));
  EXPECT_TRUE(s.ok()) << "second RemoveImage: " << Describe(s);
  s = Remove(ref_a);
  EXPECT_TRUE(s.ok()) << "RemoveImage by the removed ID: " << Describe(s);
  s = Remove(Ref("it/never-pulled", "x"));
  EXPECT_TRUE(s.ok()) << "RemoveImage of a never-pulled image: " << Describe(s);
  ExpectServing("after the removals");
}

TEST_F(ImageServiceIT, MovedTagLeavesTheOlderImage) {
  IT_ASSERT_OK_AND_ASSIGN(BuiltImage old_img, BuildImage(TinySpec("old content")));
  IT_ASSERT_OK_AND_ASSIGN(BuiltImage new_img, BuildImage(TinySpec("new content")));
  ASSERT_NE(old_img.config_digest, new_img.config_digest);
  const std::string tag = Ref("it/move", "latest");

  ASSERT_NO_FATAL_FAILURE(PushOrFail("it/move", "latest", old_img));
  grpc::Status s = Pull(tag);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_NO_FATAL_FAILURE(PushOrFail("it/move", "latest", new_img));
  std::string new_ref;
  s = Pull(tag, &new_ref);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(new_ref, new_img.config_digest.str());

  std::optional<cri::Image> by_tag = StatusOf(tag);
  ASSERT_TRUE(by_tag.has_value());
  EXPECT_EQ(by_tag->id(), new_img.config_digest.str()) << "the tag follows the registry";
  EXPECT_THAT(by_tag->repo_tags(), ElementsAre(tag));

  // The older image lost the tag. It keeps its other name, the repo digest it was pulled by
  // (so it stays listed, untagged, as containerd keeps it) until it is removed.
  std::optional<cri::Image> old_found = StatusOf(old_img.config_digest.str());
  ASSERT_TRUE(old_found.has_value()) << "the older image still has its repo digest as a name";
  EXPECT_THAT(old_found->repo_tags(), IsEmpty()) << "the older image kept the moved tag";
  EXPECT_THAT(old_found->repo_digests(), ElementsAre(DigestRef("it/move", old_img.top.digest)));
  EXPECT_EQ(List().size(), 2u);

  s = Remove(old_img.config_digest.str());
  ASSERT_TRUE(s.ok()) << Describe(s);
  std::vector<cri::Image> left = List();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].id(), new_img.config_digest.str());
  EXPECT_FALSE(Exists(LayerDir(old_img.diff_ids[0]))) << "old layer not collected";
  EXPECT_FALSE(Exists(BlobPath(old_img.config_digest))) << "old config not collected";
  EXPECT_TRUE(Exists(LayerDir(new_img.diff_ids[0]))) << "the new image lost its layer";
  EXPECT_TRUE(Exists(BlobPath(new_img.config_digest))) << "the new image lost its config";
}

// ---------------------------------------------------------------------------------------------
// Authentication

TEST_F(ImageServiceIT, BasicAuthRegistry) {
  RegistryServer auth_registry;
  RegistryServerOptions opts;
  opts.username = "berthuser";
  opts.password = "s3cret-pass";
  IT_ASSERT_OK(auth_registry.Start(opts));
  IT_ASSERT_OK(berthd_->AddRegistryHost(auth_registry.host(), auth_registry.url()));
  IT_ASSERT_OK_AND_ASSIGN(BuiltImage img, BuildImage(TinySpec("behind basic auth")));
  IT_ASSERT_OK(
      PushImage({auth_registry.url(), "berthuser", "s3cret-pass", "", ""}, "it/auth", "v1", img));
  const std::string ref = StrCat(auth_registry.host(), "/it/auth:v1");

  grpc::Status s = Pull(ref);
  EXPECT_FALSE(s.ok()) << "pull without credentials succeeded";
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);

  cri::AuthConfig wrong;
  wrong.set_username("berthuser");
  wrong.set_password("wrong");
  s = Pull(ref, nullptr, &wrong);
  EXPECT_FALSE(s.ok()) << "pull with a wrong password succeeded";
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);
  EXPECT_EQ(s.error_message().find("wrong"), std::string::npos) << "the password is in the error";
  EXPECT_THAT(List(), IsEmpty());
  ExpectNoPullLeftovers("after the refused pulls");

  cri::AuthConfig good;
  good.set_username("berthuser");
  good.set_password("s3cret-pass");
  std::string image_ref;
  s = Pull(ref, &image_ref, &good);
  ASSERT_TRUE(s.ok()) << "pull with username/password: " << Describe(s);
  EXPECT_EQ(image_ref, img.config_digest.str());
  EXPECT_TRUE(Exists(LayerDir(img.diff_ids[0])));
  EXPECT_EQ(berthd_->Log().find("s3cret-pass"), std::string::npos) << "the password was logged";

  // Again from scratch with the base64 `auth` field.
  s = Remove(image_ref);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_FALSE(Exists(LayerDir(img.diff_ids[0])));
  cri::AuthConfig encoded;
  encoded.set_auth(Base64("berthuser:s3cret-pass"));
  s = Pull(ref, &image_ref, &encoded);
  ASSERT_TRUE(s.ok()) << "pull with the auth field: " << Describe(s);
  EXPECT_EQ(image_ref, img.config_digest.str());
  EXPECT_TRUE(Exists(LayerDir(img.diff_ids[0])));
  EXPECT_EQ(List().size(), 1u);
}

TEST_F(ImageServiceIT, TokenAuthRegistry) {
  RegistryServer token_registry;
  RegistryServerOptions opts;
  opts.token_auth = true;
  opts.token_username = "tokenuser";
  opts.token_password = "token-pass";
  opts.token_refresh_token = "refresh-berth-it";
  IT_ASSERT_OK(token_registry.Start(opts));
  IT_ASSERT_OK(berthd_->AddRegistryHost(token_registry.host(), token_registry.url()));
  IT_ASSERT_OK_AND_ASSIGN(std::string push_token,
                          token_registry.IssueToken("it/token", "pull,push"));
  IT_ASSERT_OK_AND_ASSIGN(BuiltImage img, BuildImage(TinySpec("behind token auth")));
  IT_ASSERT_OK(PushImage({token_registry.url(), "", "", push_token, ""}, "it/token", "v1", img));
  const std::string ref = StrCat(token_registry.host(), "/it/token:v1");
  const std::string id = img.config_digest.str();

  grpc::Status s = Pull(ref);
  EXPECT_FALSE(s.ok()) << "anonymous pull from a token registry that requires credentials";
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);

  cri::AuthConfig wrong;
  wrong.set_username("tokenuser");
  wrong.set_password("nope");
  s = Pull(ref, nullptr, &wrong);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << "wrong token credentials: " << Describe(s);
  EXPECT_THAT(List(), IsEmpty());

  // Bearer flow with basic credentials at the token realm.
  cri::AuthConfig good;
  good.set_username("tokenuser");
  good.set_password("token-pass");
  std::string image_ref;
  s = Pull(ref, &image_ref, &good);
  ASSERT_TRUE(s.ok()) << "bearer pull with username/password: " << Describe(s);
  EXPECT_EQ(image_ref, id);
  bool saw_credentials = false;
  for (const RecordedRequest& r : token_registry.token_requests()) {
    if (r.method == "GET" &&
        r.header("authorization") == "Basic " + Base64("tokenuser:token-pass")) {
      saw_credentials = true;
      EXPECT_NE(UrlDecode(r.query()).find("repository:it/token:pull"), std::string::npos)
          << "token request without the pull scope: " << r.target;
    }
  }
  EXPECT_TRUE(saw_credentials) << "the token service never saw the credentials";

  // An OAuth2 refresh token (identity_token) is exchanged with a POST.
  s = Remove(id);
  ASSERT_TRUE(s.ok()) << Describe(s);
  cri::AuthConfig identity;
  identity.set_identity_token("refresh-berth-it");
  s = Pull(ref, &image_ref, &identity);
  ASSERT_TRUE(s.ok()) << "pull with identity_token: " << Describe(s);
  EXPECT_EQ(image_ref, id);
  bool saw_post = false;
  for (const RecordedRequest& r : token_registry.token_requests()) saw_post |= r.method == "POST";
  EXPECT_TRUE(saw_post) << "identity_token was not exchanged at the token realm";

  // A registry token is sent as the bearer token itself.
  s = Remove(id);
  ASSERT_TRUE(s.ok()) << Describe(s);
  IT_ASSERT_OK_AND_ASSIGN(std::string pull_token, token_registry.IssueToken("it/token", "pull"));
  cri::AuthConfig registry_token;
  registry_token.set_registry_token(pull_token);
  s = Pull(ref, &image_ref, &registry_token);
  ASSERT_TRUE(s.ok()) << "pull with registry_token: " << Describe(s);
  EXPECT_EQ(image_ref, id);
  EXPECT_EQ(List().size(), 1u);
  ExpectNoPullLeftovers("after the token pulls");
}

// ---------------------------------------------------------------------------------------------
// Hostile content

TEST_F(ImageServiceIT, HostileLayersCannotWriteOutsideTheLayer) {
  SentinelDir sentinel;     // symlinks point here: must stay empty
  SentinelDir link_target;  // holds one file that hard links try to reach
  ASSERT_FALSE(sentinel.path().empty());
  ASSERT_FALSE(link_target.path().empty());
  const fs::path target_file = link_target.path() / "target";
  IT_ASSERT_OK(WriteFileAtomic(target_file, "original"));
  const std::string marker = RandomHex(4);
  const std::string escape_name = "escape-" + marker;
  const std::string ups = "../../../../../../../../../../../..";  // far above any layer dir
  const std::string sentinel_rel = ups + sentinel.path().string();
  const std::string target_rel = ups + target_file.string();

  struct Case {
    std::string name;
    std::vector<FileSpec> entries;
  };
  const std::vector<Case> cases = {
      {"dotdot", {FileSpec::File("../" + escape_name, "x")}},
      {"deep-dotdot", {FileSpec::File(sentinel_rel + "/" + escape_name, "x")}},
      {"absolute-name", {FileSpec::File(sentinel.path().string() + "/abs-" + marker, "x")}},
      {"abs-symlink",
       {FileSpec::Symlink("evil", sentinel.path().string()),
        FileSpec::File("evil/owned-" + marker, "x")}},
      {"rel-symlink",
       {FileSpec::Symlink("evil", sentinel_rel), FileSpec::File("evil/owned-" + marker, "x")}},
      {"symlink-then-file",
       {FileSpec::Symlink("evil", target_file.string()), FileSpec::File("evil", "pwned")}},
      {"symlink-dir-then-dir",
       {FileSpec::Symlink("evil", sentinel.path().string()), FileSpec::Dir("evil/sub-" + marker)}},
      {"hardlink-rel", {FileSpec::Hardlink("link", target_rel)}},
      {"hardlink-abs", {FileSpec::Hardlink("link", target_file.string())}},
      {"hardlink-then-write",
       {FileSpec::Hardlink("link", target_rel), FileSpec::File("link", "pwned")}},
      {"hardlink-via-symlink",
       {FileSpec::Symlink("evil", link_target.path().string()),
        FileSpec::Hardlink("link", "evil/target"), FileSpec::File("link", "pwned")}},
  };

  std::vector<std::string> succeeded;
  for (const Case& c : cases) {
    SCOPED_TRACE("hostile layer " + c.name);
    ImageSpec spec;
    spec.layers = {RawTarLayer(c.entries)};
    IT_ASSERT_OK_AND_ASSIGN(BuiltImage img, BuildImage(spec));
    ASSERT_NO_FATAL_FAILURE(PushOrFail("it/hostile", c.name, img));
    grpc::Status s = Pull(Ref("it/hostile", c.name));
    EXPECT_TRUE(s.ok() || s.error_code() == grpc::StatusCode::INVALID_ARGUMENT)
        << "a hostile layer is either clamped inside (OK) or rejected (INVALID_ARGUMENT): "
        << Describe(s);
    if (s.ok()) {
      succeeded.push_back(c.name);
      EXPECT_TRUE(Exists(LayerDir(img.diff_ids[0]))) << "pulled but not unpacked";
    } else {
      EXPECT_FALSE(StatusOf(Ref("it/hostile", c.name)).has_value())
          << "a rejected pull left an image";
      EXPECT_FALSE(Exists(LayerDir(img.diff_ids[0]))) << "a rejected layer was committed";
    }
    ExpectNoPullLeftovers("after a hostile pull");

    EXPECT_THAT(DirEntries(sentinel.path()), IsEmpty())
        << "something escaped into " << sentinel.path();
    EXPECT_THAT(DirEntries(link_target.path()), ElementsAre("target"))
        << "something escaped into " << link_target.path();
    StatusOr<std::string> content = ReadFile(target_file);
    ASSERT_TRUE(content.ok()) << content.status().ToString();
    EXPECT_EQ(*content, "original") << "the file outside was overwritten";
    struct stat st;
    ASSERT_EQ(::stat(target_file.c_str(), &st), 0);
    EXPECT_EQ(st.st_nlink, 1u) << "a layer hard-linked the file outside";
    ExpectServing("after a hostile pull");
  }

  // Nothing escaped anywhere else either: outside the committed layer dirs, no entry of the
  // berthd dir carries a marker name, and nothing landed next to it in /tmp or /.
  const fs::path layers = berthd_->root() / "snapshots" / "layers";
  for (const auto& e : fs::recursive_directory_iterator(berthd_->dir())) {
    const std::string name = e.path().filename().string();
    if (name.find(marker) == std::string::npos) continue;
    const std::string p = e.path().string();
    EXPECT_TRUE(p.starts_with(layers.string() + "/")) << "entry outside any layer: " << p;
  }
  for (const fs::path& p :
       {fs::path("/tmp") / escape_name, fs::path("/") / escape_name, berthd_->dir() / escape_name,
        berthd_->root() / escape_name, berthd_->root() / "snapshots" / escape_name}) {
    EXPECT_FALSE(Exists(p)) << "escaped to " << p;
  }
  RecordProperty("hostile_layers_accepted", ::testing::PrintToString(succeeded));
  std::cerr << "hostile layers pulled (clamped): " << ::testing::PrintToString(succeeded) << "\n";
}

TEST_F(ImageServiceIT, DigestMismatchIsDataLossAndLeavesNothing) {
  // docker-registry verifies uploads, so a registry that serves wrong bytes is faked.
  IT_ASSERT_OK_AND_ASSIGN(BuiltImage gz, BuildImage(TinySpec(std::string(4096, 'g'))));
  ImageSpec raw_spec = TinySpec(std::string(64 << 10, 'r'));
  raw_spec.layers[0].compression = Compression::kNone;
  IT_ASSERT_OK_AND_ASSIGN(BuiltImage raw, BuildImage(raw_spec));
  std::map<std::string, CannedResponse> routes;
  auto add_image = [&](const std::string& tag, const BuiltImage& img) {
    CannedResponse manifest;
    manifest.headers = {{"Content-Type", img.top.media_type},
                        {"Docker-Content-Digest", img.top.digest.str()}};
    manifest.body = img.top.data;
    routes["/v2/it/corrupt/manifests/" + tag] = manifest;
    routes["/v2/it/corrupt/manifests/" + img.top.digest.str()] = manifest;
    for (const BuiltBlob& b : img.blobs) {
      CannedResponse blob;
      blob.headers = {{"Content-Type", "application/octet-stream"},
                      {"Docker-Content-Digest", b.digest.str()}};
      // Layers are served corrupted (same size, one byte flipped); the config is intact.
      blob.body = b.digest == img.config_digest ? b.data : CorruptCopy(b).data;
      routes["/v2/it/corrupt/blobs/" + b.digest.str()] = blob;
    }
  };
  add_image("gz", gz);
  add_image("raw", raw);
  FakeHttpServer fake([routes](const RecordedRequest& req) {
    CannedResponse r;
    if (req.path() == "/v2/" || req.path() == "/v2") {
      r.headers = {{"Content-Type", "application/json"}};
      r.body = "{}";
      return r;
    }
    auto it = routes.find(req.path());
    if (it != routes.end()) return it->second;
    r.status = 404;
    r.headers = {{"Content-Type", "application/json"}};
    r.body = R"({"errors":[{"code":"NOT_FOUND","message":"no such object"}]})";
    return r;
  });
  IT_ASSERT_OK(fake.Start());
  const std::string host = StrCat("127.0.0.1:", fake.port());
  IT_ASSERT_OK(berthd_->AddRegistryHost(host, fake.url()));

  for (const auto& [tag, img] :
       std::vector<std::pair<std::string, const BuiltImage*>>{{"gz", &gz}, {"raw", &raw}}) {
    SCOPED_TRACE("layer " + tag);
    grpc::Status s = Pull(StrCat(host, "/it/corrupt:", tag));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << Describe(s);
    EXPECT_NE(s.error_message().find(img->layer_digests[0].str()), std::string::npos)
        << "the error does not name the layer: " << s.error_message();
    EXPECT_THAT(List(), IsEmpty()) << "an image was recorded";
    EXPECT_FALSE(Exists(BlobPath(img->layer_digests[0]))) << "the corrupt blob was committed";
    EXPECT_FALSE(Exists(LayerDir(img->diff_ids[0]))) << "the corrupt layer was committed";
    ExpectNoPullLeftovers("after the failed pull");
  }
  bool layer_requested = false;
  for (const RecordedRequest& r : fake.requests()) {
    layer_requested |= r.path() == "/v2/it/corrupt/blobs/" + raw.layer_digests[0].str();
  }
  EXPECT_TRUE(layer_requested) << "berthd never asked for the layer";
  ExpectServing("after the corrupt pulls");
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST_F(ImageServiceIT, ErrorCodes) {
  IT_ASSERT_OK_AND_ASSIGN(BuiltImage img, BuildImage(TinySpec("errors")));
  ASSERT_NO_FATAL_FAILURE(PushOrFail("it/errors", "present", img));

  grpc::Status s = Pull(Ref("it/errors", "absent"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "unknown tag: " << Describe(s);
  s = Pull(Ref("it/no-such-repo", "v1"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "unknown repository: " << Describe(s);
  s = Pull(DigestRef("it/errors", Digest::FromHex(std::string(64, 'a'))));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "unknown digest: " << Describe(s);

  for (const std::string& bad : {std::string("UPPER/case"), std::string("a b"),
                                 StrCat(registry_->host(), "/it/errors:bad tag"),
                                 StrCat(registry_->host(), "/it/errors:")}) {
    s = Pull(bad);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << "malformed reference \"" << bad << "\": " << Describe(s);
  }
  s = Pull("");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "empty name: " << Describe(s);
  cri::ImageStatusResponse status_resp;
  s = ImageStatus("", &status_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << "ImageStatus of an empty name: " << Describe(s);
  s = Remove("");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << "RemoveImage of an empty name: " << Describe(s);

  // A registry that is down.
  IT_ASSERT_OK_AND_ASSIGN(int port, ClosedPort());
  const std::string down = StrCat("127.0.0.1:", port);
  IT_ASSERT_OK(berthd_->AddRegistryHost(down, StrCat("http://", down)));
  s = Pull(StrCat(down, "/it/errors:present"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << "registry down: " << Describe(s);
  EXPECT_NE(s.error_message().find(down), std::string::npos)
      << "the error does not name the registry: " << s.error_message();

  EXPECT_THAT(List(), IsEmpty());
  ExpectNoPullLeftovers("after the failed pulls");
  ExpectServing("after the failed pulls");
  // And it still pulls.
  s = Pull(Ref("it/errors", "present"));
  EXPECT_TRUE(s.ok()) << Describe(s);
}

// ---------------------------------------------------------------------------------------------
// Concurrency and crashes

TEST_F(ImageServiceIT, ConcurrentPullsOfOneImageDownloadOnce) {
  IT_ASSERT_OK_AND_ASSIGN(BuiltImage img, BuildImage(BigSpec(5, 4 << 20, 100)));
  ASSERT_NO_FATAL_FAILURE(PushOrFail("it/big", "concurrent", img));
  const std::string ref = Ref("it/big", "concurrent");

  std::latch start(2);
  grpc::Status results[2];
  std::string refs[2];
  {
    std::vector<std::jthread> pullers;
    for (int i = 0; i < 2; ++i) {
      pullers.emplace_back([&, i] {
        start.arrive_and_wait();
        results[i] = Pull(ref, &refs[i]);
      });
    }
  }
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(results[i].ok()) << "puller " << i << ": " << Describe(results[i]);
    EXPECT_EQ(refs[i], img.config_digest.str()) << "puller " << i;
  }
  EXPECT_EQ(CountLinesWith(berthd_->Log(), {"event=image_pulled", "ref=" + ref + " "}), 1)
      << "two concurrent pulls of one image must share one download";
  EXPECT_EQ(List().size(), 1u);
  for (const Digest& d : img.diff_ids) EXPECT_TRUE(Exists(LayerDir(d))) << d.str();
  ExpectNoPullLeftovers("after the concurrent pulls");
}

TEST_F(ImageServiceIT, ImagesSurviveACleanRestart) {
  ASSERT_NO_FATAL_FAILURE(PushOrFail("it/restart", "v1", *busybox_));
  ImageSpec user_spec = TinySpec("restart");
  user_spec.user = "1234";
  IT_ASSERT_OK_AND_ASSIGN(BuiltImage user_img, BuildImage(user_spec));
  ASSERT_NO_FATAL_FAILURE(PushOrFail("it/restart", "user", user_img));
  grpc::Status s = Pull(Ref("it/restart", "v1"));
  ASSERT_TRUE(s.ok()) << Describe(s);
  s = Pull(Ref("it/restart", "user"));
  ASSERT_TRUE(s.ok()) << Describe(s);

  std::vector<cri::Image> before = List();
  ASSERT_EQ(before.size(), 2u);
  cri::ImageStatusResponse verbose_before;
  s = ImageStatus(Ref("it/restart", "v1"), &verbose_before, true);
  ASSERT_TRUE(s.ok()) << Describe(s);

  IT_ASSERT_OK(berthd_->Stop());  // SIGTERM, exit code 0
  IT_ASSERT_OK(berthd_->Start(DefaultArgs()));

  std::vector<cri::Image> after = List();
  ASSERT_EQ(after.size(), before.size());
  auto by_id = [](const cri::Image& a, const cri::Image& b) { return a.id() < b.id(); };
  std::sort(before.begin(), before.end(), by_id);
  std::sort(after.begin(), after.end(), by_id);
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(before[i], after[i]))
        << "before restart: " << before[i].DebugString()
        << "after restart: " << after[i].DebugString();
  }
  cri::ImageStatusResponse verbose_after;
  s = ImageStatus(Ref("it/restart", "v1"), &verbose_after, true);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(verbose_before, verbose_after))
      << "verbose ImageStatus changed across the restart";
  for (const Digest& d : busybox_->diff_ids) {
    EXPECT_TRUE(Exists(LayerDir(d))) << "layer lost in the restart: " << d.str();
  }
  for (const BuiltBlob& b : busybox_->blobs) {
    EXPECT_TRUE(Exists(BlobPath(b.digest))) << "blob lost in the restart: " << b.digest.str();
  }
  EXPECT_EQ(CountLinesWith(berthd_->Log(), {"event=ready"}), 2) << "two starts";
}

TEST_F(ImageServiceIT, SigkillDuringPullLeavesNoHalfImage) {
  IT_ASSERT_OK_AND_ASSIGN(BuiltImage img, BuildImage(BigSpec(5, 8 << 20, 500)));
  ASSERT_NO_FATAL_FAILURE(PushOrFail("it/big", "crash", img));
  const std::string ref = Ref("it/big", "crash");
  // One download at a time keeps the pull busy long enough to be caught in the middle.
  std::vector<std::string> args = DefaultArgs();
  args.insert(args.end(), {"--max-concurrent-downloads", "1"});
  IT_ASSERT_OK(berthd_->Stop());
  IT_ASSERT_OK(berthd_->Start(args));

  // The puller owns its stub (and so the channel): Kill() drops the fixture's.
  std::unique_ptr<cri::ImageService::Stub> stub = cri::ImageService::NewStub(berthd_->channel());
  std::atomic<bool> done{false};
  grpc::Status pull_status;
  std::jthread puller([&] {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::PullImageRequest req;
    req.mutable_image()->set_image(ref);
    cri::PullImageResponse resp;
    pull_status = stub->PullImage(&ctx, req, &resp);
    done = true;
  });
  // Wait until a layer is being downloaded (an ingest file exists), then kill.
  bool downloading = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done && std::chrono::steady_clock::now() < deadline) {
    if (!DirEntries(IngestDir()).empty()) {
      downloading = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  berthd_->Kill();
  puller.join();
  ASSERT_TRUE(downloading) << "never saw the download in progress (pull ended: "
                           << Describe(pull_status) << ")";
  EXPECT_FALSE(pull_status.ok()) << "the pull survived SIGKILL of berthd";

  IT_ASSERT_OK(berthd_->Start(args));
  EXPECT_THAT(List(), IsEmpty()) << "a half-pulled image is listed after the crash";
  EXPECT_FALSE(StatusOf(ref).has_value());
  ExpectNoPullLeftovers("after restarting from the crash");
  EXPECT_THAT(DirEntries(berthd_->root() / "snapshots" / "layers"), IsEmpty())
      << "start-up recovery must collect layers no image uses";
  EXPECT_THAT(DirEntries(berthd_->root() / "content" / "blobs" / "sha256"), IsEmpty())
      << "start-up recovery must collect blobs no image uses";

  std::string image_ref;
  grpc::Status s = Pull(ref, &image_ref);
  ASSERT_TRUE(s.ok()) << "pull after the crash: " << Describe(s);
  EXPECT_EQ(image_ref, img.config_digest.str());
  EXPECT_EQ(List().size(), 1u);
  for (const Digest& d : img.diff_ids) EXPECT_TRUE(Exists(LayerDir(d))) << d.str();
  for (const Digest& d : img.layer_digests) EXPECT_TRUE(Exists(BlobPath(d))) << d.str();
  ExpectNoPullLeftovers("after the second pull");
}

// ---------------------------------------------------------------------------------------------
// Disk usage

TEST_F(ImageServiceIT, ImageFsInfoFollowsPullsAndRemovals) {
  auto usage = [&](cri::ImageFsInfoResponse* resp) {
    grpc::Status s = FsInfo(resp);
    ASSERT_TRUE(s.ok()) << "ImageFsInfo: " << Describe(s);
    ASSERT_EQ(resp->image_filesystems_size(), 1);
    const cri::FilesystemUsage& fs = resp->image_filesystems(0);
    EXPECT_GT(fs.timestamp(), 0);
    EXPECT_FALSE(fs.fs_id().mountpoint().empty());
    EXPECT_TRUE(fs.has_used_bytes());
    EXPECT_TRUE(fs.has_inodes_used());
    ASSERT_GE(resp->container_filesystems_size(), 1) << "container_filesystems missing";
    EXPECT_GT(resp->container_filesystems(0).timestamp(), 0);
    EXPECT_FALSE(resp->container_filesystems(0).fs_id().mountpoint().empty());
  };
  cri::ImageFsInfoResponse empty, pulled, removed;
  ASSERT_NO_FATAL_FAILURE(usage(&empty));

  ASSERT_NO_FATAL_FAILURE(PushOrFail("it/fsinfo", "v1", *busybox_));
  grpc::Status s = Pull(Ref("it/fsinfo", "v1"));
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_NO_FATAL_FAILURE(usage(&pulled));
  const auto& e = empty.image_filesystems(0);
  const auto& p = pulled.image_filesystems(0);
  EXPECT_GT(p.used_bytes().value(), 0u);
  EXPECT_GT(p.inodes_used().value(), 0u);
  EXPECT_GT(p.used_bytes().value(), e.used_bytes().value() + busybox_->layer_digests.size())
      << "the pull did not grow used_bytes";
  EXPECT_GT(p.inodes_used().value(), e.inodes_used().value() + 10)
      << "the pull did not grow inodes_used (busybox has dozens of entries)";
  uint64_t blob_bytes = busybox_->top.size();
  for (const BuiltBlob& b : busybox_->blobs) blob_bytes += b.size();
  EXPECT_GE(p.used_bytes().value() - e.used_bytes().value(), blob_bytes)
      << "used_bytes grew by less than the blobs the pull stored";

  s = Remove(Ref("it/fsinfo", "v1"));
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_NO_FATAL_FAILURE(usage(&removed));
  const auto& r = removed.image_filesystems(0);
  EXPECT_LT(r.used_bytes().value(), p.used_bytes().value());
  EXPECT_LT(r.inodes_used().value(), p.inodes_used().value());
  EXPECT_GE(r.timestamp(), p.timestamp());
}

}  // namespace
}  // namespace berth::testing
