// Integration tests of the CRI RuntimeService: pod sandboxes and containers driven through a
// real berthd over its gRPC Unix socket, with runc, berth-monitor, berth-pause and (for the
// bridge test) Debian's CNI plugins, running a busybox image the suite builds and serves from
// a registry on 127.0.0.1.
//
// Every test walks a lifecycle and checks the state the CRI API reports after each step, and
// ends by checking that nothing of it is left on the host: no mount under the berthd temp dir,
// no process of its containers or pods (by id on the command line, by PID namespace), nothing
// in the runc state dir, no container cgroup, no bundle or writable layer; for CNI pods the
// host-local address released and the veth gone.
//
// Needs root (namespaces, mounts, runc). Traffic goes only to 127.0.0.1 and to the address of
// the pod the bridge test creates.
//
// berthd_process.h comes first: the CRI header it includes must precede <signal.h>.
// clang-format off
#include "support/berthd_process.h"
// clang-format on

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/digest.h"
#include "common/fs.h"
#include "common/process.h"
#include "common/status.h"
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
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using Clock = std::chrono::steady_clock;

#define IT_ASSERT_OK(expr)                                                         \
  do {                                                                             \
    const ::berth::Status it_status_ = (expr);                                     \
    ASSERT_TRUE(it_status_.ok()) << #expr << " failed: " << it_status_.ToString(); \
  } while (0)

#define IT_ASSERT_GRPC_OK(expr)                                               \
  do {                                                                        \
    const ::grpc::Status it_grpc_ = (expr);                                   \
    ASSERT_TRUE(it_grpc_.ok()) << #expr << " failed: " << Describe(it_grpc_); \
  } while (0)

#define IT_EXPECT_GRPC_OK(expr)                                               \
  do {                                                                        \
    const ::grpc::Status it_grpc_ = (expr);                                   \
    EXPECT_TRUE(it_grpc_.ok()) << #expr << " failed: " << Describe(it_grpc_); \
  } while (0)

constexpr auto kRpcTimeout = std::chrono::seconds(60);
constexpr char kCniBinDir[] = "/usr/lib/cni";
constexpr char kRepo[] = "it/busybox";
constexpr char kTag[] = "runtime";
constexpr char kPodNamespace[] = "berth-it";

std::string Describe(const grpc::Status& s) {
  return StrCat("gRPC code ", static_cast<int>(s.error_code()), ": ", s.error_message());
}

void SetDeadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
}

bool HasApplet(const std::string& name) {
  const auto& a = BusyboxApplets();
  return std::find(a.begin(), a.end(), name) != a.end();
}

// Names in a directory (empty when it does not exist).
std::vector<std::string> DirEntries(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

bool Exists(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

std::string ReadOr(const fs::path& p, std::string fallback = "") {
  StatusOr<std::string> s = ReadFile(p);
  return s.ok() ? *s : fallback;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

// Mount points (unescaped) of /proc/self/mountinfo at or below `dir`.
std::multiset<std::string> MountsUnder(const fs::path& dir) {
  std::multiset<std::string> out;
  const std::string prefix = dir.string();
  std::string text = ReadOr("/proc/self/mountinfo");
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    // Fields: id parent major:minor root mount_point ...
    size_t pos = 0;
    std::string field;
    for (int i = 0; i < 5; ++i) {
      size_t sp = line.find(' ', pos);
      field = line.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos);
      if (sp == std::string::npos) break;
      pos = sp + 1;
    }
    std::string point;
    for (size_t i = 0; i < field.size(); ++i) {
      if (field[i] == '\\' && i + 3 < field.size()) {
        int v = (field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0');
        point += static_cast<char>(v);
        i += 3;
      } else {
        point += field[i];
      }
    }
    if (point == prefix || point.starts_with(prefix + "/")) out.insert(point);
  }
  return out;
}

// "pid:[4026532...]" for a process, "" when it is gone.
std::string PidNamespaceOf(int pid) {
  std::error_code ec;
  fs::path target = fs::read_symlink(StrCat("/proc/", pid, "/ns/pid"), ec);
  return ec ? "" : target.string();
}

// The namespace id a pinned nsfs file (a bind mount of /proc/<pid>/ns/pid) stands for.
std::string PinnedNamespaceId(const fs::path& pinned) {
  struct stat st;
  if (::stat(pinned.c_str(), &st) != 0) return "";
  return StrCat("pid:[", static_cast<unsigned long long>(st.st_ino), "]");
}

std::string CmdlineOf(int pid) {
  std::string c = ReadOr(StrCat("/proc/", pid, "/cmdline"));
  std::replace(c.begin(), c.end(), '\0', ' ');
  return Trim(c);
}

std::vector<int> AllPids() {
  std::vector<int> out;
  for (const std::string& name : DirEntries("/proc")) {
    if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) {
      out.push_back(std::stoi(name));
    }
  }
  return out;
}

int CountOf(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

// A CRI log record: "<RFC 3339 time> <stream> <P|F> <content>".
bool LogHasRecord(const std::string& log, const std::string& stream, const std::string& content) {
  static const std::regex kTime(
      R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$)");
  size_t start = 0;
  while (start < log.size()) {
    size_t end = log.find('\n', start);
    if (end == std::string::npos) end = log.size();
    std::string line = log.substr(start, end - start);
    start = end + 1;
    size_t sp = line.find(' ');
    if (sp == std::string::npos) continue;
    if (!std::regex_match(line.substr(0, sp), kTime)) continue;
    if (line.substr(sp + 1) == StrCat(stream, " F ", content)) return true;
  }
  return false;
}

// IPv4 a.b.c.d -> host-order integer; nullopt when malformed.
std::optional<uint32_t> ParseIpv4(const std::string& s) {
  in_addr a{};
  if (::inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

// Whether any IPv4 route of the host overlaps `net`/`prefix` (so the test never shadows a
// real network of the machine).
bool OverlapsHostRoute(uint32_t net, int prefix) {
  StatusOr<ProcessResult> r = RunProcess({"ip", "-4", "route", "show", "table", "all"});
  if (!r.ok() || r->exit_code != 0) return true;  // unknown: pick another
  std::string text = r->out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    std::string first = line.substr(0, line.find(' '));
    if (first == "default" || first.empty()) continue;
    if (first == "local" || first == "broadcast" || first == "unicast") {
      size_t a = line.find(' ') + 1;
      first = line.substr(a, line.find(' ', a) - a);
    }
    int p = 32;
    size_t slash = first.find('/');
    if (slash != std::string::npos) {
      p = std::atoi(first.c_str() + slash + 1);
      first = first.substr(0, slash);
    }
    std::optional<uint32_t> other = ParseIpv4(first);
    if (!other) continue;
    int common = std::min(p, prefix);
    uint32_t mask = common == 0 ? 0 : ~uint32_t{0} << (32 - common);
    if ((*other & mask) == (net & mask)) return true;
  }
  return false;
}

// Connects to ip:port (TCP), sends `send`, half-closes, and returns everything read until EOF.
StatusOr<std::string> TcpExchange(const std::string& ip, int port, const std::string& send,
                                  std::chrono::milliseconds timeout) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    return InvalidArgumentError(StrCat("bad IPv4 address ", ip));
  }
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoStatus(errno, StrCat("connect ", ip, ":", port));
  }
  if (::send(fd.get(), send.data(), send.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(send.size())) {
    return ErrnoStatus(errno, StrCat("send to ", ip, ":", port));
  }
  std::string got;
  char buf[4096];
  auto deadline = Clock::now() + timeout;
  bool shut = false;
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
      // nc half-closes after its stdin ("pong") ended; close our side once it answered.
      if (!shut && got.find('\n') != std::string::npos) {
        ::shutdown(fd.get(), SHUT_WR);
        shut = true;
      }
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (Clock::now() >= deadline || errno == EAGAIN || errno == EWOULDBLOCK) {
      return DeadlineExceededError(StrCat("no EOF from ", ip, ":", port, " (got \"", got, "\")"));
    }
    return ErrnoStatus(errno, StrCat("recv from ", ip, ":", port));
  }
  return got;
}

