// CNI pod networking with Debian's real plugins (/usr/lib/cni) in real
// network namespaces. Needs root; skipped otherwise. Every test cleans up
// after itself: namespaces, the bridge it made, host-local state, cache,
// portmap's iptables chains, and the host's ip_forward setting (the bridge
// plugin turns it on for isGateway).
//
// Traffic: only from the host to addresses inside namespaces created here
// (and loopback inside them).
#include "network/cni.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "common/fs.h"
#include "common/numbers.h"
#include "common/process.h"
#include "network/netns.h"

namespace berth::network {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kPluginDir = "/usr/lib/cni";

std::string Shell(const std::string& cmd) {
  // Constant inspection commands (ip, iptables) written by the tests themselves;
  // their stdout, empty when the shell cannot run.
  auto r = RunProcess({"/bin/sh", "-c", cmd});
  return r.ok() ? r->out : std::string();
}

std::string ReadOrEmpty(const fs::path& p) {
  auto c = ReadFile(p);
  return c.ok() ? *c : std::string();
}

std::vector<std::string> ListDir(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

bool RootWithPlugins() {
  return ::geteuid() == 0 && ::access((fs::path(kPluginDir) / "bridge").c_str(), X_OK) == 0;
}

// Interface names inside a namespace.
std::vector<std::string> InterfacesIn(const fs::path& netns) {
  std::vector<std::string> names;
  Status s = RunInNetworkNamespace(netns, [&] {
    struct if_nameindex* list = ::if_nameindex();
    if (list == nullptr) return ErrnoStatus(errno, "if_nameindex");
    for (auto* i = list; i->if_index != 0; ++i) names.emplace_back(i->if_name);
    ::if_freenameindex(list);
    return OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  std::sort(names.begin(), names.end());
  return names;
}

bool InterfaceUpIn(const fs::path& netns, const std::string& ifname) {
  bool up = false;
  Status s = RunInNetworkNamespace(netns, [&] {
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return ErrnoStatus(errno, "socket");
    struct ifreq req {};
    std::snprintf(req.ifr_name, IFNAMSIZ, "%s", ifname.c_str());
    if (::ioctl(fd.get(), SIOCGIFFLAGS, &req) != 0)
      return ErrnoStatus(errno, "SIOCGIFFLAGS " + ifname);
    up = (req.ifr_flags & IFF_UP) != 0;
    return OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return up;
}

sockaddr_in Addr(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  EXPECT_EQ(::inet_pton(AF_INET, ip.c_str(), &a.sin_addr), 1) << ip;
  return a;
}

StatusOr<UniqueFd> ListenIn(const fs::path& netns, const std::string& ip, uint16_t* port) {
  UniqueFd listener;
  RETURN_IF_ERROR(RunInNetworkNamespace(netns, [&] {
    listener.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listener.valid()) return ErrnoStatus(errno, "socket");
    sockaddr_in a = Addr(ip, 0);
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      return ErrnoStatus(errno, "bind " + ip);
    }
    if (::listen(listener.get(), 4) != 0) return ErrnoStatus(errno, "listen");
    return OkStatus();
  }));
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  *port = ntohs(bound.sin_port);
  return listener;
}

// Connects to ip:port (within 5 s), sends a line and checks that the
// listener receives it.
Status RoundTrip(const UniqueFd& listener, const std::string& ip, uint16_t port) {
  UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_in a = Addr(ip, port);
  if (::connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    return ErrnoStatus(errno, "connect " + ip);
  }
  pollfd pfd{c.get(), POLLOUT, 0};
  if (::poll(&pfd, 1, 5000) != 1) return DeadlineExceededError("connect to " + ip + " timed out");
  int err = 0;
  socklen_t elen = sizeof err;
  ::getsockopt(c.get(), SOL_SOCKET, SO_ERROR, &err, &elen);
  if (err != 0) return ErrnoStatus(err, "connect " + ip);
  if (::send(c.get(), "hello pod", 9, MSG_NOSIGNAL) != 9) return ErrnoStatus(errno, "send");
  pollfd lp{listener.get(), POLLIN, 0};
  if (::poll(&lp, 1, 5000) != 1) return DeadlineExceededError("accept timed out");
  UniqueFd s(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!s.valid()) return ErrnoStatus(errno, "accept");
  char buf[16] = {};
  pollfd sp{s.get(), POLLIN, 0};
  if (::poll(&sp, 1, 5000) != 1) return DeadlineExceededError("read timed out");
  ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
  if (std::string(buf, n > 0 ? static_cast<size_t>(n) : 0) != "hello pod") {
    return InternalError("wrong bytes received");
  }
  return OkStatus();
}

class CniTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RootWithPlugins()) GTEST_SKIP() << "needs root and " << kPluginDir << "/bridge";
    // Tests of this binary may run as parallel processes (ctest -j); the
    // host-wide things (ip_forward, portmap's top-level chains) are restored
    // per test, so tests take turns.
    // The lock is an abstract Unix socket name: nothing on disk, and freed
    // when the process dies.
    lock_fd_.Reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(lock_fd_.valid());
    sockaddr_un lock_addr{};
    lock_addr.sun_family = AF_UNIX;
    constexpr std::string_view kLockName = "berth-cni-test-lock";
    std::memcpy(lock_addr.sun_path + 1, kLockName.data(), kLockName.size());
    socklen_t lock_len = offsetof(sockaddr_un, sun_path) + 1 + kLockName.size();
    while (::bind(lock_fd_.get(), reinterpret_cast<sockaddr*>(&lock_addr), lock_len) != 0) {
      ASSERT_EQ(errno, EADDRINUSE);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ip_forward_ = ReadOrEmpty("/proc/sys/net/ipv4/ip_forward");
    hostport_chains_existed_ =
        Shell("iptables-save -t nat 2>/dev/null").find(":CNI-HOSTPORT-") != std::string::npos;

    dir_ = fs::temp_directory_path() / ("berth-cni-" + RandomHex(4));
    for (const char* d : {"conf", "bin", "cache", "ipam", "netns"}) {
      ASSERT_TRUE(MakeDirs(dir_ / d).ok());
    }
    do {
      bridge_ = "bt" + RandomHex(2);
    } while (fs::exists("/sys/class/net/" + bridge_));
    std::string used =
        Shell("ip -o -4 addr show 2>/dev/null; ip -4 route show table all 2>/dev/null");
    std::mt19937 rng(std::random_device{}());
    do {
      octet_ = static_cast<int>(rng() % 250) + 1;
    } while (used.find(StrCat("10.88.", octet_, ".")) != std::string::npos);
    subnet_prefix_ = StrCat("10.88.", octet_, ".");
    netns_dir_ = dir_ / "netns";
    namespaces_ = std::make_unique<NetworkNamespaces>(netns_dir_);
    WriteMainConfig("1.0.0");
  }

  void TearDown() override {
    if (!lock_fd_.valid()) return;
    for (const auto& p : created_netns_) EXPECT_TRUE(RemoveNetworkNamespace(p).ok());
    if (fs::exists("/sys/class/net/" + bridge_)) Shell("ip link del " + bridge_);
    EXPECT_FALSE(fs::exists("/sys/class/net/" + bridge_));
    ::umount2(netns_dir_.c_str(), MNT_DETACH);
    // Nothing of ours may stay in the firewall.
    std::string rules = Shell("iptables-save 2>/dev/null; ip6tables-save 2>/dev/null");
    for (const auto& id : container_ids_) EXPECT_EQ(rules.find(id), std::string::npos) << id;
    if (!hostport_chains_existed_) RemoveHostportChains();
    if (!ip_forward_.empty() && ReadOrEmpty("/proc/sys/net/ipv4/ip_forward") != ip_forward_) {
      std::ofstream("/proc/sys/net/ipv4/ip_forward") << ip_forward_;
    }
    EXPECT_TRUE(RemoveAll(dir_).ok());
  }

  // portmap leaves its top-level chains (CNI-HOSTPORT-*) and their jumps
  // behind after the last DEL; remove them when this test made them and no
  // other container's chain (CNI-DN-*) still hangs off them.
  void RemoveHostportChains() {
    std::string nat = Shell("iptables-save -t nat 2>/dev/null");
    if (nat.find(":CNI-HOSTPORT-") == std::string::npos) return;
    if (nat.find(":CNI-DN-") != std::string::npos) return;
    std::string script = "*nat\n";
    std::vector<std::string> chains;
    std::istringstream lines(nat);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(":CNI-HOSTPORT-", 0) == 0) {
        chains.push_back(line.substr(1, line.find(' ') - 1));
      } else if (line.rfind("-A ", 0) == 0 && line.find("-j CNI-HOSTPORT-") != std::string::npos &&
                 line.rfind("-A CNI-HOSTPORT-", 0) != 0) {
        script += "-D" + line.substr(2) + "\n";
      }
    }
    for (const auto& c : chains) script += "-F " + c + "\n";
    for (const auto& c : chains) script += "-X " + c + "\n";
    script += "COMMIT\n";
    ASSERT_TRUE(WriteFileAtomic(dir_ / "cleanup.rules", script).ok());
    Shell("iptables-restore --noflush < " + (dir_ / "cleanup.rules").string() + " 2>&1");
    EXPECT_EQ(Shell("iptables-save -t nat 2>/dev/null").find("CNI-HOSTPORT-"), std::string::npos);
  }

