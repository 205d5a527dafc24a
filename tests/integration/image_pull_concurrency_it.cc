// Pull single-flight, driven in-process: several threads call image::ImageService::Pull, the
// call berthd's PullImage handler makes, against a real registry (Debian's docker-registry on
// 127.0.0.1) behind a trickling proxy that records every blob download. The binary has no
// gRPC, so ThreadSanitizer sees every lock and thread of the pull pipeline (docs/testing.md,
// "TSan record"); in the normal and ASan suites these are ordinary tests.
//
// Asserted: callers of one reference, and of images sharing layers, download each blob once
// and get the same image; a caller that leaves gets its own status at once while the others
// keep the download going; when every caller has left, the download is aborted, its partial
// files are removed, and a later pull starts afresh.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/status.h"
#include "image/image_service.h"
#include "store/metadata_store.h"
#include "support/image_builder.h"
#include "support/registry_push.h"
#include "support/registry_server.h"
#include "support/throttle_proxy.h"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using Clock = std::chrono::steady_clock;

// 16 KiB every 100 ms, about 160 KB/s: a 512 KiB layer takes some 3 s, long enough for every
// caller of a test to join the pull in flight.
constexpr size_t kTrickleChunk = 16 << 10;
constexpr auto kTricklePeriod = std::chrono::milliseconds(100);

#define IT_ASSERT_OK(expr)                                                         \
  do {                                                                             \
    const ::berth::Status it_status_ = (expr);                                     \
    ASSERT_TRUE(it_status_.ok()) << #expr << " failed: " << it_status_.ToString(); \
  } while (0)

// A cancel check that says CANCELLED once `gone` is set, as the gRPC handler's does once its
// client has gone.
image::CancelCheck GoneWhen(const std::atomic<bool>& gone) {
  return [&gone]() -> Status {
    return gone.load() ? CancelledError("the caller has gone") : OkStatus();
  };
}

class ImagePullConcurrencyIT : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // spdlog's registry is a function-local static inside Debian's (uninstrumented)
    // libspdlog: made here on the main thread, as berthd's SetupLogging does before any
    // other thread, rather than by whichever pull logs first. TSan cannot see the guard of
    // a static initialised on another thread inside an uninstrumented library.
    spdlog::default_logger();
    if (::geteuid() != 0) {
      suite_error_ = "skip: layers are unpacked with their owners: needs root";
      return;
    }
    registry_ = new RegistryServer();
    Status s = registry_->Start();
    if (!s.ok()) suite_error_ = StrCat("cannot start the test registry: ", s.ToString());
  }

  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }

  void SetUp() override {
    if (suite_error_.starts_with("skip: ")) GTEST_SKIP() << suite_error_;
    ASSERT_TRUE(suite_error_.empty()) << suite_error_;
    std::string tmpl = "/tmp/bt-pull-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << "mkdtemp: " << ::strerror(errno);
    dir_ = tmpl;
    proxy_ = std::make_unique<ThrottleProxy>("127.0.0.1", registry_->port(), kTrickleChunk,
                                             kTricklePeriod);
    IT_ASSERT_OK(proxy_->Start());
    // The proxy is the registry as far as the service knows: a plain-http host of its own.
    const fs::path hosts = dir_ / "certs.d" / proxy_->host();
    IT_ASSERT_OK(MakeDirs(hosts, 0755));
    IT_ASSERT_OK(WriteFileAtomic(
        hosts / "hosts.toml", StrCat("server = \"", proxy_->url(), "\"\n\n[host.\"", proxy_->url(),
                                     "\"]\n  capabilities = [\"pull\", ", "\"resolve\"]\n")));
    ASSERT_NO_FATAL_FAILURE(OpenService());
  }

  void TearDown() override {
    images_.reset();
    db_.reset();
    if (proxy_) proxy_->Stop();
    if (!dir_.empty()) {
      Status s = RemoveAll(dir_);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
  }

  void OpenService() {
    auto db = store::MetadataStore::Open(dir_ / "root" / "meta.db");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    image::ImageServiceOptions opts;
    opts.root = dir_ / "root";
    opts.registry.hosts_dir = dir_ / "certs.d";
    auto images = image::ImageService::Open(opts, db_.get());
    ASSERT_TRUE(images.ok()) << images.status().ToString();
    images_ = std::move(*images);
  }

  // Builds `spec` and pushes it to the registry as <repo>:v1; returns the reference through
  // the proxy.
  std::string Push(const std::string& repo, const ImageSpec& spec, BuiltImage* built) {
    StatusOr<BuiltImage> b = BuildImage(spec);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    if (!b.ok()) return "";
    const PushTarget target{registry_->url(), "", "", "", ""};
    for (const BuiltBlob& blob : b->blobs) {
      StatusOr<Digest> d = PushBlob(target, repo, blob.data);
      EXPECT_TRUE(d.ok()) << d.status().ToString();
    }
    StatusOr<Digest> m = PushManifest(target, repo, "v1", b->top.media_type, b->top.data);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    *built = std::move(*b);
    return StrCat(proxy_->host(), "/", repo, ":v1");
  }

  // How many times the blob `d` was requested through the proxy.
  size_t Downloads(const Digest& d) const { return proxy_->transfers(d.str()).size(); }

  // Files a pull writes while it runs: content ingest files and unpack directories.
  std::vector<std::string> PartialFiles() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir_ / "root", ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const std::string p = it->path().string();
      if (p.find("/content/ingest/") != std::string::npos ||
          p.find("/snapshots/tmp/") != std::string::npos) {
        out.push_back(p);
      }
    }
    return out;
  }

  static RegistryServer* registry_;
  static std::string suite_error_;

  fs::path dir_;
  std::unique_ptr<ThrottleProxy> proxy_;
  std::unique_ptr<store::MetadataStore> db_;
  std::unique_ptr<image::ImageService> images_;
};