Status PushImage(const PushTarget& target, const std::string& repo, const std::string& tag,
                 const BuiltImage& image) {
  for (const BuiltBlob& b : image.blobs) {
    ASSIGN_OR_RETURN(Digest d, PushBlob(target, repo, b.data));
    if (d != b.digest) return InternalError(StrCat("pushed blob hashes to ", d.str()));
  }
  for (const BuiltBlob& m : image.child_manifests) {
    RETURN_IF_ERROR(PushManifest(target, repo, m.digest.str(), m.media_type, m.data).status());
  }
  return PushManifest(target, repo, tag, image.top.media_type, image.top.data).status();
}

class RuntimeServiceIT : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      suite_error_ = "skip: runtime integration tests need root";
      return;
    }
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
    s = PushImage(PushTarget{registry_->url(), "", "", "", ""}, kRepo, kTag, *busybox_);
    if (!s.ok()) suite_error_ = StrCat("push busybox: ", s.ToString());
  }

  static void TearDownTestSuite() {
    delete busybox_;
    busybox_ = nullptr;
    delete registry_;
    registry_ = nullptr;
  }

  void SetUp() override {
    if (suite_error_.starts_with("skip: ")) GTEST_SKIP() << suite_error_;
    ASSERT_TRUE(suite_error_.empty()) << suite_error_;
    berthd_ = std::make_unique<BerthdProcess>(BERTHD_PATH);
    IT_ASSERT_OK(berthd_->AddRegistryHost(registry_->host(), registry_->url()));
    IT_ASSERT_OK(berthd_->Start(DefaultArgs()));
    image_ = StrCat(registry_->host(), "/", kRepo, ":", kTag);
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::PullImageRequest req;
    req.mutable_image()->set_image(image_);
    cri::PullImageResponse resp;
    grpc::Status g = berthd_->images().PullImage(&ctx, req, &resp);
    ASSERT_TRUE(g.ok()) << "PullImage(" << image_ << "): " << Describe(g);
    ASSERT_EQ(resp.image_ref(), busybox_->config_digest.str());
  }

  void TearDown() override {
    if (!berthd_) return;
    if (berthd_->running()) {
      // A test that failed half-way leaves pods behind: remove them, so that no container of
      // this test outlives it.
      for (const cri::PodSandbox& p : ListPods(cri::PodSandboxFilter(), /*expect_ok=*/false)) {
        grpc::Status s = RemovePod(p.id());
        EXPECT_TRUE(s.ok()) << "clean-up RemovePodSandbox(" << p.id() << "): " << Describe(s);
      }
      Status s = berthd_->Stop();
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    if (HasFailure()) {
      std::cerr << "--- berthd log (tail) ---\n" << berthd_->LogTail(16000) << "\n";
      for (const std::string& c : DirEntries(berthd_->state() / "containers")) {
        std::string log = ReadOr(berthd_->state() / "containers" / c / "monitor.log");
        if (!log.empty()) std::cerr << "--- monitor.log of " << c << " ---\n" << log << "\n";
      }
    }
    for (auto it = cleanups_.rbegin(); it != cleanups_.rend(); ++it) (*it)();
    cleanups_.clear();
    // berthd keeps <state>/netns bound onto itself (as iproute2 does with /run/netns) and
    // never unmounts it; undo that so the temp dir can be removed.
    const fs::path netns = berthd_->state() / "netns";
    for (int i = 0; i < 8 && MountsUnder(netns).count(netns.string()) > 0; ++i) {
      ::umount2(netns.c_str(), MNT_DETACH);
    }
    EXPECT_THAT(MountsUnder(berthd_->dir()), IsEmpty())
        << "mounts left under the berthd temp dir after the daemon stopped";
    berthd_.reset();
  }

  static std::vector<std::string> DefaultArgs() { return {"--cni-bin-dir", kCniBinDir}; }

  fs::path LogDir() const { return berthd_->dir() / "pod-logs"; }

  // Configs -------------------------------------------------------------------------------

  cri::PodSandboxConfig PodConfig(const std::string& name, cri::NamespaceMode network,
                                  cri::NamespaceMode pid) {
    cri::PodSandboxConfig c;
    auto* md = c.mutable_metadata();
    md->set_name(name);
    md->set_uid(StrCat("uid-", name, "-", RandomHex(4)));
    md->set_namespace_(kPodNamespace);
    md->set_attempt(1);
    c.set_log_directory((LogDir() / name).string());
    (*c.mutable_labels())["app"] = name;
    (*c.mutable_labels())["berth.io/suite"] = "runtime-it";
    (*c.mutable_annotations())["berth.io/note"] = "kept as given: spaces, = signs, \"quotes\", ü";
    (*c.mutable_annotations())["empty"] = "";
    auto* ns = c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
    ns->set_network(network);
    ns->set_pid(pid);
    ns->set_ipc(cri::POD);
    return c;
  }

  cri::ContainerConfig CtrConfig(const std::string& name, std::vector<std::string> command) {
    cri::ContainerConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_image()->set_image(image_);
    for (auto& a : command) c.add_command(std::move(a));
    c.set_log_path(name + ".log");
    (*c.mutable_labels())["ctr"] = name;
    (*c.mutable_annotations())["berth.io/ctr-note"] = "annotation of " + name;
    return c;
  }

  // CRI calls -----------------------------------------------------------------------------

  grpc::Status RunPod(const cri::PodSandboxConfig& config, std::string* id,
                      const std::string& handler = "") {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::RunPodSandboxRequest req;
    *req.mutable_config() = config;
    req.set_runtime_handler(handler);
    cri::RunPodSandboxResponse resp;
    grpc::Status s = berthd_->runtime().RunPodSandbox(&ctx, req, &resp);
    if (s.ok()) {
      *id = resp.pod_sandbox_id();
      pod_ids_.insert(*id);
      // The pinned PID namespace of a pid-mode-POD pod, to look for its processes later.
      std::string ns = PinnedNamespaceId(berthd_->state() / "sandboxes" / *id / "pidns");
      if (!ns.empty()) tracked_pidns_.insert(ns);
    }
    return s;
  }

  grpc::Status StopPod(const std::string& id) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    cri::StopPodSandboxResponse resp;
    return berthd_->runtime().StopPodSandbox(&ctx, req, &resp);
  }

  grpc::Status RemovePod(const std::string& id) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    cri::RemovePodSandboxResponse resp;
    return berthd_->runtime().RemovePodSandbox(&ctx, req, &resp);
  }

  grpc::Status PodStatus(const std::string& id, cri::PodSandboxStatusResponse* resp,
                         bool verbose = false) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(id);
    req.set_verbose(verbose);
    return berthd_->runtime().PodSandboxStatus(&ctx, req, resp);
  }

  std::optional<cri::PodSandboxStatus> PodStatusOf(const std::string& id) {
    cri::PodSandboxStatusResponse resp;
    grpc::Status s = PodStatus(id, &resp);
    EXPECT_TRUE(s.ok()) << "PodSandboxStatus(" << id << "): " << Describe(s);
    if (!s.ok()) return std::nullopt;
    return resp.status();
  }

  std::vector<cri::PodSandbox> ListPods(const cri::PodSandboxFilter& filter,
                                        bool expect_ok = true) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ListPodSandboxRequest req;
    *req.mutable_filter() = filter;
    cri::ListPodSandboxResponse resp;
    grpc::Status s = berthd_->runtime().ListPodSandbox(&ctx, req, &resp);
    if (expect_ok) {
      EXPECT_TRUE(s.ok()) << "ListPodSandbox: " << Describe(s);
    }
    return {resp.items().begin(), resp.items().end()};
  }

  std::vector<std::string> PodIds(const cri::PodSandboxFilter& filter = {}) {
    std::vector<std::string> out;
    for (const auto& p : ListPods(filter)) out.push_back(p.id());
    return out;
  }

  grpc::Status CreateCtr(const std::string& pod_id, const cri::PodSandboxConfig& pod,
                         const cri::ContainerConfig& config, std::string* id) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    *req.mutable_config() = config;
    *req.mutable_sandbox_config() = pod;
    cri::CreateContainerResponse resp;
    grpc::Status s = berthd_->runtime().CreateContainer(&ctx, req, &resp);
    if (s.ok()) {
      *id = resp.container_id();
      ctr_ids_.insert(*id);
    }
    return s;
  }

  grpc::Status StartCtr(const std::string& id) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::StartContainerRequest req;
    req.set_container_id(id);
    cri::StartContainerResponse resp;
    grpc::Status s = berthd_->runtime().StartContainer(&ctx, req, &resp);
    if (s.ok()) TrackContainerProcess(id);
    return s;
  }

  grpc::Status StopCtr(const std::string& id, int64_t timeout) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout(timeout);
    cri::StopContainerResponse resp;
    return berthd_->runtime().StopContainer(&ctx, req, &resp);
  }

  grpc::Status RemoveCtr(const std::string& id) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::RemoveContainerRequest req;
    req.set_container_id(id);
    cri::RemoveContainerResponse resp;
    return berthd_->runtime().RemoveContainer(&ctx, req, &resp);
  }

  grpc::Status CtrStatus(const std::string& id, cri::ContainerStatusResponse* resp,
                         bool verbose = false) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ContainerStatusRequest req;
    req.set_container_id(id);
    req.set_verbose(verbose);
    return berthd_->runtime().ContainerStatus(&ctx, req, resp);
  }

  std::optional<cri::ContainerStatus> CtrStatusOf(const std::string& id) {
    cri::ContainerStatusResponse resp;
    grpc::Status s = CtrStatus(id, &resp);
    EXPECT_TRUE(s.ok()) << "ContainerStatus(" << id << "): " << Describe(s);
    if (!s.ok()) return std::nullopt;
    return resp.status();
  }

  // The "info" JSON of a verbose status (discarded JSON when absent).
  nlohmann::json CtrInfo(const std::string& id) {
    cri::ContainerStatusResponse resp;
    grpc::Status s = CtrStatus(id, &resp, /*verbose=*/true);
    EXPECT_TRUE(s.ok()) << "verbose ContainerStatus(" << id << "): " << Describe(s);
    auto it = resp.info().find("info");
    if (!s.ok() || it == resp.info().end())
      return nlohmann::json(nlohmann::json::value_t::discarded);
    return nlohmann::json::parse(it->second, nullptr, false);
  }

  nlohmann::json PodInfo(const std::string& id) {
    cri::PodSandboxStatusResponse resp;
    grpc::Status s = PodStatus(id, &resp, /*verbose=*/true);
    EXPECT_TRUE(s.ok()) << "verbose PodSandboxStatus(" << id << "): " << Describe(s);
    auto it = resp.info().find("info");
    if (!s.ok() || it == resp.info().end())
      return nlohmann::json(nlohmann::json::value_t::discarded);
    return nlohmann::json::parse(it->second, nullptr, false);
  }

  int CtrPid(const std::string& id) {
    nlohmann::json info = CtrInfo(id);
    if (info.is_discarded() || !info.contains("pid") || !info["pid"].is_number()) return 0;
    return info["pid"].get<int>();
  }

  // Remembers the PID namespace of a started container, so that ExpectNoLeaks finds any
  // process left in it.
  void TrackContainerProcess(const std::string& id) {
    int pid = CtrPid(id);
    if (pid <= 0) return;
    std::string ns = PidNamespaceOf(pid);
    if (!ns.empty() && ns != PidNamespaceOf(::getpid())) tracked_pidns_.insert(ns);
  }

  std::vector<cri::Container> ListCtrs(const cri::ContainerFilter& filter = {}) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ListContainersRequest req;
    *req.mutable_filter() = filter;
    cri::ListContainersResponse resp;
    grpc::Status s = berthd_->runtime().ListContainers(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << "ListContainers: " << Describe(s);
    return {resp.containers().begin(), resp.containers().end()};
  }

  std::vector<std::string> CtrIds(const cri::ContainerFilter& filter = {}) {
    std::vector<std::string> out;
    for (const auto& c : ListCtrs(filter)) out.push_back(c.id());
    return out;
  }

  grpc::Status Exec(const std::string& id, std::vector<std::string> cmd, int64_t timeout,
                    cri::ExecSyncResponse* resp) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ExecSyncRequest req;
    req.set_container_id(id);
    for (auto& a : cmd) req.add_cmd(std::move(a));
    req.set_timeout(timeout);
    return berthd_->runtime().ExecSync(&ctx, req, resp);
  }

  // stdout of a command that must succeed (exit 0); failures are recorded.
  std::string ExecOut(const std::string& id, std::vector<std::string> cmd) {
    const std::string what = ::testing::PrintToString(cmd);
    cri::ExecSyncResponse resp;
    grpc::Status s = Exec(id, std::move(cmd), 10, &resp);
    EXPECT_TRUE(s.ok()) << "ExecSync " << what << ": " << Describe(s);
    EXPECT_EQ(resp.exit_code(), 0) << "ExecSync " << what << " stderr: " << resp.stderr();
    return resp.stdout();
  }

  // Polls ContainerStatus until `state`; returns the last status seen.
  cri::ContainerStatus WaitForState(const std::string& id, cri::ContainerState state,
                                    std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    cri::ContainerStatus last;
    for (;;) {
      cri::ContainerStatusResponse resp;
      grpc::Status s = CtrStatus(id, &resp);
      if (s.ok()) last = resp.status();
      if ((s.ok() && last.state() == state) || Clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(last.state(), state)
        << "container " << id << " did not reach " << cri::ContainerState_Name(state) << " in time";
    return last;
  }

  std::string WaitForLog(const fs::path& path, const std::function<bool(const std::string&)>& done,
                         std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    std::string log;
    for (;;) {
      log = ReadOr(path);
      if (done(log) || Clock::now() >= deadline) return log;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // Leak checks -----------------------------------------------------------------------------

  // Everything of the test's pods and containers is gone from the host. Call after the last
  // RemovePodSandbox, while berthd still runs.
  void ExpectNoLeaks(const std::string& when) {
    SCOPED_TRACE("leak check " + when);
    const fs::path netns_dir = berthd_->state() / "netns";
    std::vector<std::string> mounts;
    for (const std::string& m : MountsUnder(berthd_->dir())) {
      if (m != netns_dir.string()) mounts.push_back(m);  // berthd's own, see TearDown
    }
    EXPECT_THAT(mounts, IsEmpty()) << "mounts leaked under " << berthd_->dir();

    // Processes: the monitor and any runc of a container name its id; processes inside a
    // container or pod are found by PID namespace. Exits are asynchronous: allow a moment.
    std::vector<std::string> leaked;
    auto deadline = Clock::now() + std::chrono::seconds(3);
    do {
      leaked.clear();
      for (int pid : AllPids()) {
        if (pid == ::getpid()) continue;
        std::string cmdline = CmdlineOf(pid);
        std::string ns = PidNamespaceOf(pid);
        bool hit = !ns.empty() && tracked_pidns_.contains(ns);
        for (const auto& id : ctr_ids_) hit |= cmdline.find(id) != std::string::npos;
        for (const auto& id : pod_ids_) hit |= cmdline.find(id) != std::string::npos;
        if (hit) leaked.push_back(StrCat(pid, " [", ns, "] ", cmdline));
      }
      if (leaked.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (Clock::now() < deadline);
    EXPECT_THAT(leaked, IsEmpty()) << "processes of the test's containers or pods remain";

    EXPECT_THAT(DirEntries(berthd_->state() / "runc"), IsEmpty()) << "runc state dir not empty";
    EXPECT_THAT(DirEntries(berthd_->state() / "containers"), IsEmpty()) << "bundles left";
    EXPECT_THAT(DirEntries(berthd_->root() / "containers"), IsEmpty()) << "writable layers left";
    EXPECT_THAT(DirEntries(berthd_->state() / "sandboxes"), IsEmpty()) << "sandbox dirs left";
    EXPECT_THAT(DirEntries(netns_dir), IsEmpty()) << "pinned network namespaces left";
    for (const auto& id : ctr_ids_) {
      std::vector<fs::path> cgroups = {fs::path("/sys/fs/cgroup") / id};
      for (const std::string& ctrl : DirEntries("/sys/fs/cgroup")) {
        cgroups.push_back(fs::path("/sys/fs/cgroup") / ctrl / id);
      }
      for (const fs::path& cg : cgroups) EXPECT_FALSE(Exists(cg)) << "cgroup left: " << cg;
    }
  }

  static RegistryServer* registry_;
  static BuiltImage* busybox_;
  static std::string suite_error_;

  std::unique_ptr<BerthdProcess> berthd_;
  std::string image_;
  std::set<std::string> ctr_ids_, pod_ids_, tracked_pidns_;
  std::vector<std::function<void()>> cleanups_;  // run in reverse after berthd stopped
};

RegistryServer* RuntimeServiceIT::registry_ = nullptr;
BuiltImage* RuntimeServiceIT::busybox_ = nullptr;
std::string RuntimeServiceIT::suite_error_;

cri::PodSandboxFilter PodFilterId(const std::string& id) {
  cri::PodSandboxFilter f;
  f.set_id(id);
  return f;
}
cri::PodSandboxFilter PodFilterState(cri::PodSandboxState s) {
  cri::PodSandboxFilter f;
  f.mutable_state()->set_state(s);
  return f;
}
cri::PodSandboxFilter PodFilterLabels(std::map<std::string, std::string> labels) {
  cri::PodSandboxFilter f;
  for (auto& [k, v] : labels) (*f.mutable_label_selector())[k] = v;
  return f;
}
cri::ContainerFilter CtrFilterState(cri::ContainerState s) {
  cri::ContainerFilter f;
  f.mutable_state()->set_state(s);
  return f;
}

std::map<std::string, std::string> AsMap(const google::protobuf::Map<std::string, std::string>& m) {
  return {m.begin(), m.end()};
}

// ---------------------------------------------------------------------------------------------
// 1. The whole lifecycle of a host-network pod and one container.

TEST_F(RuntimeServiceIT, HostNetworkPodAndContainerLifecycle) {
  cri::PodSandboxConfig pod = PodConfig("hostnet", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  ASSERT_FALSE(pod_id.empty());

  // READY, with metadata, labels and annotations exactly as given.
  {
    std::optional<cri::PodSandboxStatus> st = PodStatusOf(pod_id);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->id(), pod_id);
    EXPECT_EQ(st->state(), cri::SANDBOX_READY);
    EXPECT_EQ(st->metadata().name(), pod.metadata().name());
    EXPECT_EQ(st->metadata().uid(), pod.metadata().uid());
    EXPECT_EQ(st->metadata().namespace_(), kPodNamespace);
    EXPECT_EQ(st->metadata().attempt(), 1u);
    EXPECT_GT(st->created_at(), 0);
    EXPECT_EQ(AsMap(st->labels()), AsMap(pod.labels()));
    EXPECT_EQ(AsMap(st->annotations()), AsMap(pod.annotations()));
    EXPECT_EQ(st->linux().namespaces().options().network(), cri::NODE);
    EXPECT_EQ(st->linux().namespaces().options().pid(), cri::CONTAINER);
    EXPECT_FALSE(st->runtime_handler().empty());
  }
  {
    std::vector<cri::PodSandbox> all = ListPods({});
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].id(), pod_id);
    EXPECT_EQ(all[0].state(), cri::SANDBOX_READY);
    EXPECT_EQ(all[0].metadata().name(), pod.metadata().name());
    EXPECT_EQ(AsMap(all[0].labels()), AsMap(pod.labels()));
    EXPECT_EQ(AsMap(all[0].annotations()), AsMap(pod.annotations()));
    EXPECT_THAT(PodIds(PodFilterId(pod_id)), UnorderedElementsAre(pod_id));
    EXPECT_THAT(PodIds(PodFilterId(pod_id.substr(0, 10))), UnorderedElementsAre(pod_id));
    EXPECT_THAT(PodIds(PodFilterId(std::string(64, 'f'))), IsEmpty());
    EXPECT_THAT(PodIds(PodFilterState(cri::SANDBOX_READY)), UnorderedElementsAre(pod_id));
    EXPECT_THAT(PodIds(PodFilterState(cri::SANDBOX_NOTREADY)), IsEmpty());
    EXPECT_THAT(PodIds(PodFilterLabels({{"app", "hostnet"}})), UnorderedElementsAre(pod_id));
    EXPECT_THAT(PodIds(PodFilterLabels({{"app", "hostnet"}, {"berth.io/suite", "runtime-it"}})),
                UnorderedElementsAre(pod_id));
    EXPECT_THAT(PodIds(PodFilterLabels({{"app", "other"}})), IsEmpty());
    EXPECT_THAT(PodIds(PodFilterLabels({{"app", "hostnet"}, {"missing", "x"}})), IsEmpty());
  }

  // CREATED.
  cri::ContainerConfig cfg =
      CtrConfig("main", {"/bin/sh", "-c", "echo hello; echo err >&2; sleep 1000"});
  std::string id;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, cfg, &id));
  const fs::path log_path = LogDir() / "hostnet" / "main.log";
  {
    std::optional<cri::ContainerStatus> st = CtrStatusOf(id);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->id(), id);
    EXPECT_EQ(st->state(), cri::CONTAINER_CREATED);
    EXPECT_EQ(st->metadata().name(), "main");
    EXPECT_GT(st->created_at(), 0);
    EXPECT_EQ(st->started_at(), 0);
    EXPECT_EQ(st->finished_at(), 0);
    EXPECT_EQ(st->image().image(), image_);
    EXPECT_EQ(st->image_id(), busybox_->config_digest.str());
    EXPECT_FALSE(st->image_ref().empty());
    EXPECT_EQ(st->log_path(), log_path.string());
    EXPECT_EQ(AsMap(st->labels()), AsMap(cfg.labels()));
    EXPECT_EQ(AsMap(st->annotations()), AsMap(cfg.annotations()));
    std::vector<cri::Container> listed = ListCtrs();
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].id(), id);
    EXPECT_EQ(listed[0].pod_sandbox_id(), pod_id);
    EXPECT_EQ(listed[0].state(), cri::CONTAINER_CREATED);
    EXPECT_EQ(listed[0].metadata().name(), "main");
    EXPECT_EQ(AsMap(listed[0].labels()), AsMap(cfg.labels()));
    EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_CREATED)), UnorderedElementsAre(id));
    EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_RUNNING)), IsEmpty());
    cri::ContainerFilter by_pod;
    by_pod.set_pod_sandbox_id(pod_id);
    EXPECT_THAT(CtrIds(by_pod), UnorderedElementsAre(id));
    cri::ContainerFilter by_label;
    (*by_label.mutable_label_selector())["ctr"] = "main";
    EXPECT_THAT(CtrIds(by_label), UnorderedElementsAre(id));
    (*by_label.mutable_label_selector())["ctr"] = "other";
    EXPECT_THAT(CtrIds(by_label), IsEmpty());
    cri::ContainerFilter by_id;
    by_id.set_id(id);
    EXPECT_THAT(CtrIds(by_id), UnorderedElementsAre(id));
  }

  // RUNNING.
  IT_ASSERT_GRPC_OK(StartCtr(id));
  int64_t started_at = 0;
  {
    std::optional<cri::ContainerStatus> st = CtrStatusOf(id);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->state(), cri::CONTAINER_RUNNING);
    EXPECT_GT(st->started_at(), 0);
    EXPECT_GE(st->started_at(), st->created_at());
    EXPECT_EQ(st->finished_at(), 0);
    started_at = st->started_at();
    EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_RUNNING)), UnorderedElementsAre(id));
    EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_CREATED)), IsEmpty());
  }

  // ExecSync: output, exit codes, timeout.
  {
    cri::ExecSyncResponse r;
    IT_EXPECT_GRPC_OK(Exec(id, {"echo", "hi"}, 10, &r));
    EXPECT_EQ(r.stdout(), "hi\n");
    EXPECT_EQ(r.stderr(), "");
    EXPECT_EQ(r.exit_code(), 0);
  }
  {
    cri::ExecSyncResponse r;
    IT_EXPECT_GRPC_OK(Exec(id, {"sh", "-c", "exit 7"}, 10, &r));
    EXPECT_EQ(r.exit_code(), 7);
  }
  {
    cri::ExecSyncResponse r;
    auto t0 = Clock::now();
    grpc::Status s = Exec(id, {"sleep", "5"}, 1, &r);
    auto took = Clock::now() - t0;
    EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << Describe(s);
    EXPECT_LT(took, std::chrono::milliseconds(4500)) << "the 1 s exec timeout was not enforced";
  }

  // The CRI log file.
  {
    std::string log = WaitForLog(
        log_path,
        [](const std::string& l) {
          return LogHasRecord(l, "stdout", "hello") && LogHasRecord(l, "stderr", "err");
        },
        std::chrono::seconds(5));
    EXPECT_TRUE(LogHasRecord(log, "stdout", "hello")) << "log:\n" << log;
    EXPECT_TRUE(LogHasRecord(log, "stderr", "err")) << "log:\n" << log;
  }

  // EXITED: sh ignores SIGTERM as PID 1, so the grace period runs out and SIGKILL follows.
  {
    auto t0 = Clock::now();
    IT_EXPECT_GRPC_OK(StopCtr(id, 2));
    auto took = Clock::now() - t0;
    EXPECT_GE(took, std::chrono::milliseconds(1800))
        << "StopContainer did not wait the grace period";
    std::optional<cri::ContainerStatus> st = CtrStatusOf(id);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->state(), cri::CONTAINER_EXITED);
    EXPECT_EQ(st->exit_code(), 137);
    EXPECT_FALSE(st->reason().empty()) << "an exited container needs a reason";
    EXPECT_GE(st->finished_at(), started_at);
    EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_EXITED)), UnorderedElementsAre(id));
  }
  IT_EXPECT_GRPC_OK(StopCtr(id, 2));  // idempotent
  EXPECT_EQ(CtrStatusOf(id)->state(), cri::CONTAINER_EXITED);

  // Removed.
  IT_EXPECT_GRPC_OK(RemoveCtr(id));
  EXPECT_THAT(ListCtrs(), IsEmpty());
  {
    cri::ContainerStatusResponse resp;
    grpc::Status s = CtrStatus(id, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(s);
  }
  IT_EXPECT_GRPC_OK(RemoveCtr(id));                    // idempotent
  IT_EXPECT_GRPC_OK(RemoveCtr(std::string(64, 'e')));  // unknown

  // NOTREADY.
  IT_EXPECT_GRPC_OK(StopPod(pod_id));
  {
    std::optional<cri::PodSandboxStatus> st = PodStatusOf(pod_id);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->state(), cri::SANDBOX_NOTREADY);
    EXPECT_EQ(AsMap(st->labels()), AsMap(pod.labels()));
    EXPECT_THAT(PodIds(PodFilterState(cri::SANDBOX_NOTREADY)), UnorderedElementsAre(pod_id));
    EXPECT_THAT(PodIds(PodFilterState(cri::SANDBOX_READY)), IsEmpty());
  }
  IT_EXPECT_GRPC_OK(StopPod(pod_id));  // idempotent
  EXPECT_EQ(PodStatusOf(pod_id)->state(), cri::SANDBOX_NOTREADY);

  // Removed.
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListPods({}), IsEmpty());
  {
    cri::PodSandboxStatusResponse resp;
    grpc::Status s = PodStatus(pod_id, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(s);
  }
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));  // idempotent
  const std::string unknown(64, 'd');
  IT_EXPECT_GRPC_OK(StopPod(unknown));
  IT_EXPECT_GRPC_OK(RemovePod(unknown));

  ExpectNoLeaks("after removing the pod");
}