  json Ipam() const {
    return {{"type", "host-local"},
            {"ranges", json::array({json::array({{{"subnet", subnet_prefix_ + "0/24"}}})})},
            {"dataDir", (dir_ / "ipam").string()}};
  }
  json Bridge() const {
    return {{"type", "bridge"}, {"bridge", bridge_}, {"isGateway", true}, {"ipam", Ipam()}};
  }
  void WriteConfig(const json& plugins, const std::string& version = "1.0.0") {
    json list = {{"cniVersion", version}, {"name", network_}, {"plugins", plugins}};
    ASSERT_TRUE(WriteFileAtomic(dir_ / "conf" / "10-berth-test.conflist", list.dump()).ok());
  }
  void WriteMainConfig(const std::string& version) {
    WriteConfig(
        json::array({Bridge(), {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}}}),
        version);
  }
  void WriteScript(const std::string& name, const std::string& body) {
    ASSERT_TRUE(WriteFileAtomic(dir_ / "bin" / name, "#!/bin/sh\n" + body, 0755).ok());
  }

  CniOptions Options() const {
    CniOptions o;
    o.conf_dir = dir_ / "conf";
    o.bin_dirs = {(dir_ / "bin").string(), kPluginDir};
    o.cache_dir = dir_ / "cache";
    return o;
  }

  fs::path NewNetns() {
    auto p = namespaces_->Create("pod-" + RandomHex(4));
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return {};
    created_netns_.push_back(*p);
    return *p;
  }

  PodNetworkRequest Request(const fs::path& netns) {
    PodNetworkRequest r;
    r.container_id = RandomHex(32);
    container_ids_.push_back(r.container_id);
    r.netns_path = netns.string();
    r.pod_name = "web-" + r.container_id.substr(0, 6);
    r.pod_namespace = "default";
    r.pod_uid = RandomHex(16);
    return r;
  }

  // Addresses host-local holds for the test network.
  std::vector<std::string> AllocatedIps() const {
    std::vector<std::string> out;
    for (const auto& f : ListDir(dir_ / "ipam" / network_)) {
      if (f.rfind(subnet_prefix_, 0) == 0) out.push_back(f);
    }
    return out;
  }
  std::vector<std::string> BridgePorts() const {
    return ListDir("/sys/class/net/" + bridge_ + "/brif");
  }
  std::vector<std::string> CacheFiles() const { return ListDir(dir_ / "cache" / "results"); }

  void ExpectNothingLeft(const fs::path& netns) {
    EXPECT_EQ(AllocatedIps(), std::vector<std::string>{});
    // When the namespace itself was removed, the kernel destroys its veth
    // end (and so the bridge port) from a work queue, a moment later.
    for (int i = 0; i < 40 && !BridgePorts().empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(BridgePorts(), std::vector<std::string>{});
    EXPECT_EQ(CacheFiles(), std::vector<std::string>{});
    if (!netns.empty() && fs::exists(netns)) {
      EXPECT_EQ(InterfacesIn(netns), std::vector<std::string>{"lo"});
    }
  }

  UniqueFd lock_fd_;
  std::string ip_forward_;
  bool hostport_chains_existed_ = false;
  fs::path dir_;
  fs::path netns_dir_;
  std::string bridge_;
  int octet_ = 0;
  std::string subnet_prefix_;
  const std::string network_ = "berth-test";
  std::unique_ptr<NetworkNamespaces> namespaces_;
  std::vector<fs::path> created_netns_;
  std::vector<std::string> container_ids_;
};

