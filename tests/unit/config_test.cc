#include "config/config.h"

#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <filesystem>
#include <sstream>

#include "common/fs.h"

namespace berth::config {
namespace {

TEST(ConfigTest, DefaultsAreValid) {
  Config cfg = Config::Defaults();
  EXPECT_TRUE(cfg.Validate().ok());
  EXPECT_EQ(cfg.socket, "/run/berth/berth.sock");
  EXPECT_EQ(cfg.cni_bin_dirs, (std::vector<std::string>{"/opt/cni/bin", "/usr/lib/cni"}));
}

TEST(ConfigTest, TomlRoundTrip) {
  Config cfg;
  cfg.socket = "/tmp/x.sock";
  cfg.cni_bin_dirs = {"/a", "/b"};
  cfg.max_concurrent_downloads = 7;
  Config again;
  ASSERT_TRUE(MergeToml(cfg.ToToml(), "roundtrip", again).ok());
  EXPECT_EQ(again.socket, "/tmp/x.sock");
  EXPECT_EQ(again.cni_bin_dirs, cfg.cni_bin_dirs);
  EXPECT_EQ(again.max_concurrent_downloads, 7);
  EXPECT_EQ(again.ToToml(), cfg.ToToml());
}

TEST(ConfigTest, ValuesWithNewlinesRoundTrip) {
  Config cfg;
  cfg.handlers["odd"] = "\nleading newline";
  cfg.root = "two\nlines\n";
  Config again;
  ASSERT_TRUE(MergeToml(cfg.ToToml(), "roundtrip", again).ok()) << cfg.ToToml();
  EXPECT_EQ(again.handlers["odd"], "\nleading newline") << cfg.ToToml();
  EXPECT_EQ(again.root, "two\nlines\n");
  EXPECT_EQ(again.ToToml(), cfg.ToToml());
}

TEST(ConfigTest, ImageSocketIsOffByDefaultAndChecked) {
  Config cfg;
  EXPECT_EQ(cfg.image_socket, "");
  ASSERT_TRUE(MergeToml("[grpc]\nimage_socket = \"/run/berth/image.sock\"\n", "f.toml", cfg).ok());
  EXPECT_EQ(cfg.image_socket, "/run/berth/image.sock");
  EXPECT_TRUE(cfg.Validate().ok());
  Config again;
  ASSERT_TRUE(MergeToml(cfg.ToToml(), "roundtrip", again).ok());
  EXPECT_EQ(again.image_socket, "/run/berth/image.sock");

  cfg.image_socket = "relative.sock";
  Status s = cfg.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("grpc.image_socket"), std::string::npos) << s.message();
  cfg.image_socket = cfg.socket;
  s = cfg.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("must differ"), std::string::npos) << s.message();
  cfg.image_socket = "/" + std::string(120, 'x');
  EXPECT_EQ(cfg.Validate().code(), StatusCode::kInvalidArgument);
}

TEST(ConfigTest, PinnedImagesRoundTrip) {
  Config cfg;
  EXPECT_TRUE(cfg.pinned_images.empty());
  ASSERT_TRUE(
      MergeToml("[images]\npinned_images = [\"registry.k8s.io/*\", \"busybox:1.36\"]\n", "f", cfg)
          .ok());
  EXPECT_EQ(cfg.pinned_images, (std::vector<std::string>{"registry.k8s.io/*", "busybox:1.36"}));
  Config again;
  ASSERT_TRUE(MergeToml(cfg.ToToml(), "roundtrip", again).ok());
  EXPECT_EQ(again.pinned_images, cfg.pinned_images);
}

TEST(ConfigTest, UnknownKeyAndBadTypeRejected) {
  Config cfg;
  Status s = MergeToml("[grpc]\nsokcet = \"/x\"\n", "f.toml", cfg);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("grpc.sokcet"), std::string::npos);
  s = MergeToml("[registry]\nmax_concurrent_downloads = \"many\"\n", "f.toml", cfg);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  s = MergeToml("[grpc\n", "broken.toml", cfg);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("broken.toml"), std::string::npos);
  EXPECT_EQ(cfg.socket, Config().socket);  // nothing half-applied
}