// ---------------------------------------------------------------------------------------------
// 2. Containers that end on their own.

TEST_F(RuntimeServiceIT, ContainersThatExitByThemselves) {
  cri::PodSandboxConfig pod = PodConfig("selfexit", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  std::string failing, succeeding;
  IT_ASSERT_GRPC_OK(
      CreateCtr(pod_id, pod, CtrConfig("fails", {"/bin/sh", "-c", "exit 3"}), &failing));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("succeeds", {"true"}), &succeeding));
  IT_ASSERT_GRPC_OK(StartCtr(failing));
  IT_ASSERT_GRPC_OK(StartCtr(succeeding));

  cri::ContainerStatus f = WaitForState(failing, cri::CONTAINER_EXITED, std::chrono::seconds(10));
  EXPECT_EQ(f.exit_code(), 3);
  EXPECT_EQ(f.reason(), "Error");
  EXPECT_GT(f.started_at(), 0);
  EXPECT_GE(f.finished_at(), f.started_at());
  cri::ContainerStatus s =
      WaitForState(succeeding, cri::CONTAINER_EXITED, std::chrono::seconds(10));
  EXPECT_EQ(s.exit_code(), 0);
  EXPECT_EQ(s.reason(), "Completed");
  EXPECT_GE(s.finished_at(), s.started_at());
  EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_EXITED)),
              UnorderedElementsAre(failing, succeeding));

  // What an exited container still allows, and what not.
  cri::ExecSyncResponse r;
  EXPECT_FALSE(Exec(failing, {"true"}, 5, &r).ok()) << "ExecSync in an exited container";
  grpc::Status again = StartCtr(failing);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(again);
  IT_EXPECT_GRPC_OK(StopCtr(failing, 1));
  EXPECT_EQ(CtrStatusOf(failing)->exit_code(), 3) << "stopping an exited container changed it";

  // RemovePodSandbox takes its containers along.
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListCtrs(), IsEmpty());
  EXPECT_THAT(ListPods({}), IsEmpty());
  ExpectNoLeaks("after removing the pod");
}