TEST_F(CniTest, NamespaceCreateAndRemove) {
  auto ns = namespaces_->Create("one");
  ASSERT_TRUE(ns.ok()) << ns.status();
  created_netns_.push_back(*ns);
  EXPECT_EQ(*ns, netns_dir_ / "one");
  auto is_ns = IsNetworkNamespace(*ns);
  ASSERT_TRUE(is_ns.ok()) << is_ns.status();
  EXPECT_TRUE(*is_ns);
  EXPECT_EQ(namespaces_->Create("one").status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(namespaces_->Create("../x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(namespaces_->Create("").status().code(), StatusCode::kInvalidArgument);

  // The directory is a mount point with shared propagation, as iproute2 makes it.
  std::string mountinfo = ReadOrEmpty("/proc/self/mountinfo");
  std::istringstream lines(mountinfo);
  bool dir_shared = false;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mountpoint, opts, tag;
    fields >> id >> parent >> dev >> root >> mountpoint >> opts >> tag;
    if (mountpoint == netns_dir_.string() && tag.rfind("shared:", 0) == 0) dir_shared = true;
  }
  EXPECT_TRUE(dir_shared) << mountinfo;

  // A new namespace: only lo, and down until the loopback plugin runs.
  EXPECT_EQ(InterfacesIn(*ns), std::vector<std::string>{"lo"});
  EXPECT_FALSE(InterfaceUpIn(*ns, "lo"));
  // A second one is a different namespace.
  auto two = namespaces_->Create("two");
  ASSERT_TRUE(two.ok());
  created_netns_.push_back(*two);
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat(ns->c_str(), &a), 0);
  ASSERT_EQ(::stat(two->c_str(), &b), 0);
  EXPECT_NE(a.st_ino, b.st_ino);

  ASSERT_TRUE(namespaces_->Remove("one").ok());
  EXPECT_FALSE(fs::exists(*ns));
  EXPECT_EQ(IsNetworkNamespace(*ns).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(namespaces_->Remove("one").ok());
  EXPECT_TRUE(RemoveNetworkNamespace(*ns).ok());
  EXPECT_FALSE(RunInNetworkNamespace(*ns, [] { return OkStatus(); }).ok());
  // A plain file is not a namespace.
  ASSERT_TRUE(WriteFileAtomic(dir_ / "plain", "x").ok());
  auto plain = IsNetworkNamespace(dir_ / "plain");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(*plain);
}

// Port-forward's connection: loopback of a pod's namespace, without CNI.
TEST_F(CniTest, ConnectLoopbackReachesTheNamespacesLoopbackOnly) {
  fs::path ns = NewNetns();
  ASSERT_TRUE(RunInNetworkNamespace(ns, [] {
                UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
                struct ifreq req {};
                std::snprintf(req.ifr_name, IFNAMSIZ, "lo");
                req.ifr_flags = IFF_UP;
                if (::ioctl(fd.get(), SIOCSIFFLAGS, &req) != 0) return ErrnoStatus(errno, "lo up");
                return OkStatus();
              }).ok());
  uint16_t port = 0;
  auto listener = ListenIn(ns, "127.0.0.1", &port);
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto conn = ConnectLoopback(ns, port, std::chrono::seconds(5));
  ASSERT_TRUE(conn.ok()) << conn.status();
  EXPECT_EQ(::fcntl(conn->get(), F_GETFL) & O_NONBLOCK, 0) << "handed out non-blocking";
  UniqueFd accepted(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted.valid());
  ASSERT_EQ(::send(conn->get(), "ping", 4, MSG_NOSIGNAL), 4);
  char buf[8] = {};
  pollfd pfd{accepted.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 5000), 1);
  EXPECT_EQ(::recv(accepted.get(), buf, sizeof buf, 0), 4);
  EXPECT_STREQ(buf, "ping");
  // The port is the namespace's, not the host's: nothing listens on the
  // host's loopback at that port (almost surely), nor on another port there.
  listener->Reset();
  auto refused = ConnectLoopback(ns, port, std::chrono::seconds(5));
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status();
  EXPECT_NE(refused.status().message().find("nothing listens on port"), std::string::npos);
  // The host's own loopback when no namespace is given.
  uint16_t host_port = 0;
  UniqueFd host_listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = Addr("127.0.0.1", 0);
  ASSERT_EQ(::bind(host_listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(host_listener.get(), 4), 0);
  socklen_t len = sizeof a;
  ::getsockname(host_listener.get(), reinterpret_cast<sockaddr*>(&a), &len);
  host_port = ntohs(a.sin_port);
  auto host_conn = ConnectLoopback("", host_port, std::chrono::seconds(5));
  EXPECT_TRUE(host_conn.ok()) << host_conn.status();
  EXPECT_EQ(ConnectLoopback(ns, host_port, std::chrono::seconds(5)).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(
      ConnectLoopback("/nonexistent/netns", host_port, std::chrono::seconds(5)).status().code(),
      StatusCode::kNotFound);
}

TEST_F(CniTest, SetUpPodGivesReachableAddressAndTearDownReleasesIt) {
  fs::path ns = NewNetns();
  CniManager cni(Options());
  ASSERT_TRUE(cni.Ready().ok()) << cni.Ready();
  PodNetworkRequest req = Request(ns);
  auto res = cni.SetUpPod(req);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->ip.rfind(subnet_prefix_, 0), 0u) << res->ip;
  EXPECT_TRUE(res->additional_ips.empty());
  EXPECT_EQ(res->network_name, network_);
  EXPECT_EQ(res->cni_version, "1.0.0");

  EXPECT_EQ(InterfacesIn(ns), (std::vector<std::string>{"eth0", "lo"}));
  EXPECT_TRUE(InterfaceUpIn(ns, "lo"));
  EXPECT_TRUE(InterfaceUpIn(ns, "eth0"));
  EXPECT_EQ(AllocatedIps(), std::vector<std::string>{res->ip});
  EXPECT_EQ(BridgePorts().size(), 1u);
  EXPECT_EQ(CacheFiles(),
            (std::vector<std::string>{StrCat(network_, "-", req.container_id, "-eth0"),
                                      StrCat("cni-loopback-", req.container_id, "-lo")}));
  auto cached = cni.CachedResult(req.container_id);
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_EQ(cached->ip, res->ip);

  // Host -> pod over the bridge.
  uint16_t port = 0;
  auto listener = ListenIn(ns, res->ip, &port);
  ASSERT_TRUE(listener.ok()) << listener.status();
  Status rt = RoundTrip(*listener, res->ip, port);
  EXPECT_TRUE(rt.ok()) << rt;
  // Loopback inside the pod works.
  uint16_t lo_port = 0;
  auto lo_listener = ListenIn(ns, "127.0.0.1", &lo_port);
  ASSERT_TRUE(lo_listener.ok()) << lo_listener.status();
  Status lo_rt =
      RunInNetworkNamespace(ns, [&] { return RoundTrip(*lo_listener, "127.0.0.1", lo_port); });
  EXPECT_TRUE(lo_rt.ok()) << lo_rt;
  listener->Reset();
  lo_listener->Reset();

  // A second ADD for the same sandbox is refused, and changes nothing.
  EXPECT_EQ(cni.SetUpPod(req).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(AllocatedIps(), std::vector<std::string>{res->ip});

  Status down = cni.TearDownPod(req);
  ASSERT_TRUE(down.ok()) << down;
  ExpectNothingLeft(ns);
  EXPECT_FALSE(InterfaceUpIn(ns, "lo"));  // the loopback plugin's DEL sets it down
  EXPECT_EQ(cni.CachedResult(req.container_id).status().code(), StatusCode::kNotFound);
  Status again = cni.TearDownPod(req);
  EXPECT_TRUE(again.ok()) << again;
  ExpectNothingLeft(ns);
}

TEST_F(CniTest, TearDownAfterNamespaceRemoved) {
  fs::path ns = NewNetns();
  CniManager cni(Options());
  PodNetworkRequest req = Request(ns);
  auto res = cni.SetUpPod(req);
  ASSERT_TRUE(res.ok()) << res.status();
  ASSERT_TRUE(RemoveNetworkNamespace(ns).ok());
  Status down = cni.TearDownPod(req);
  ASSERT_TRUE(down.ok()) << down;
  ExpectNothingLeft({});
  EXPECT_TRUE(cni.TearDownPod(req).ok());
  // Half-removed (unmounted, not unlinked): a plain file at the path.
  fs::path ns2 = NewNetns();
  PodNetworkRequest req2 = Request(ns2);
  ASSERT_TRUE(cni.SetUpPod(req2).ok());
  ASSERT_EQ(::umount2(ns2.c_str(), MNT_DETACH), 0);
  ASSERT_TRUE(fs::exists(ns2));
  Status down2 = cni.TearDownPod(req2);
  ASSERT_TRUE(down2.ok()) << down2;
  ExpectNothingLeft({});
}

TEST_F(CniTest, TearDownFromCacheAfterRestartAndConfigChange) {
  fs::path ns = NewNetns();
  PodNetworkRequest req = Request(ns);
  std::string ip;
  {
    CniManager cni(Options());
    auto res = cni.SetUpPod(req);
    ASSERT_TRUE(res.ok()) << res.status();
    ip = res->ip;
  }
  // The config that made the pod's network is gone, the daemon is new.
  fs::remove(dir_ / "conf" / "10-berth-test.conflist");
  CniManager restarted(Options());
  EXPECT_EQ(restarted.Ready().code(), StatusCode::kFailedPrecondition);
  auto cached = restarted.CachedResult(req.container_id);
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_EQ(cached->ip, ip);
  PodNetworkRequest bare;  // only what a restarted daemon must know
  bare.container_id = req.container_id;
  bare.netns_path = req.netns_path;
  Status down = restarted.TearDownPod(bare);
  ASSERT_TRUE(down.ok()) << down;
  ExpectNothingLeft(ns);
}

TEST_F(CniTest, TearDownWithoutCacheUsesConfig) {
  fs::path ns = NewNetns();
  CniManager cni(Options());
  PodNetworkRequest req = Request(ns);
  auto res = cni.SetUpPod(req);
  ASSERT_TRUE(res.ok()) << res.status();
  ASSERT_TRUE(RemoveAll(dir_ / "cache").ok());
  Status down = cni.TearDownPod(req);
  ASSERT_TRUE(down.ok()) << down;
  ExpectNothingLeft(ns);

  // A damaged cache (a truncated entry, a temp file of an interrupted write)
  // counts as no cache and is cleaned up; another pod's entry is untouched.
  PodNetworkRequest other = Request(NewNetns());
  ASSERT_TRUE(cni.SetUpPod(other).ok());
  req = Request(ns);
  res = cni.SetUpPod(req);
  ASSERT_TRUE(res.ok()) << res.status();
  fs::path entry = dir_ / "cache" / "results" / StrCat(network_, "-", req.container_id, "-eth0");
  std::string content = ReadOrEmpty(entry);
  ASSERT_FALSE(content.empty());
  ASSERT_TRUE(WriteFileAtomic(entry, content.substr(0, content.size() / 2)).ok());
  ASSERT_TRUE(WriteFileAtomic(entry.string() + ".tmp-0a0b0c", "{").ok());
  down = cni.TearDownPod(req);
  ASSERT_TRUE(down.ok()) << down;
  EXPECT_EQ(CacheFiles(),
            (std::vector<std::string>{StrCat(network_, "-", other.container_id, "-eth0"),
                                      StrCat("cni-loopback-", other.container_id, "-lo")}));
  EXPECT_EQ(AllocatedIps().size(), 1u);
  ASSERT_TRUE(cni.TearDownPod(other).ok());
  ExpectNothingLeft(ns);
}

TEST_F(CniTest, NoConfigIsNotReadyButTearDownIsOk) {
  fs::remove(dir_ / "conf" / "10-berth-test.conflist");
  fs::path ns = NewNetns();
  CniManager cni(Options());
  PodNetworkRequest req = Request(ns);
  auto res = cni.SetUpPod(req);
  EXPECT_EQ(res.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(res.status().message().find((dir_ / "conf").string()), std::string::npos);
  EXPECT_TRUE(cni.TearDownPod(req).ok());
  EXPECT_FALSE(InterfaceUpIn(ns, "lo"));  // nothing ran on ADD
  PodNetworkRequest bad = req;
  bad.container_id = "../etc";
  EXPECT_EQ(cni.SetUpPod(bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cni.TearDownPod(bad).code(), StatusCode::kInvalidArgument);
}

TEST_F(CniTest, FailingPluginIsReportedAndEverythingUndone) {
  WriteScript("failer",
              StrCat("echo \"$CNI_COMMAND\" >> ", (dir_ / "failer.log").string(), "\n",
                     "cat > /dev/null\n"
                     "if [ \"$CNI_COMMAND\" = ADD ]; then\n"
                     "  echo '{\"cniVersion\":\"1.0.0\",\"code\":7,"
                     "\"msg\":\"berth injected failure 4711\",\"details\":\"on purpose\"}'\n"
                     "  exit 1\n"
                     "fi\n"));
  WriteConfig(json::array({Bridge(), {{"type", "failer"}}}));
  fs::path ns = NewNetns();
  CniManager cni(Options());
  PodNetworkRequest req = Request(ns);
  auto res = cni.SetUpPod(req);
  ASSERT_FALSE(res.ok());
  const std::string& msg = res.status().message();
  EXPECT_NE(msg.find("berth injected failure 4711"), std::string::npos) << msg;
  EXPECT_NE(msg.find("failer"), std::string::npos) << msg;
  EXPECT_NE(msg.find(network_), std::string::npos) << msg;
  EXPECT_NE(msg.find(req.container_id), std::string::npos) << msg;
  EXPECT_EQ(ReadOrEmpty(dir_ / "failer.log"), "ADD\nDEL\n");
  ExpectNothingLeft(ns);
  EXPECT_FALSE(InterfaceUpIn(ns, "lo"));  // loopback was undone too
}

TEST_F(CniTest, PluginWithoutErrorJsonReportsStderr) {
  WriteScript("crasher",
              "cat > /dev/null\n"
              "[ \"$CNI_COMMAND\" = DEL ] && exit 0\n"
              "echo 'something broke badly' >&2\nexit 3\n");
  WriteConfig(json::array({Bridge(), {{"type", "crasher"}}}));
  fs::path ns = NewNetns();
  CniManager cni(Options());
  auto res = cni.SetUpPod(Request(ns));
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().message().find("something broke badly"), std::string::npos)
      << res.status();
  EXPECT_NE(res.status().message().find("status 3"), std::string::npos) << res.status();
  ExpectNothingLeft(ns);
}

TEST_F(CniTest, MissingPluginBinaryIsNamed) {
  // Present when the config is loaded, gone when ADD runs it.
  WriteScript("vanishing", "exit 0\n");
  WriteConfig(json::array({Bridge(), {{"type", "vanishing"}}}));
  fs::path ns = NewNetns();
  CniManager cni(Options());
  ASSERT_TRUE(cni.Ready().ok());
  fs::remove(dir_ / "bin" / "vanishing");
  auto res = cni.SetUpPod(Request(ns));
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().message().find("vanishing"), std::string::npos) << res.status();
}

TEST_F(CniTest, HangingPluginIsKilledAtTimeout) {
  fs::path pidfile = dir_ / "sleep.pid";
  WriteScript("sleeper", StrCat("cat > /dev/null\n"
                                "[ \"$CNI_COMMAND\" = DEL ] && exit 0\n"
                                "sleep 60 &\necho $! > ",
                                pidfile.string(), "\nwait\n"));
  WriteConfig(json::array({{{"type", "sleeper"}}}));
  fs::path ns = NewNetns();
  CniOptions options = Options();
  options.plugin_timeout = std::chrono::milliseconds(1500);
  CniManager cni(options);
  auto start = std::chrono::steady_clock::now();
  auto res = cni.SetUpPod(Request(ns));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(res.status().code(), StatusCode::kDeadlineExceeded) << res.status();
  EXPECT_NE(res.status().message().find("sleeper"), std::string::npos) << res.status();
  EXPECT_LT(took, std::chrono::seconds(20));
  // The plugin's child died with it (same process group).
  pid_t sleep_pid = ParseDecimal<pid_t>(ReadOrEmpty(pidfile)).value_or(0);
  ASSERT_GT(sleep_pid, 0);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    std::string stat = ReadOrEmpty(StrCat("/proc/", sleep_pid, "/stat"));
    gone = stat.empty() || stat.find(") Z") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(gone);
  EXPECT_EQ(CacheFiles(), std::vector<std::string>{});
}

TEST_F(CniTest, PortMappingsReachPortmapAndAreRemovedOnTearDown) {
  // A wrapper named portmap, found first, that records its stdin.
  WriteScript("portmap", StrCat("f=", dir_.string(),
                                "/portmap-$CNI_COMMAND.json\n"
                                "cat > \"$f\"\nexec ",
                                kPluginDir, "/portmap < \"$f\"\n"));
  fs::path ns = NewNetns();
  CniManager cni(Options());
  PodNetworkRequest req = Request(ns);
  int host_port = 20000 + static_cast<int>(std::random_device{}() % 20000);
  req.port_mappings = {{host_port, 80, "TCP", "127.0.0.1"},
                       {host_port + 1, 53, "udp", ""},
                       {0, 8080, "tcp", ""}};  // no host port: not a mapping
  auto res = cni.SetUpPod(req);
  ASSERT_TRUE(res.ok()) << res.status();

  json add = json::parse(ReadOrEmpty(dir_ / "portmap-ADD.json"), nullptr, false);
  ASSERT_TRUE(add.is_object()) << ReadOrEmpty(dir_ / "portmap-ADD.json");
  json want = json::array(
      {{{"hostPort", host_port},
        {"containerPort", 80},
        {"protocol", "tcp"},
        {"hostIP", "127.0.0.1"}},
       {{"hostPort", host_port + 1}, {"containerPort", 53}, {"protocol", "udp"}, {"hostIP", ""}}});
  EXPECT_EQ(add["runtimeConfig"]["portMappings"], want) << add.dump();
  EXPECT_EQ(add["name"], network_);
  EXPECT_EQ(add["cniVersion"], "1.0.0");
  EXPECT_EQ(add["capabilities"]["portMappings"], true);
  ASSERT_TRUE(add["prevResult"]["ips"].is_array()) << add.dump();
  EXPECT_EQ(add["prevResult"]["ips"][0]["address"], res->ip + "/24");
  // portmap's DNAT rules are there, tagged with the container id.
  EXPECT_NE(Shell("iptables-save -t nat").find(req.container_id), std::string::npos);

  // DEL gets the mappings from the cache even if the caller no longer has them.
  PodNetworkRequest later = req;
  later.port_mappings.clear();
  Status down = cni.TearDownPod(later);
  ASSERT_TRUE(down.ok()) << down;
  json del = json::parse(ReadOrEmpty(dir_ / "portmap-DEL.json"), nullptr, false);
  ASSERT_TRUE(del.is_object());
  EXPECT_EQ(del["runtimeConfig"]["portMappings"], want);
  EXPECT_EQ(del["prevResult"]["ips"][0]["address"], res->ip + "/24");
  EXPECT_EQ(Shell("iptables-save; ip6tables-save").find(req.container_id), std::string::npos);
  ExpectNothingLeft(ns);
}

TEST_F(CniTest, PluginsWithoutCapabilityGetNoRuntimeConfig) {
  // Records stdin and environment, then lets portmap (given no mappings, it
  // passes prevResult through) produce the result.
  WriteScript("recorder", StrCat("f=", dir_.string(),
                                 "/recorder-$CNI_COMMAND.json\n"
                                 "cat > \"$f\"\n"
                                 "env | grep '^CNI_' | sort > ",
                                 dir_.string(), "/recorder-$CNI_COMMAND.env\n", "exec ", kPluginDir,
                                 "/portmap < \"$f\"\n"));
  WriteConfig(json::array({Bridge(), {{"type", "recorder"}, {"extra", 1}}}));
  fs::path ns = NewNetns();
  CniManager cni(Options());
  PodNetworkRequest req = Request(ns);
  req.port_mappings = {{30000, 80, "tcp", ""}};
  auto res = cni.SetUpPod(req);
  ASSERT_TRUE(res.ok()) << res.status();
  json add = json::parse(ReadOrEmpty(dir_ / "recorder-ADD.json"), nullptr, false);
  ASSERT_TRUE(add.is_object());
  EXPECT_FALSE(add.contains("runtimeConfig")) << add.dump();
  EXPECT_EQ(add["extra"], 1);
  EXPECT_TRUE(add.contains("prevResult"));
  std::string env = ReadOrEmpty(dir_ / "recorder-ADD.env");
  EXPECT_NE(env.find("CNI_COMMAND=ADD\n"), std::string::npos) << env;
  EXPECT_NE(env.find("CNI_CONTAINERID=" + req.container_id + "\n"), std::string::npos) << env;
  EXPECT_NE(env.find("CNI_NETNS=" + ns.string() + "\n"), std::string::npos) << env;
  EXPECT_NE(env.find("CNI_IFNAME=eth0\n"), std::string::npos) << env;
  EXPECT_NE(env.find(StrCat("CNI_PATH=", (dir_ / "bin").string(), ":", kPluginDir, "\n")),
            std::string::npos)
      << env;
  EXPECT_NE(env.find(StrCat("CNI_ARGS=K8S_POD_NAMESPACE=default;K8S_POD_NAME=", req.pod_name,
                            ";K8S_POD_INFRA_CONTAINER_ID=", req.container_id,
                            ";K8S_POD_UID=", req.pod_uid, ";IgnoreUnknown=1\n")),
            std::string::npos)
      << env;
  ASSERT_TRUE(cni.TearDownPod(req).ok());
  json del = json::parse(ReadOrEmpty(dir_ / "recorder-DEL.json"), nullptr, false);
  ASSERT_TRUE(del.is_object());
  EXPECT_EQ(del["prevResult"]["ips"][0]["address"], res->ip + "/24");
  EXPECT_NE(ReadOrEmpty(dir_ / "recorder-DEL.env").find("CNI_COMMAND=DEL\n"), std::string::npos);
  ExpectNothingLeft(ns);
}

TEST_F(CniTest, ConcurrentPodsGetDistinctAddresses) {
  CniManager cni(Options());
  constexpr int kPods = 4;
  std::vector<fs::path> nss;
  std::vector<PodNetworkRequest> reqs;
  for (int i = 0; i < kPods; ++i) {
    nss.push_back(NewNetns());
    reqs.push_back(Request(nss.back()));
  }
  std::vector<StatusOr<NetworkResult>> results(kPods, InternalError("not run"));
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kPods; ++i)
      threads.emplace_back([&, i] { results[i] = cni.SetUpPod(reqs[i]); });
    for (auto& t : threads) t.join();
  }
  std::set<std::string> ips;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    ips.insert(r->ip);
  }
  EXPECT_EQ(ips.size(), static_cast<size_t>(kPods));
  EXPECT_EQ(AllocatedIps().size(), static_cast<size_t>(kPods));
  EXPECT_EQ(BridgePorts().size(), static_cast<size_t>(kPods));
  {
    std::vector<std::thread> threads;
    std::vector<Status> st(kPods);
    for (int i = 0; i < kPods; ++i)
      threads.emplace_back([&, i] { st[i] = cni.TearDownPod(reqs[i]); });
    for (auto& t : threads) t.join();
    for (const auto& s : st) EXPECT_TRUE(s.ok()) << s;
  }
  ExpectNothingLeft({});
}