RegistryServer* ImagePullConcurrencyIT::registry_ = nullptr;
std::string ImagePullConcurrencyIT::suite_error_;

struct PullOutcome {
  StatusOr<image::ImageRecord> record = UnknownError("not pulled");
  image::PullStats stats;
};

TEST_F(ImagePullConcurrencyIT, ManyCallersOfOneImageShareOneDownloadOfEachBlob) {
  ImageSpec spec;
  spec.layers.push_back(RandomDataLayer(512 << 10, 2, 11, Compression::kNone));
  spec.layers.push_back(RandomDataLayer(128 << 10, 3, 12, Compression::kGzip));
  spec.layers.push_back(RandomDataLayer(64 << 10, 1, 13, Compression::kGzip));
  BuiltImage built;
  const std::string ref = Push("tsan/one", spec, &built);
  ASSERT_FALSE(ref.empty());

  constexpr int kCallers = 6;
  std::vector<PullOutcome> out(kCallers);
  {
    std::latch start(kCallers);
    std::vector<std::jthread> callers;
    for (int i = 0; i < kCallers; ++i) {
      callers.emplace_back([&, i] {
        start.arrive_and_wait();
        out[i].record = images_->Pull(ref, std::nullopt, &out[i].stats);
      });
    }
  }
  int shared = 0;
  for (int i = 0; i < kCallers; ++i) {
    ASSERT_TRUE(out[i].record.ok()) << "caller " << i << ": " << out[i].record.status().ToString();
    EXPECT_EQ(out[i].record->id, built.config_digest.str()) << "caller " << i;
    EXPECT_EQ(out[i].record->diff_ids, built.diff_ids) << "caller " << i;
    if (out[i].stats.shared) {
      ++shared;
      EXPECT_EQ(out[i].stats.bytes, 0u) << "caller " << i << " waited for the pull in flight";
    } else {
      EXPECT_GT(out[i].stats.bytes, 512u << 10) << "caller " << i << " did the download";
    }
  }
  EXPECT_EQ(shared, kCallers - 1) << "exactly one caller downloads, the others wait for it";
  for (const Digest& d : built.layer_digests) EXPECT_EQ(Downloads(d), 1u) << "layer " << d.str();
  EXPECT_EQ(Downloads(built.config_digest), 1u) << "config";
  for (const Digest& d : built.diff_ids) EXPECT_TRUE(images_->layers().Has(d)) << d.str();
  ASSERT_EQ(images_->List().size(), 1u);
  EXPECT_THAT(PartialFiles(), IsEmpty());
}