// ---------------------------------------------------------------------------------------------
// 3. A pod on a CNI bridge network.

TEST_F(RuntimeServiceIT, CniBridgePod) {
  // A bridge and a /24 of our own that overlaps nothing routed on this host.
  std::mt19937 rng(std::random_device{}());
  const std::string bridge = StrCat("bt", RandomHex(2));
  uint32_t a = 0, b = 0;
  bool found = false;
  for (int i = 0; i < 50 && !found; ++i) {
    a = 100 + rng() % 101;
    b = rng() % 256;
    found = !OverlapsHostRoute((10u << 24) | (a << 16) | (b << 8), 24);
  }
  ASSERT_TRUE(found) << "no free 10.x.y.0/24 on this host";
  ASSERT_FALSE(Exists(fs::path("/sys/class/net") / bridge)) << bridge << " exists already";
  cleanups_.push_back([bridge] {
    if (Exists(fs::path("/sys/class/net") / bridge)) {
      StatusOr<ProcessResult> r = RunProcess({"ip", "link", "del", bridge});
      EXPECT_TRUE(r.ok() && r->exit_code == 0) << "ip link del " << bridge;
    }
  });
  const std::string prefix = StrCat("10.", a, ".", b, ".");
  const std::string net_name = StrCat("berth-rt-", RandomHex(3));
  const fs::path ipam_dir = berthd_->dir() / "ipam";
  nlohmann::json range = nlohmann::json::object();
  range["subnet"] = prefix + "0/24";
  nlohmann::json ipam = nlohmann::json::object();
  ipam["type"] = "host-local";
  ipam["dataDir"] = ipam_dir.string();
  ipam["ranges"] = nlohmann::json::array({nlohmann::json::array({range})});
  nlohmann::json plugin = nlohmann::json::object();
  plugin["type"] = "bridge";
  plugin["bridge"] = bridge;
  plugin["isGateway"] = true;
  plugin["ipMasq"] = false;
  plugin["ipam"] = ipam;
  nlohmann::json list = nlohmann::json::object();
  list["cniVersion"] = "1.0.0";
  list["name"] = net_name;
  list["plugins"] = nlohmann::json::array({plugin});
  const std::string conflist = list.dump(2);
  IT_ASSERT_OK(WriteFileAtomic(berthd_->cni_dir() / "10-berth-rt.conflist", conflist));

  cri::PodSandboxConfig pod = PodConfig("bridged", cri::POD, cri::CONTAINER);
  const std::string hostname = StrCat("rt-", RandomHex(3));
  pod.set_hostname(hostname);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));

  std::optional<cri::PodSandboxStatus> st = PodStatusOf(pod_id);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->state(), cri::SANDBOX_READY);
  const std::string ip = st->network().ip();
  ASSERT_TRUE(ip.starts_with(prefix)) << "pod IP \"" << ip << "\" not in " << prefix << "0/24";
  ASSERT_TRUE(ParseIpv4(ip).has_value()) << ip;
  EXPECT_EQ(st->linux().namespaces().options().network(), cri::POD);
  const fs::path ip_file = ipam_dir / net_name / ip;
  EXPECT_TRUE(Exists(ip_file)) << "host-local recorded no lease at " << ip_file;
  const std::vector<std::string> veths = DirEntries(fs::path("/sys/class/net") / bridge / "brif");
  EXPECT_EQ(veths.size(), 1u) << "ports of " << bridge << ": " << ::testing::PrintToString(veths);

  // A container showing the pod's hostname and address, then answering one TCP connection.
  const bool have_ip = HasApplet("ip");
  const bool have_nc = HasApplet("nc");
  std::string script = "hostname; cat /etc/hostname; ";
  script += have_ip                 ? "ip addr; "
            : HasApplet("ifconfig") ? "ifconfig; "
                                    : "cat /proc/net/fib_trie; ";
  script += "echo shown; ";
  if (have_nc) script += "echo pong | nc -l -p 8080";
  cri::ContainerConfig cfg = CtrConfig("net", {"/bin/sh", "-c", script});
  std::string id;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, cfg, &id));
  IT_ASSERT_GRPC_OK(StartCtr(id));
  const fs::path log_path = LogDir() / "bridged" / "net.log";
  std::string log = WaitForLog(
      log_path, [](const std::string& l) { return LogHasRecord(l, "stdout", "shown"); },
      std::chrono::seconds(10));
  ASSERT_TRUE(LogHasRecord(log, "stdout", "shown")) << "log:\n" << log;
  EXPECT_TRUE(LogHasRecord(log, "stdout", hostname)) << "hostname not shown; log:\n" << log;
  EXPECT_GE(CountOf(log, StrCat("stdout F ", hostname, "\n")), 2)
      << "hostname and /etc/hostname must both be " << hostname << "; log:\n"
      << log;
  EXPECT_THAT(log, HasSubstr(ip)) << "the pod IP is not on an interface of the container";
  EXPECT_EQ(CtrStatusOf(id)->state(), have_nc ? cri::CONTAINER_RUNNING : cri::CONTAINER_EXITED);

  if (have_nc) {
    StatusOr<std::string> answer = UnavailableError("not tried");
    auto deadline = Clock::now() + std::chrono::seconds(10);
    // nc may not listen yet: retry while the connection is refused.
    while (Clock::now() < deadline) {
      answer = TcpExchange(ip, 8080, "hello-from-test\n", std::chrono::seconds(5));
      if (answer.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(answer.ok()) << "TCP to the pod at " << ip
                             << ":8080: " << answer.status().ToString();
    EXPECT_EQ(*answer, "pong\n");
    cri::ContainerStatus done = WaitForState(id, cri::CONTAINER_EXITED, std::chrono::seconds(10));
    EXPECT_EQ(done.exit_code(), 0);
    log = ReadOr(log_path);
    EXPECT_TRUE(LogHasRecord(log, "stdout", "hello-from-test")) << "log:\n" << log;
  } else {
    std::cerr << "busybox has no nc applet: TCP check skipped\n";
  }

  // StopPodSandbox tears the network down: address released, veth gone.
  IT_EXPECT_GRPC_OK(StopPod(pod_id));
  EXPECT_EQ(PodStatusOf(pod_id)->state(), cri::SANDBOX_NOTREADY);
  EXPECT_FALSE(Exists(ip_file)) << "host-local lease " << ip << " not released by StopPodSandbox";
  for (const std::string& v : veths) {
    EXPECT_FALSE(Exists(fs::path("/sys/class/net") / v)) << "veth " << v << " still exists";
  }
  EXPECT_THAT(DirEntries(fs::path("/sys/class/net") / bridge / "brif"), IsEmpty());
  IT_EXPECT_GRPC_OK(StopPod(pod_id));  // idempotent, with the network already gone

  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListPods({}), IsEmpty());
  EXPECT_THAT(ListCtrs(), IsEmpty());
  EXPECT_FALSE(Exists(ip_file));
  std::vector<std::string> leases;
  for (const std::string& e : DirEntries(ipam_dir / net_name)) {
    if (e.starts_with("10.")) leases.push_back(e);
  }
  EXPECT_THAT(leases, IsEmpty()) << "host-local leases left";
  EXPECT_THAT(DirEntries(berthd_->root() / "cni" / "results"), IsEmpty()) << "CNI cache left";
  ExpectNoLeaks("after removing the bridged pod");
}

