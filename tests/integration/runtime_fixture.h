// The fixture shared by the RuntimeService integration tests: a real berthd per test, a
// registry on 127.0.0.1 serving a busybox image the suite builds, CRI call helpers and the
// leak checks every test ends with. Included by exactly one .cc per test binary.
//
// Needs root (namespaces, mounts, runc). Traffic goes only to 127.0.0.1 and to pod addresses
// of networks the tests create.
#pragma once

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
#include <atomic>
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
#include "common/numbers.h"
#include "common/process.h"
#include "common/status.h"
#include "support/image_builder.h"
#include "support/registry_push.h"
#include "support/registry_server.h"

#ifndef BERTHD_PATH
#error "BERTHD_PATH must name the berthd binary (see tests/integration/CMakeLists.txt)"
#endif

// Not in an anonymous namespace: not every test file uses every helper. Each test binary
// includes this header once.
namespace berth::testing {

namespace cri = ::runtime::v1;
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using Clock = std::chrono::steady_clock;

#define IT_ASSERT_OK(expr)                                                         \
  do {                                                                             \
    const ::berth::Status& it_status_ = (expr);                                    \
    ASSERT_TRUE(it_status_.ok()) << #expr << " failed: " << it_status_.ToString(); \
  } while (0)

#define IT_ASSERT_GRPC_OK(expr)                                               \
  do {                                                                        \
    const ::grpc::Status& it_grpc_ = (expr);                                  \
    ASSERT_TRUE(it_grpc_.ok()) << #expr << " failed: " << Describe(it_grpc_); \
  } while (0)

#define IT_EXPECT_GRPC_OK(expr)                                               \
  do {                                                                        \
    const ::grpc::Status& it_grpc_ = (expr);                                  \
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

std::string ReadOr(const fs::path& p, const std::string& fallback = "") {
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

// True for a process that has exited and waits to be reaped. Daemonised monitors and pod
// inits are reparented to PID 1, and the init of these test VMs reaps them only after a
// while: a zombie holds no resource but its PID, so leak checks do not count it.
bool IsZombie(int pid) {
  std::string stat = ReadOr(StrCat("/proc/", pid, "/stat"));
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

// Live (non-zombie) processes.
std::vector<int> AllPids() {
  std::vector<int> out;
  for (const std::string& name : DirEntries("/proc")) {
    if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) {
      int pid = std::stoi(name);
      if (!IsZombie(pid)) out.push_back(pid);
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
      auto bits = ParseDecimal<int>(std::string_view(first).substr(slash + 1));
      if (!bits || *bits < 0 || *bits > 32) continue;
      p = *bits;
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
    ASSERT_NO_FATAL_FAILURE(BeforeDaemonStart());
    IT_ASSERT_OK(berthd_->Start(DaemonArgs()));
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
    EXPECT_EQ(berthd_->SanitizerReports(), "") << "sanitizer reports of berthd or its monitors";
    if (HasFailure()) {
      std::cerr << "--- berthd log (tail) ---\n" << berthd_->LogTail(16000) << "\n";
      for (const std::string& c : DirEntries(berthd_->state() / "containers")) {
        std::string log = ReadOr(berthd_->state() / "containers" / c / "monitor.log");
        if (!log.empty()) std::cerr << "--- monitor.log of " << c << " ---\n" << log << "\n";
      }
    }
    while (!cleanups_.empty()) {  // last registered, first run
      std::function<void()> cleanup = std::move(cleanups_.back());
      cleanups_.pop_back();
      cleanup();
    }
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
  // Hooks for fixtures derived for one kind of test: files to write into berthd_->dir()
  // before the daemon starts, and the daemon's arguments.
  virtual void BeforeDaemonStart() {}
  virtual std::vector<std::string> DaemonArgs() { return DefaultArgs(); }

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
      const fs::path pinned = berthd_->state() / "sandboxes" / *id / "pidns";
      std::string ns = PinnedNamespaceId(pinned);
      if (!ns.empty()) {
        tracked_pidns_.insert(ns);
        HoldNamespace(pinned);
      }
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
    if (!ns.empty() && ns != PidNamespaceOf(::getpid())) {
      tracked_pidns_.insert(ns);
      HoldNamespace(StrCat("/proc/", pid, "/ns/pid"));
    }
  }

  // Keeps a tracked namespace alive until the test ends: namespace ids (nsfs inode numbers)
  // are reused once a namespace is freed, and a container of another test running on the
  // machine would then look like a leak of this one.
  void HoldNamespace(const fs::path& ns_file) {
    UniqueFd fd(::open(ns_file.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.valid()) held_namespaces_.push_back(std::move(fd));
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

  // CNI ----------------------------------------------------------------------------------

  struct BridgeNetwork {
    std::string bridge;  // host bridge device
    std::string prefix;  // "10.a.b." of its /24
    std::string name;    // CNI network name
    fs::path ipam_dir;   // host-local's dataDir: one file per leased address
  };

  // Writes berthd's only CNI config: a bridge (plugin `plugin_type`, "bridge" or a wrapper
  // that runs it) with a host-local /24 of our own that overlaps nothing routed on this
  // host. The bridge device is deleted after the test.
  BridgeNetwork SetUpBridgeNetwork(const std::string& plugin_type) {
    BridgeNetwork net;
    std::mt19937 rng(std::random_device{}());
    net.bridge = StrCat("bt", RandomHex(2));
    uint32_t a = 0, b = 0;
    bool found = false;
    for (int i = 0; i < 50 && !found; ++i) {
      a = 100 + rng() % 101;
      b = rng() % 256;
      found = !OverlapsHostRoute((10u << 24) | (a << 16) | (b << 8), 24);
    }
    EXPECT_TRUE(found) << "no free 10.x.y.0/24 on this host";
    EXPECT_FALSE(Exists(fs::path("/sys/class/net") / net.bridge)) << net.bridge << " exists";
    const std::string bridge = net.bridge;
    cleanups_.push_back([bridge] {
      if (Exists(fs::path("/sys/class/net") / bridge)) {
        StatusOr<ProcessResult> r = RunProcess({"ip", "link", "del", bridge});
        EXPECT_TRUE(r.ok() && r->exit_code == 0) << "ip link del " << bridge;
      }
    });
    net.prefix = StrCat("10.", a, ".", b, ".");
    net.name = StrCat("berth-rt-", RandomHex(3));
    net.ipam_dir = berthd_->dir() / "ipam";
    nlohmann::json range = nlohmann::json::object();
    range["subnet"] = net.prefix + "0/24";
    nlohmann::json ipam = nlohmann::json::object();
    ipam["type"] = "host-local";
    ipam["dataDir"] = net.ipam_dir.string();
    ipam["ranges"] = nlohmann::json::array({nlohmann::json::array({range})});
    nlohmann::json plugin = nlohmann::json::object();
    plugin["type"] = plugin_type;
    plugin["bridge"] = net.bridge;
    plugin["isGateway"] = true;
    plugin["ipMasq"] = false;
    plugin["ipam"] = ipam;
    nlohmann::json list = nlohmann::json::object();
    list["cniVersion"] = "1.0.0";
    list["name"] = net.name;
    list["plugins"] = nlohmann::json::array({plugin});
    Status s = WriteFileAtomic(berthd_->cni_dir() / "10-berth-rt.conflist", list.dump(2));
    EXPECT_TRUE(s.ok()) << s.ToString();
    return net;
  }

  // Addresses host-local has leased on `net` (its dataDir also holds a lock file and the
  // last reserved address per range, which are not leases).
  static std::vector<std::string> LeasedAddresses(const BridgeNetwork& net) {
    std::vector<std::string> out;
    for (const std::string& f : DirEntries(net.ipam_dir / net.name)) {
      if (ParseIpv4(f).has_value()) out.push_back(f);
    }
    return out;
  }

  // cgroups ------------------------------------------------------------------------------

  // Removes `top` (a path below the root of every cgroup hierarchy) after the test, deepest
  // directories first: the runtime makes a pod's cgroup parents and never removes them.
  void RemoveCgroupsAfterTest(const std::string& top) {
    cleanups_.push_back([top] {
      for (const std::string& ctrl : DirEntries("/sys/fs/cgroup")) {
        const fs::path base = fs::path("/sys/fs/cgroup") / ctrl / top;
        std::vector<fs::path> dirs;
        std::error_code ec;
        for (auto it = fs::recursive_directory_iterator(base, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
          if (it->is_directory()) dirs.push_back(it->path());
        }
        std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
          return a.string().size() > b.string().size();
        });
        for (const fs::path& d : dirs) ::rmdir(d.c_str());
        if (Exists(base)) ::rmdir(base.c_str());
      }
    });
  }

  // Directories right below `parent` (a path below every hierarchy's root), in every
  // hierarchy: the cgroups of containers placed there.
  static std::vector<std::string> CgroupsBelow(const std::string& parent) {
    std::vector<std::string> out;
    for (const std::string& ctrl : DirEntries("/sys/fs/cgroup")) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(fs::path("/sys/fs/cgroup") / ctrl / parent, ec)) {
        if (e.is_directory()) out.push_back(e.path().string());
      }
    }
    return out;
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

    EXPECT_THAT(DirEntries(berthd_->state() / "runtimes" / "runc"), IsEmpty())
        << "runc state dir not empty";
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
  std::vector<UniqueFd> held_namespaces_;        // see HoldNamespace
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
cri::PodSandboxFilter PodFilterLabels(const std::map<std::string, std::string>& labels) {
  cri::PodSandboxFilter f;
  for (const auto& [k, v] : labels) (*f.mutable_label_selector())[k] = v;
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

}  // namespace berth::testing