// Two images share their two lower layers; two callers pull each, all at once. Each shared
// layer is downloaded once for all four pulls, each image's own layer and config once.
TEST_F(ImagePullConcurrencyIT, ImagesSharingLayersDownloadEachLayerOnce) {
  const LayerSpec base0 = RandomDataLayer(512 << 10, 2, 21, Compression::kNone);
  const LayerSpec base1 = RandomDataLayer(256 << 10, 2, 22, Compression::kGzip);
  ImageSpec a, b;
  a.layers = {base0, base1, RandomDataLayer(64 << 10, 1, 23, Compression::kGzip)};
  b.layers = {base0, base1, RandomDataLayer(96 << 10, 1, 24, Compression::kGzip)};
  a.env = {"WHICH=a"};
  b.env = {"WHICH=b"};
  BuiltImage built_a, built_b;
  const std::string ref_a = Push("tsan/shared-a", a, &built_a);
  const std::string ref_b = Push("tsan/shared-b", b, &built_b);
  ASSERT_FALSE(ref_a.empty());
  ASSERT_FALSE(ref_b.empty());
  ASSERT_EQ(built_a.layer_digests[0], built_b.layer_digests[0]);
  ASSERT_EQ(built_a.layer_digests[1], built_b.layer_digests[1]);
  ASSERT_NE(built_a.layer_digests[2], built_b.layer_digests[2]);

  const std::vector<std::string> refs = {ref_a, ref_b, ref_a, ref_b};
  std::vector<PullOutcome> out(refs.size());
  {
    std::latch start(static_cast<ptrdiff_t>(refs.size()));
    std::vector<std::jthread> callers;
    for (size_t i = 0; i < refs.size(); ++i) {
      callers.emplace_back([&, i] {
        start.arrive_and_wait();
        out[i].record = images_->Pull(refs[i], std::nullopt, &out[i].stats);
      });
    }
  }
  for (size_t i = 0; i < refs.size(); ++i) {
    ASSERT_TRUE(out[i].record.ok()) << refs[i] << ": " << out[i].record.status().ToString();
    const BuiltImage& want = refs[i] == ref_a ? built_a : built_b;
    EXPECT_EQ(out[i].record->id, want.config_digest.str()) << refs[i];
    EXPECT_EQ(out[i].record->diff_ids, want.diff_ids) << refs[i];
  }
  // Of the two callers of one reference, one waited for the other.
  EXPECT_NE(out[0].stats.shared, out[2].stats.shared) << ref_a;
  EXPECT_NE(out[1].stats.shared, out[3].stats.shared) << ref_b;
  for (const BuiltImage* img : {&built_a, &built_b}) {
    for (const Digest& d : img->layer_digests) EXPECT_EQ(Downloads(d), 1u) << "layer " << d.str();
    EXPECT_EQ(Downloads(img->config_digest), 1u) << "config " << img->config_digest.str();
    for (const Digest& d : img->diff_ids) EXPECT_TRUE(images_->layers().Has(d)) << d.str();
  }
  std::vector<std::string> ids;
  for (const image::ImageRecord& r : images_->List()) ids.push_back(r.id);
  EXPECT_THAT(ids, UnorderedElementsAre(built_a.config_digest.str(), built_b.config_digest.str()));
  EXPECT_THAT(PartialFiles(), IsEmpty());

  // Removing one image keeps the layers the other still uses.
  IT_ASSERT_OK(images_->Remove(ref_a));
  for (const Digest& d : built_b.diff_ids) EXPECT_TRUE(images_->layers().Has(d)) << d.str();
  EXPECT_FALSE(images_->layers().Has(built_a.diff_ids[2]));
}