// ---------------------------------------------------------------------------------------------
// 4. One PID namespace for the pod, with berth-pause as its init.

TEST_F(RuntimeServiceIT, SharedPidNamespaceWithPause) {
  cri::PodSandboxConfig pod = PodConfig("sharedpid", cri::NODE, cri::POD);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  EXPECT_EQ(PodStatusOf(pod_id)->linux().namespaces().options().pid(), cri::POD);
  nlohmann::json info = PodInfo(pod_id);
  ASSERT_FALSE(info.is_discarded());
  const int pause_pid = info.value("pause_pid", 0);
  ASSERT_GT(pause_pid, 0) << info.dump();
  // RunPodSandbox may answer before berth-pause has finished its exec.
  std::string pause_cmdline;
  for (auto deadline = Clock::now() + std::chrono::seconds(2); Clock::now() < deadline;) {
    pause_cmdline = CmdlineOf(pause_pid);
    if (pause_cmdline == "berth-pause") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(pause_cmdline, "berth-pause") << "pause_pid " << pause_pid << " is not berth-pause";
  const std::string pod_pidns = PidNamespaceOf(pause_pid);
  ASSERT_FALSE(pod_pidns.empty());
  tracked_pidns_.insert(pod_pidns);

  auto shared = [&](const std::string& name, const std::string& secs) {
    cri::ContainerConfig c = CtrConfig(name, {"sleep", secs});
    c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(cri::POD);
    return c;
  };
  std::string first, second;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, shared("first", "1001"), &first));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, shared("second", "1002"), &second));
  IT_ASSERT_GRPC_OK(StartCtr(first));
  IT_ASSERT_GRPC_OK(StartCtr(second));
  EXPECT_EQ(PidNamespaceOf(CtrPid(first)), pod_pidns);
  EXPECT_EQ(PidNamespaceOf(CtrPid(second)), pod_pidns);

  const std::string lister = HasApplet("ps") ? "ps" : "ls";
  for (const auto& [self, other] : {std::pair{first, std::string("sleep 1002")},
                                    std::pair{second, std::string("sleep 1001")}}) {
    std::string seen = lister == "ps"
                           ? ExecOut(self, {"ps"})
                           : ExecOut(self, {"sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"});
    EXPECT_THAT(seen, HasSubstr(other)) << "container " << self << " does not see " << other;
    EXPECT_THAT(seen, HasSubstr("berth-pause"));
    std::string init = ExecOut(self, {"cat", "/proc/1/cmdline"});
    EXPECT_EQ(Trim(init), "berth-pause") << "PID 1 of the pod";
  }

  IT_EXPECT_GRPC_OK(StopPod(pod_id));
  for (const auto& c : {first, second}) {
    EXPECT_EQ(CtrStatusOf(c)->state(), cri::CONTAINER_EXITED) << c;
  }
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListCtrs(), IsEmpty());
  EXPECT_THAT(ListPods({}), IsEmpty());
  EXPECT_NE(CmdlineOf(pause_pid), "berth-pause") << "berth-pause " << pause_pid << " survived";
  ExpectNoLeaks("after removing the shared-PID pod");
}