// Found by the daemon_config fuzzer: a float for an integer setting reached a
// float-to-integer conversion that is undefined when out of range.
TEST(ConfigTest, IntegerSettingsRefuseFloatsAndOutOfRangeValues) {
  Config cfg;
  for (const char* value : {"5e30", "2.0", "4294967306", "-9223372036854775808"}) {
    Status s = MergeToml(std::string("[registry]\npull_progress_timeout_seconds = ") + value + "\n",
                         "f.toml", cfg);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << value;
    EXPECT_NE(s.message().find("registry.pull_progress_timeout_seconds"), std::string::npos)
        << s.message();
  }
  EXPECT_EQ(cfg.pull_progress_timeout_seconds, Config().pull_progress_timeout_seconds);
  ASSERT_TRUE(MergeToml("[registry]\npull_progress_timeout_seconds = 90\n", "f.toml", cfg).ok());
  EXPECT_EQ(cfg.pull_progress_timeout_seconds, 90);
}

TEST(ConfigTest, FileThenDropinsInOrder) {
  auto dir = std::filesystem::temp_directory_path() / ("berth-cfg-" + RandomHex(4));
  ASSERT_TRUE(MakeDirs(dir / "d").ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "main.toml", "[log]\nlevel = \"debug\"\n").ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "d" / "20-b.toml", "[log]\nlevel = \"warn\"\n").ok());
  ASSERT_TRUE(
      WriteFileAtomic(dir / "d" / "10-a.toml", "[log]\nlevel = \"error\"\n[paths]\nroot = \"/r\"\n")
          .ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "d" / "ignored.conf", "garbage").ok());
  Config cfg;
  ASSERT_TRUE(LoadFiles(dir / "main.toml", true, dir / "d", cfg).ok());
  EXPECT_EQ(cfg.log_level, "warn");
  EXPECT_EQ(cfg.root, "/r");
  Config other;
  EXPECT_EQ(LoadFiles(dir / "missing.toml", true, "", other).code(), StatusCode::kNotFound);
  EXPECT_TRUE(LoadFiles(dir / "missing.toml", false, "", other).ok());
  ASSERT_TRUE(RemoveAll(dir).ok());
}

TEST(ConfigTest, ValidateNamesTheSetting) {
  Config cfg;
  cfg.root = "relative";
  Status s = cfg.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("paths.root"), std::string::npos);
  cfg = Config();
  cfg.log_level = "loud";
  EXPECT_FALSE(cfg.Validate().ok());
  cfg = Config();
  cfg.cgroup_driver = "upstart";
  EXPECT_FALSE(cfg.Validate().ok());
}

TEST(ConfigTest, RuntimeHandlers) {
  Config cfg;
  EXPECT_EQ(cfg.handlers.at("runc"), "runc");
  EXPECT_EQ(cfg.handlers.at("crun"), "crun");
  ASSERT_TRUE(MergeToml(R"(
[runtime]
default_handler = "kata"
[runtime.handlers]
kata = "/opt/kata/bin/kata-runtime"
crun = ""
)",
                        "test.toml", cfg)
                  .ok());
  EXPECT_EQ(cfg.default_handler, "kata");
  EXPECT_EQ(cfg.handlers, (std::map<std::string, std::string>{
                              {"kata", "/opt/kata/bin/kata-runtime"}, {"runc", "runc"}}));
  EXPECT_TRUE(cfg.Validate().ok());
  // Round trip through the printed TOML.
  Config again;
  ASSERT_TRUE(MergeToml(cfg.ToToml(), "printed", again).ok());
  EXPECT_EQ(again.handlers, cfg.handlers);
  EXPECT_EQ(again.default_handler, "kata");

  cfg.default_handler = "gvisor";
  Status s = cfg.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("gvisor"), std::string::npos) << s.message();
  cfg.default_handler = "";
  cfg.handlers["Bad_Name"] = "runc";
  s = cfg.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("Bad_Name"), std::string::npos) << s.message();
  EXPECT_FALSE(MergeToml("[runtime.handlers]\nrunc = 3\n", "t", cfg).ok());
}

