// The default pod network on a real berthd: UpdateRuntimeConfig with a pod CIDR and an empty
// CNI config directory makes berthd write a bridge + host-local + portmap + loopback network,
// NetworkReady turns true, and pods get addresses in that CIDR and reach each other. A
// directory that has a config of its own is never touched.
#include <sstream>

#include "network/pod_network.h"
#include "runtime_fixture.h"

namespace berth::testing {
namespace {

constexpr char kDefaultFile[] = "99-berth-default.conflist";

class DefaultNetworkIT : public RuntimeServiceIT {
 protected:
  // The built-in template (as `berthd config default` describes it), with a bridge of our own
  // instead of berth0 so the test shares no device with anything else on the host. It goes
  // through cni.default_network_template, so the template file is exercised as well.
  void BeforeDaemonStart() override {
    bridge_ = StrCat("bd", RandomHex(2));
    ASSERT_FALSE(Exists(fs::path("/sys/class/net") / bridge_)) << bridge_ << " exists";
    const std::string bridge = bridge_;
    cleanups_.push_back([bridge] {
      if (Exists(fs::path("/sys/class/net") / bridge)) {
        StatusOr<ProcessResult> r = RunProcess({"ip", "link", "del", bridge});
        EXPECT_TRUE(r.ok() && r->exit_code == 0) << "ip link del " << bridge;
      }
    });
    std::string tmpl(network::BuiltinPodNetworkTemplate());
    const std::string builtin_bridge = "\"bridge\": \"berth0\"";
    const size_t at = tmpl.find(builtin_bridge);
    ASSERT_NE(at, std::string::npos) << tmpl;
    tmpl.replace(at, builtin_bridge.size(), StrCat("\"bridge\": \"", bridge_, "\""));
    template_file_ = berthd_->dir() / "default-network.json";
    IT_ASSERT_OK(WriteFileAtomic(template_file_, tmpl));

    std::mt19937 rng(std::random_device{}());
    bool found = false;
    for (int i = 0; i < 50 && !found; ++i) {
      const uint32_t a = 100 + rng() % 101, b = rng() % 256;
      found = !OverlapsHostRoute((10u << 24) | (a << 16) | (b << 8), 24);
      prefix_ = StrCat("10.", a, ".", b, ".");
    }
    ASSERT_TRUE(found) << "no free 10.x.y.0/24 on this host";
  }

  std::vector<std::string> DaemonArgs() override {
    std::vector<std::string> args = DefaultArgs();
    args.insert(args.end(), {"--cni-default-network-template", template_file_.string()});
    return args;
  }

  grpc::Status UpdatePodCidr(const std::string& cidr) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::UpdateRuntimeConfigRequest req;
    req.mutable_runtime_config()->mutable_network_config()->set_pod_cidr(cidr);
    cri::UpdateRuntimeConfigResponse resp;
    return berthd_->runtime().UpdateRuntimeConfig(&ctx, req, &resp);
  }

  // NetworkReady of Status; its message when false.
  std::pair<bool, std::string> NetworkReady() {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::StatusRequest req;
    cri::StatusResponse resp;
    grpc::Status s = berthd_->runtime().Status(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << Describe(s);
    for (const cri::RuntimeCondition& c : resp.status().conditions()) {
      if (c.type() == "NetworkReady") return {c.status(), c.message()};
    }
    ADD_FAILURE() << "Status has no NetworkReady condition";
    return {false, ""};
  }

  // Lines of the nat table that name `id` (the bridge plugin's masquerading rules carry the
  // container id in their comments).
  static std::vector<std::string> NatRulesOf(const std::string& id) {
    std::vector<std::string> out;
    StatusOr<ProcessResult> r = RunProcess({"iptables-save", "-t", "nat"});
    if (!r.ok() || r->exit_code != 0) return {"iptables-save failed"};
    std::istringstream in(r->out);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find(id) != std::string::npos) out.push_back(line);
    }
    return out;
  }

  std::string bridge_, prefix_;
  fs::path template_file_;
};