// ---------------------------------------------------------------------------------------------
// 5. Containers outlive a SIGKILL of berthd, and exits while it is down are not lost.

TEST_F(RuntimeServiceIT, ContainersSurviveDaemonKill) {
  cri::PodSandboxConfig pod = PodConfig("survivor", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  std::string longer, shorter;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("long", {"sleep", "1000"}), &longer));
  IT_ASSERT_GRPC_OK(
      CreateCtr(pod_id, pod, CtrConfig("short", {"/bin/sh", "-c", "sleep 2; exit 5"}), &shorter));
  IT_ASSERT_GRPC_OK(StartCtr(longer));
  IT_ASSERT_GRPC_OK(StartCtr(shorter));
  const int long_pid = CtrPid(longer);
  ASSERT_GT(long_pid, 0);
  EXPECT_EQ(CtrStatusOf(longer)->state(), cri::CONTAINER_RUNNING);
  EXPECT_EQ(CtrStatusOf(shorter)->state(), cri::CONTAINER_RUNNING);

  berthd_->Kill();
  std::this_thread::sleep_for(std::chrono::seconds(3));  // "short" exits meanwhile
  EXPECT_EQ(CmdlineOf(long_pid), "sleep 1000") << "the container died with berthd";
  const int64_t restart_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  IT_ASSERT_OK(berthd_->Start(DefaultArgs()));

  EXPECT_THAT(PodIds(PodFilterState(cri::SANDBOX_READY)), UnorderedElementsAre(pod_id));
  {
    std::optional<cri::ContainerStatus> st = CtrStatusOf(longer);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->state(), cri::CONTAINER_RUNNING);
    EXPECT_EQ(CtrPid(longer), long_pid);
    cri::ExecSyncResponse r;
    IT_EXPECT_GRPC_OK(Exec(longer, {"echo", "still here"}, 10, &r));
    EXPECT_EQ(r.stdout(), "still here\n");
    EXPECT_EQ(r.exit_code(), 0);
  }
  {
    std::optional<cri::ContainerStatus> st = CtrStatusOf(shorter);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->state(), cri::CONTAINER_EXITED);
    EXPECT_EQ(st->exit_code(), 5);
    EXPECT_EQ(st->reason(), "Error");
    EXPECT_GT(st->finished_at(), st->started_at());
    EXPECT_LT(st->finished_at(), restart_ns) << "the exit time must be when it happened";
  }

  // And it can still stop what it did not see start.
  IT_EXPECT_GRPC_OK(StopCtr(longer, 0));
  EXPECT_EQ(CtrStatusOf(longer)->state(), cri::CONTAINER_EXITED);
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListCtrs(), IsEmpty());
  ExpectNoLeaks("after removing the pod");
}