TEST(ConfigTest, StreamingServerTls) {
  Config cfg = Config::Defaults();
  EXPECT_EQ(cfg.stream_address, "127.0.0.1:0");
  EXPECT_TRUE(cfg.stream_tls_cert_file.empty());
  ASSERT_TRUE(MergeToml("[stream]\ntls_cert_file = \"/etc/berth/stream.crt\"\n", "t", cfg).ok());
  Status s = cfg.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("stream.tls_key_file"), std::string::npos) << s;
  ASSERT_TRUE(MergeToml("[stream]\ntls_key_file = \"/etc/berth/stream.key\"\n", "t", cfg).ok());
  EXPECT_TRUE(cfg.Validate().ok());
  Config again = Config::Defaults();
  ASSERT_TRUE(MergeToml(cfg.ToToml(), "round trip", again).ok());
  EXPECT_EQ(again.stream_tls_cert_file, "/etc/berth/stream.crt");
  EXPECT_EQ(again.stream_tls_key_file, "/etc/berth/stream.key");
  cfg.stream_tls_key_file = "relative.key";
  EXPECT_FALSE(cfg.Validate().ok());
}

TEST(ConfigTest, MetricsAndEventsSettings) {
  Config cfg;
  ASSERT_TRUE(MergeToml("[metrics]\naddress = \"127.0.0.1:9153\"\n"
                        "[events]\nqueue_length = 16\n",
                        "m.toml", cfg)
                  .ok());
  EXPECT_EQ(cfg.metrics_address, "127.0.0.1:9153");
  EXPECT_EQ(cfg.events_queue_length, 16);
  EXPECT_TRUE(cfg.Validate().ok());
  Config again;
  ASSERT_TRUE(MergeToml(cfg.ToToml(), "roundtrip", again).ok());
  EXPECT_EQ(again.ToToml(), cfg.ToToml());

  cfg.metrics_address = "0.0.0.0:9153";
  Status s = cfg.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("metrics.allow_non_loopback"), std::string::npos) << s.message();
  ASSERT_TRUE(MergeToml("[metrics]\nallow_non_loopback = true\n", "m.toml", cfg).ok());
  EXPECT_TRUE(cfg.Validate().ok());
  EXPECT_EQ(MergeToml("[metrics]\nallow_non_loopback = \"yes\"\n", "m.toml", cfg).code(),
            StatusCode::kInvalidArgument);

  cfg.metrics_address = "127.0.0.1";
  EXPECT_NE(cfg.Validate().message().find("metrics.address"), std::string::npos);
  cfg.metrics_address = "";
  cfg.events_queue_length = 0;
  EXPECT_NE(cfg.Validate().message().find("events.queue_length"), std::string::npos);
}

TEST(ConfigTest, ParseListenAddress) {
  struct Case {
    const char* in;
    const char* ip;
    int port;
    bool loopback;
  } ok[] = {{"127.0.0.1:9153", "127.0.0.1", 9153, true},
            {"127.1.2.3:0", "127.1.2.3", 0, true},
            {"localhost:80", "127.0.0.1", 80, true},
            {"[::1]:9153", "::1", 9153, true},
            {"[::]:9153", "::", 9153, false},
            {"0.0.0.0:9153", "0.0.0.0", 9153, false},
            {":9153", "0.0.0.0", 9153, false},
            {"10.1.2.3:65535", "10.1.2.3", 65535, false}};
  for (const Case& c : ok) {
    StatusOr<ListenAddress> a = ParseListenAddress(c.in);
    ASSERT_TRUE(a.ok()) << c.in << ": " << a.status().ToString();
    EXPECT_EQ(a->ip, c.ip) << c.in;
    EXPECT_EQ(a->port, c.port) << c.in;
    EXPECT_EQ(a->loopback, c.loopback) << c.in;
  }
  for (const char* bad :
       {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:9x",
        "host.example:80", "[::1:80", "[zz]:80", "::1:80", "1.2.3.4.5:80", "127.0.0.1:123456"}) {
    EXPECT_FALSE(ParseListenAddress(bad).ok()) << bad;
  }
}