TEST_F(DefaultNetworkIT, PodCidrFromTheKubeletGivesPodsANetwork) {
  const fs::path conf = berthd_->cni_dir() / kDefaultFile;
  const std::string cidr = prefix_ + "0/24";
  auto [ready, why] = NetworkReady();
  EXPECT_FALSE(ready) << "NetworkReady with an empty CNI config directory";
  EXPECT_THAT(why, HasSubstr(berthd_->cni_dir().string()));

  // No CIDR (the kubelet before the node has one), or a bad one: nothing is written.
  IT_EXPECT_GRPC_OK(UpdatePodCidr(""));
  grpc::Status bad = UpdatePodCidr(prefix_ + "7/24");
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(bad);
  EXPECT_THAT(bad.error_message(), HasSubstr("host bits")) << Describe(bad);
  EXPECT_THAT(DirEntries(berthd_->cni_dir()), IsEmpty());
  EXPECT_FALSE(NetworkReady().first);

  IT_ASSERT_GRPC_OK(UpdatePodCidr(cidr));
  ASSERT_TRUE(Exists(conf)) << "no " << conf;
  nlohmann::json list = nlohmann::json::parse(ReadOr(conf), nullptr, false);
  ASSERT_FALSE(list.is_discarded()) << ReadOr(conf);
  std::vector<std::string> types;
  for (const nlohmann::json& p : list["plugins"]) types.push_back(p.value("type", ""));
  EXPECT_EQ(types, (std::vector<std::string>{"bridge", "portmap", "loopback"})) << list.dump();
  EXPECT_EQ(list["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], cidr) << list.dump();
  std::tie(ready, why) = NetworkReady();
  EXPECT_TRUE(ready) << why;
  // The kubelet sends the same CIDR again after its restarts: the file stays as it is.
  const auto written = fs::last_write_time(conf);
  IT_EXPECT_GRPC_OK(UpdatePodCidr(cidr));
  EXPECT_EQ(fs::last_write_time(conf), written);

  // Two pods on it: a server answering one connection, and a client that connects to it.
  cri::PodSandboxConfig server_pod = PodConfig("server", cri::POD, cri::CONTAINER);
  cri::PodSandboxConfig client_pod = PodConfig("client", cri::POD, cri::CONTAINER);
  std::string server_id, client_id;
  IT_ASSERT_GRPC_OK(RunPod(server_pod, &server_id));
  IT_ASSERT_GRPC_OK(RunPod(client_pod, &client_id));
  const std::string server_ip = PodStatusOf(server_id)->network().ip();
  const std::string client_ip = PodStatusOf(client_id)->network().ip();
  for (const std::string& ip : {server_ip, client_ip}) {
    EXPECT_TRUE(ip.starts_with(prefix_) && ParseIpv4(ip).has_value())
        << "pod IP \"" << ip << "\" not in " << cidr;
  }
  EXPECT_NE(server_ip, client_ip);
  const fs::path leases = berthd_->state() / "cni" / "networks" / "berth-default";
  EXPECT_TRUE(Exists(leases / server_ip)) << "no host-local lease under " << leases;
  EXPECT_EQ(DirEntries(fs::path("/sys/class/net") / bridge_ / "brif").size(), 2u);

  ASSERT_TRUE(HasApplet("nc")) << "the test image's busybox has no nc";
  std::string server, client;
  IT_ASSERT_GRPC_OK(CreateCtr(server_id, server_pod,
                              CtrConfig("server", {"nc", "-l", "-p", "8080", "-e", "echo", "pong"}),
                              &server));
  IT_ASSERT_GRPC_OK(StartCtr(server));
  IT_ASSERT_GRPC_OK(
      CreateCtr(client_id, client_pod, CtrConfig("client", {"sleep", "1000"}), &client));
  IT_ASSERT_GRPC_OK(StartCtr(client));
  std::string answer;
  // nc in the server pod may not listen yet: retry while the connection is refused.
  for (auto deadline = Clock::now() + std::chrono::seconds(10); Clock::now() < deadline;) {
    cri::ExecSyncResponse resp;
    grpc::Status s =
        Exec(client, {"sh", "-c", StrCat("nc -w 3 ", server_ip, " 8080 </dev/null")}, 10, &resp);
    ASSERT_TRUE(s.ok()) << Describe(s);
    answer = resp.stdout();
    if (answer == "pong\n") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(answer, "pong\n") << "client pod " << client_ip << " did not reach " << server_ip;
  WaitForState(server, cri::CONTAINER_EXITED, std::chrono::seconds(10));

  for (const std::string& id : {server_id, client_id}) {
    IT_EXPECT_GRPC_OK(StopPod(id));
    IT_EXPECT_GRPC_OK(RemovePod(id));
    EXPECT_THAT(NatRulesOf(id), IsEmpty()) << "masquerading rules of pod " << id << " left";
  }
  std::vector<std::string> left;
  for (const std::string& e : DirEntries(leases)) {
    if (ParseIpv4(e).has_value()) left.push_back(e);
  }
  EXPECT_THAT(left, IsEmpty()) << "host-local leases left";
  EXPECT_THAT(DirEntries(fs::path("/sys/class/net") / bridge_ / "brif"), IsEmpty());
  EXPECT_THAT(DirEntries(berthd_->root() / "cni" / "results"), IsEmpty()) << "CNI cache left";
  ExpectNoLeaks("after removing both pods");
}

TEST_F(DefaultNetworkIT, AnExistingCniConfigIsNeverOverwritten) {
  BridgeNetwork net;
  ASSERT_NO_FATAL_FAILURE(net = SetUpBridgeNetwork("bridge"));
  const fs::path theirs = berthd_->cni_dir() / "10-berth-rt.conflist";
  const std::string before = ReadOr(theirs);
  ASSERT_FALSE(before.empty());
  EXPECT_TRUE(NetworkReady().first);
  IT_EXPECT_GRPC_OK(UpdatePodCidr(prefix_ + "0/24"));
  EXPECT_EQ(DirEntries(berthd_->cni_dir()), (std::vector<std::string>{"10-berth-rt.conflist"}));
  EXPECT_EQ(ReadOr(theirs), before);
  EXPECT_TRUE(NetworkReady().first);

  // Pods keep using that network.
  cri::PodSandboxConfig pod = PodConfig("theirs", cri::POD, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  const std::string ip = PodStatusOf(pod_id)->network().ip();
  EXPECT_TRUE(ip.starts_with(net.prefix)) << ip << " not in " << net.prefix << "0/24";
  IT_EXPECT_GRPC_OK(StopPod(pod_id));
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after removing the pod");
}

}  // namespace
}  // namespace berth::testing