// ---------------------------------------------------------------------------------------------
// 6. Bad input: clear error codes, and nothing half-made left behind.

TEST_F(RuntimeServiceIT, BadInputIsRejectedCleanly) {
  cri::PodSandboxConfig pod = PodConfig("badinput", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));

  struct Snapshot {
    std::vector<std::string> containers;
    std::multiset<std::string> mounts;
    std::vector<std::string> bundles, layers, runc;
  };
  auto snapshot = [&] {
    Snapshot s;
    s.containers = CtrIds();
    std::sort(s.containers.begin(), s.containers.end());
    s.mounts = MountsUnder(berthd_->dir());
    s.bundles = DirEntries(berthd_->state() / "containers");
    s.layers = DirEntries(berthd_->root() / "containers");
    s.runc = DirEntries(berthd_->state() / "runc");
    return s;
  };
  auto expect_unchanged = [&](const Snapshot& before, const std::string& what) {
    Snapshot after = snapshot();
    EXPECT_EQ(after.containers, before.containers) << "container list changed by " << what;
    EXPECT_EQ(after.mounts, before.mounts) << "mounts changed by " << what;
    EXPECT_EQ(after.bundles, before.bundles) << "bundle dirs changed by " << what;
    EXPECT_EQ(after.layers, before.layers) << "writable layers changed by " << what;
    EXPECT_EQ(after.runc, before.runc) << "runc state changed by " << what;
  };

  {
    Snapshot before = snapshot();
    cri::ContainerConfig c = CtrConfig("noimage", {"true"});
    c.mutable_image()->set_image(StrCat(registry_->host(), "/it/never-pulled:x"));
    std::string id;
    grpc::Status s = CreateCtr(pod_id, pod, c, &id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "unknown image: " << Describe(s);
    expect_unchanged(before, "CreateContainer of an unknown image");
  }
  {
    Snapshot before = snapshot();
    cri::ContainerConfig c = CtrConfig("nohostpath", {"true"});
    const fs::path missing = berthd_->dir() / "no-such-host-dir";
    cri::Mount* m = c.add_mounts();
    m->set_host_path(missing.string());
    m->set_container_path("/data");
    std::string id;
    grpc::Status s = CreateCtr(pod_id, pod, c, &id);
    EXPECT_TRUE(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                s.error_code() == grpc::StatusCode::NOT_FOUND)
        << "bind mount of a missing host path: " << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr(missing.string())) << "the error must name the path";
    expect_unchanged(before, "CreateContainer with a missing host path");
  }
  {
    cri::PodSandboxConfig other = PodConfig("badhandler", cri::NODE, cri::CONTAINER);
    std::string id;
    grpc::Status s = RunPod(other, &id, "no-such-handler");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
    EXPECT_THAT(PodIds(), UnorderedElementsAre(pod_id));
  }

  std::string dup;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("dup", {"sleep", "1000"}), &dup));
  {
    Snapshot before = snapshot();
    std::string id;
    grpc::Status s = CreateCtr(pod_id, pod, CtrConfig("dup", {"sleep", "1000"}), &id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << Describe(s);
    expect_unchanged(before, "a duplicate CreateContainer");
  }
  IT_EXPECT_GRPC_OK(StartCtr(dup));
  {
    grpc::Status s = StartCtr(dup);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << "StartContainer twice: " << Describe(s);
    EXPECT_EQ(CtrStatusOf(dup)->state(), cri::CONTAINER_RUNNING);
  }

  {
    cri::PodSandboxConfig gone_cfg = PodConfig("gone", cri::NODE, cri::CONTAINER);
    std::string gone;
    IT_ASSERT_GRPC_OK(RunPod(gone_cfg, &gone));
    IT_ASSERT_GRPC_OK(RemovePod(gone));
    Snapshot before = snapshot();
    std::string id;
    grpc::Status s = CreateCtr(gone, gone_cfg, CtrConfig("orphan", {"true"}), &id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "removed sandbox: " << Describe(s);
    s = CreateCtr(std::string(64, 'a'), gone_cfg, CtrConfig("orphan", {"true"}), &id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "unknown sandbox: " << Describe(s);
    expect_unchanged(before, "CreateContainer in a removed or unknown sandbox");
  }

  // Every RPC that names an object rejects an empty id.
  {
    Snapshot before = snapshot();
    std::map<std::string, grpc::Status> results;
    std::string id;
    results["CreateContainer"] = CreateCtr("", pod, CtrConfig("noid", {"true"}), &id);
    results["StartContainer"] = StartCtr("");
    results["StopContainer"] = StopCtr("", 0);
    results["RemoveContainer"] = RemoveCtr("");
    cri::ContainerStatusResponse cs;
    results["ContainerStatus"] = CtrStatus("", &cs);
    cri::ExecSyncResponse ex;
    results["ExecSync"] = Exec("", {"true"}, 5, &ex);
    {
      grpc::ClientContext ctx;
      SetDeadline(ctx);
      cri::UpdateContainerResourcesRequest req;
      req.mutable_linux()->set_cpu_shares(512);
      cri::UpdateContainerResourcesResponse resp;
      results["UpdateContainerResources"] =
          berthd_->runtime().UpdateContainerResources(&ctx, req, &resp);
    }
    results["StopPodSandbox"] = StopPod("");
    results["RemovePodSandbox"] = RemovePod("");
    cri::PodSandboxStatusResponse ps;
    results["PodSandboxStatus"] = PodStatus("", &ps);
    for (const auto& [rpc, s] : results) {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
          << rpc << " with an empty id: " << Describe(s);
    }
    expect_unchanged(before, "RPCs with empty ids");
    EXPECT_EQ(CtrStatusOf(dup)->state(), cri::CONTAINER_RUNNING);
    EXPECT_THAT(PodIds(), UnorderedElementsAre(pod_id));
  }

  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListCtrs(), IsEmpty());
  ExpectNoLeaks("after removing the pod");
}

// ---------------------------------------------------------------------------------------------
// 7. Security context and resources.

TEST_F(RuntimeServiceIT, SecurityContextAndResources) {
  cri::PodSandboxConfig pod = PodConfig("secctx", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));

  cri::ContainerConfig user_cfg = CtrConfig("user", {"sleep", "1000"});
  user_cfg.mutable_linux()->mutable_security_context()->mutable_run_as_user()->set_value(1234);
  cri::ContainerConfig ro_cfg = CtrConfig("readonly", {"sleep", "1000"});
  ro_cfg.mutable_linux()->mutable_security_context()->set_readonly_rootfs(true);
  std::string user, ro;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, user_cfg, &user));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, ro_cfg, &ro));
  IT_ASSERT_GRPC_OK(StartCtr(user));
  IT_ASSERT_GRPC_OK(StartCtr(ro));

  EXPECT_EQ(ExecOut(user, {"id", "-u"}), "1234\n");
  EXPECT_EQ(CtrStatusOf(user)->user().linux().uid(), 1234);
  const int user_pid = CtrPid(user);
  ASSERT_GT(user_pid, 0);
  EXPECT_THAT(ReadOr(StrCat("/proc/", user_pid, "/status")), HasSubstr("Uid:\t1234\t1234"))
      << "the container's init does not run as 1234";

  {
    cri::ExecSyncResponse r;
    IT_EXPECT_GRPC_OK(Exec(ro, {"touch", "/x"}, 10, &r));
    EXPECT_NE(r.exit_code(), 0) << "touch /x succeeded on a read-only rootfs";
    EXPECT_THAT(r.stderr(), HasSubstr("Read-only file system"));
    EXPECT_EQ(ExecOut(ro, {"id", "-u"}), "0\n") << "readonly_rootfs alone keeps root";
  }

  // UpdateContainerResources on a running container.
  constexpr int64_t kMemory = 64 << 20;
  constexpr int64_t kShares = 512;
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::UpdateContainerResourcesRequest req;
    req.set_container_id(user);
    req.mutable_linux()->set_memory_limit_in_bytes(kMemory);
    req.mutable_linux()->set_cpu_shares(kShares);
    cri::UpdateContainerResourcesResponse resp;
    IT_EXPECT_GRPC_OK(berthd_->runtime().UpdateContainerResources(&ctx, req, &resp));
  }
  {
    std::optional<cri::ContainerStatus> st = CtrStatusOf(user);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->resources().linux().memory_limit_in_bytes(), kMemory);
    EXPECT_EQ(st->resources().linux().cpu_shares(), kShares);
    EXPECT_EQ(st->state(), cri::CONTAINER_RUNNING);
  }
  // ... and in the container's cgroup.
  {
    std::string cgroups = ReadOr(StrCat("/proc/", user_pid, "/cgroup"));
    std::map<std::string, std::string> paths;  // controller list -> path
    size_t start = 0;
    while (start < cgroups.size()) {
      size_t end = cgroups.find('\n', start);
      if (end == std::string::npos) end = cgroups.size();
      std::string line = cgroups.substr(start, end - start);
      start = end + 1;
      size_t c1 = line.find(':'), c2 = line.find(':', c1 + 1);
      if (c1 == std::string::npos || c2 == std::string::npos) continue;
      paths[line.substr(c1 + 1, c2 - c1 - 1)] = line.substr(c2 + 1);
    }
    if (Exists("/sys/fs/cgroup/cgroup.controllers")) {
      const fs::path dir = fs::path("/sys/fs/cgroup") / fs::path(paths[""]).relative_path();
      EXPECT_EQ(Trim(ReadOr(dir / "memory.max")), std::to_string(kMemory)) << dir;
    } else {
      std::string mem_path, cpu_path;
      for (const auto& [ctrls, p] : paths) {
        std::string list = "," + ctrls + ",";
        if (list.find(",memory,") != std::string::npos) mem_path = p;
        if (list.find(",cpu,") != std::string::npos) cpu_path = p;
      }
      ASSERT_FALSE(mem_path.empty()) << cgroups;
      ASSERT_FALSE(cpu_path.empty()) << cgroups;
      const fs::path mem = fs::path("/sys/fs/cgroup/memory") / fs::path(mem_path).relative_path();
      const fs::path cpu = fs::path("/sys/fs/cgroup/cpu") / fs::path(cpu_path).relative_path();
      EXPECT_EQ(Trim(ReadOr(mem / "memory.limit_in_bytes")), std::to_string(kMemory)) << mem;
      EXPECT_EQ(Trim(ReadOr(cpu / "cpu.shares")), std::to_string(kShares)) << cpu;
    }
  }

  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListCtrs(), IsEmpty());
  ExpectNoLeaks("after removing the pod");
}

}  // namespace
}  // namespace berth::testing