// `berthd config default`: every setting has a comment, and the commented file loads back to
// the configuration it was printed from.
TEST(ConfigTest, CommentedTomlDocumentsEverySettingAndLoadsBack) {
  EXPECT_TRUE(UndocumentedSettings().empty())
      << "settings without a comment in src/config/config_doc.cc: "
      << ::testing::PrintToString(UndocumentedSettings());
  const std::string text = Config::Defaults().ToCommentedToml();
  for (std::string_view key : {"socket = ", "[runtime.handlers]", "default_network = true",
                               "default_network_template = \"\"", "# Unix socket of the CRI"}) {
    EXPECT_NE(text.find(key), std::string::npos) << key << " missing in:\n" << text;
  }
  // Sections in the documented order, grpc first.
  EXPECT_LT(text.find("[grpc]"), text.find("[paths]"));
  EXPECT_LT(text.find("[paths]"), text.find("[runtime]"));
  // Every key of the effective configuration is in it with its default value (a key left
  // out would still load back, from the defaults, so compare the documents themselves).
  toml::table printed = toml::parse(text);
  toml::table effective = toml::parse(Config::Defaults().ToToml());
  EXPECT_EQ(printed, effective) << text;
  // A comment right above every setting (or above its sub-table's header).
  std::istringstream lines(text);
  std::string line, previous, header;
  int settings = 0;
  while (std::getline(lines, line)) {
    if (line.starts_with("[")) header = line;
    // The entries of a sub-table ([runtime.handlers]) share the comment above its header.
    const bool in_subtable = header.find('.') != std::string::npos;
    if (line.starts_with("[") || (!line.empty() && line[0] != '#' && !in_subtable)) {
      EXPECT_TRUE(previous.starts_with("# ")) << "no comment above \"" << line << "\"";
      ++settings;
    }
    previous = line;
  }
  EXPECT_GE(settings, 20);
  Config again;
  ASSERT_TRUE(MergeToml(text, "default", again).ok()) << text;
  EXPECT_EQ(again.ToToml(), Config::Defaults().ToToml());

  // A changed configuration (with a removed default handler and odd characters) too.
  Config cfg;
  cfg.socket = "/run/x \"quoted\"\\.sock";
  cfg.handlers.erase("crun");
  cfg.handlers["kata"] = "/opt/kata/bin/kata-runtime";
  cfg.cni_default_network = false;
  cfg.registry_auth_files = {};
  Config loaded;
  ASSERT_TRUE(MergeToml(cfg.ToCommentedToml(), "changed", loaded).ok()) << cfg.ToCommentedToml();
  EXPECT_EQ(loaded.ToToml(), cfg.ToToml());
  EXPECT_EQ(loaded.socket, cfg.socket);
  EXPECT_FALSE(loaded.handlers.contains("crun"));
}

TEST(ConfigTest, DefaultNetworkSettings) {
  Config cfg;
  EXPECT_TRUE(cfg.cni_default_network);
  EXPECT_EQ(cfg.cni_default_network_template, "");
  ASSERT_TRUE(MergeToml("[cni]\ndefault_network = false\ndefault_network_template = \"/t.json\"\n",
                        "t", cfg)
                  .ok());
  EXPECT_FALSE(cfg.cni_default_network);
  EXPECT_EQ(cfg.cni_default_network_template, "/t.json");
  EXPECT_TRUE(cfg.Validate().ok());
  EXPECT_FALSE(MergeToml("[cni]\ndefault_network = \"yes\"\n", "t", cfg).ok());
  cfg.cni_default_network_template = "relative.json";
  Status s = cfg.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("cni.default_network_template"), std::string::npos) << s.message();
}

TEST(ConfigTest, SplitColonList) {
  EXPECT_EQ(SplitColonList("/a::/b:"), (std::vector<std::string>{"/a", "/b"}));
  EXPECT_TRUE(SplitColonList("").empty());
}

}  // namespace
}  // namespace berth::config