class CniVersionTest : public CniTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(CniVersionTest, SetUpAndTearDown) {
  const std::string& version = GetParam();
  if (version < "0.3.0") {
    WriteConfig(json::array({Bridge()}), version);  // chaining starts at 0.3.0
  } else {
    WriteMainConfig(version);
  }
  fs::path ns = NewNetns();
  CniManager cni(Options());
  PodNetworkRequest req = Request(ns);
  req.port_mappings = {{31000 + static_cast<int>(std::random_device{}() % 1000), 80, "tcp", ""}};
  auto res = cni.SetUpPod(req);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->cni_version, version);
  EXPECT_EQ(res->ip.rfind(subnet_prefix_, 0), 0u) << res->raw;
  EXPECT_EQ(AllocatedIps(), std::vector<std::string>{res->ip});
  EXPECT_EQ(InterfacesIn(ns), (std::vector<std::string>{"eth0", "lo"}));
  Status down = cni.TearDownPod(req);
  ASSERT_TRUE(down.ok()) << down;
  ExpectNothingLeft(ns);
}

INSTANTIATE_TEST_SUITE_P(SpecVersions, CniVersionTest,
                         ::testing::Values("1.0.0", "0.4.0", "0.3.1", "0.2.0"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '.', '_');
                           return "v" + n;
                         });