// One caller leaves while another still waits: the one that left gets CANCELLED at once; the
// download goes on to the end for the other, whose pull succeeds.
TEST_F(ImagePullConcurrencyIT, ACallerLeavesAndAnotherKeepsThePullGoing) {
  ImageSpec spec;
  spec.layers.push_back(RandomDataLayer(1 << 20, 1, 31, Compression::kNone));  // some 6.5 s
  BuiltImage built;
  const std::string ref = Push("tsan/leave-one", spec, &built);
  ASSERT_FALSE(ref.empty());

  PullOutcome patient;
  std::jthread patient_thread(
      [&] { patient.record = images_->Pull(ref, std::nullopt, &patient.stats); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::atomic<bool> gone{false};
  PullOutcome impatient;
  std::jthread impatient_thread([&] {
    impatient.record = images_->Pull(ref, std::nullopt, &impatient.stats, GoneWhen(gone));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  const auto left_at = Clock::now();
  gone = true;
  impatient_thread.join();
  const double leave_seconds = std::chrono::duration<double>(Clock::now() - left_at).count();
  EXPECT_EQ(impatient.record.status().code(), StatusCode::kCancelled)
      << impatient.record.status().ToString();
  EXPECT_LT(leave_seconds, 3.0) << "the caller that left waited for the download";
  EXPECT_TRUE(impatient.stats.shared);

  patient_thread.join();
  ASSERT_TRUE(patient.record.ok()) << patient.record.status().ToString();
  EXPECT_EQ(patient.record->id, built.config_digest.str());
  const std::vector<ThrottledTransfer> transfers = proxy_->transfers(built.layer_digests[0].str());
  ASSERT_EQ(transfers.size(), 1u) << "the two callers did not share one download";
  EXPECT_FALSE(transfers[0].client_closed);
  EXPECT_EQ(transfers[0].relayed_bytes, transfers[0].body_bytes);
  EXPECT_EQ(images_->List().size(), 1u);
  EXPECT_THAT(PartialFiles(), IsEmpty());
}

// Every caller leaves: the download is cut off within about a second, its partial files are
// removed, nothing is listed, and the next pull starts afresh and succeeds.
TEST_F(ImagePullConcurrencyIT, EveryCallerLeavesAndTheDownloadIsAborted) {
  ImageSpec spec;
  spec.layers.push_back(RandomDataLayer(2 << 20, 1, 41, Compression::kNone));  // some 13 s
  BuiltImage built;
  const std::string ref = Push("tsan/leave-all", spec, &built);
  ASSERT_FALSE(ref.empty());
  const std::string layer = built.layer_digests[0].str();

  constexpr int kCallers = 3;
  std::atomic<bool> gone{false};
  std::vector<PullOutcome> out(kCallers);
  {
    // Every caller is in the pull before they all leave, however loaded the machine.
    std::latch started(kCallers);
    std::vector<std::jthread> callers;
    for (int i = 0; i < kCallers; ++i) {
      callers.emplace_back([&, i] {
        started.count_down();
        out[i].record = images_->Pull(ref, std::nullopt, &out[i].stats, GoneWhen(gone));
      });
    }
    started.wait();
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    gone = true;
  }
  for (int i = 0; i < kCallers; ++i) {
    EXPECT_EQ(out[i].record.status().code(), StatusCode::kCancelled)
        << "caller " << i << ": " << out[i].record.status().ToString();
  }
  ASSERT_TRUE(proxy_->WaitForFinishedTransfer(layer, std::chrono::seconds(8)))
      << "the blob download was still running 8 s after every caller had gone";
  std::vector<ThrottledTransfer> transfers = proxy_->transfers(layer);
  ASSERT_EQ(transfers.size(), 1u);
  EXPECT_TRUE(transfers[0].client_closed);
  EXPECT_LT(transfers[0].relayed_bytes, transfers[0].body_bytes / 2) << "hung up late";
  EXPECT_THAT(PartialFiles(), IsEmpty()) << "partial downloads left behind";
  EXPECT_THAT(images_->List(), IsEmpty());
  EXPECT_FALSE(images_->layers().Has(built.diff_ids[0]));

  proxy_->set_throttled(false);
  StatusOr<image::ImageRecord> again = images_->Pull(ref, std::nullopt);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->id, built.config_digest.str());
  EXPECT_EQ(proxy_->transfers(layer).size(), 2u) << "the retry starts a download of its own";
  EXPECT_TRUE(images_->layers().Has(built.diff_ids[0]));
  EXPECT_THAT(PartialFiles(), IsEmpty());
}

// A restarted service (a new ImageService over the same root, as after a berthd restart) sees
// the images pulled before, and pulling them again at once from several threads downloads
// no layer again.
TEST_F(ImagePullConcurrencyIT, PullsAfterReopeningDownloadNoLayerAgain) {
  ImageSpec spec;
  spec.layers.push_back(RandomDataLayer(256 << 10, 2, 51, Compression::kGzip));
  spec.layers.push_back(RandomDataLayer(64 << 10, 1, 52, Compression::kGzip));
  BuiltImage built;
  const std::string ref = Push("tsan/reopen", spec, &built);
  ASSERT_FALSE(ref.empty());
  proxy_->set_throttled(false);
  StatusOr<image::ImageRecord> first = images_->Pull(ref, std::nullopt);
  ASSERT_TRUE(first.ok()) << first.status().ToString();

  images_.reset();
  db_.reset();
  ASSERT_NO_FATAL_FAILURE(OpenService());
  ASSERT_EQ(images_->List().size(), 1u);

  constexpr int kCallers = 4;
  std::vector<PullOutcome> out(kCallers);
  {
    std::latch start(kCallers);
    std::vector<std::jthread> callers;
    for (int i = 0; i < kCallers; ++i) {
      callers.emplace_back([&, i] {
        start.arrive_and_wait();
        out[i].record = images_->Pull(ref, std::nullopt, &out[i].stats);
        // Readers at the same time as the pulls.
        (void)images_->List();
        (void)images_->Find(ref);
      });
    }
  }
  for (int i = 0; i < kCallers; ++i) {
    ASSERT_TRUE(out[i].record.ok()) << out[i].record.status().ToString();
    EXPECT_EQ(out[i].record->id, built.config_digest.str());
  }
  for (const Digest& d : built.layer_digests) EXPECT_EQ(Downloads(d), 1u) << "layer " << d.str();
  EXPECT_EQ(images_->List().size(), 1u);
}

}  // namespace
}  // namespace berth::testing