TEST(ParseCniResultTest, CurrentFormatPicksPodInterfaceAndPrefersIpv4) {
  auto r = ParseCniResult(R"({"cniVersion":"1.0.0",
    "interfaces":[{"name":"br0"},{"name":"veth1"},{"name":"eth0","sandbox":"/run/netns/x"},
                  {"name":"net1","sandbox":"/run/netns/x"}],
    "ips":[{"address":"10.0.0.1/24","interface":0},
           {"address":"fd00::5/64","interface":2},
           {"address":"10.1.2.3/16","interface":2,"gateway":"10.1.0.1"},
           {"address":"10.9.9.9/24","interface":3},
           {"address":"192.168.5.5/24"}]})",
                          "eth0");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ip, "10.1.2.3");
  EXPECT_EQ(r->additional_ips, (std::vector<std::string>{"fd00::5", "192.168.5.5"}));
  EXPECT_EQ(r->cni_version, "1.0.0");
}

TEST(ParseCniResultTest, OldFormatAndOnlyIpv6) {
  auto r = ParseCniResult(
      R"({"cniVersion":"0.2.0","ip4":{"ip":"10.4.0.7/16","gateway":"10.4.0.1"},"ip6":{"ip":"fd00::7/64"}})",
      "eth0");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ip, "10.4.0.7");
  EXPECT_EQ(r->additional_ips, std::vector<std::string>{"fd00::7"});
  auto v6 = ParseCniResult(
      R"({"cniVersion":"0.4.0","ips":[{"version":"6","address":"fd00::9/64"}]})", "eth0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->ip, "fd00::9");
  auto none = ParseCniResult(R"({"cniVersion":"1.0.0"})", "eth0");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->ip, "");
}

TEST(ParseCniResultTest, ErrorsAndGarbageAreRejected) {
  EXPECT_EQ(ParseCniResult(R"({"cniVersion":"1.0.0","code":11,"msg":"try again"})", "eth0")
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCniResult("not json", "eth0").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCniResult("[1]", "eth0").status().code(), StatusCode::kInvalidArgument);
  // Wrong member types do not throw.
  auto odd = ParseCniResult(
      R"({"cniVersion":5,"interfaces":[{"name":1}],"ips":[{"address":"10.0.0.1/24","interface":0},{"address":7}]})",
      "eth0");
  ASSERT_TRUE(odd.ok()) << odd.status();
  EXPECT_EQ(odd->ip, "");
  EXPECT_EQ(odd->cni_version, "");
}

}  // namespace
}  // namespace berth::network
