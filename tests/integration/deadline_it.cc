// Deadlines and keepalive over the real socket: a PullImage whose caller gives up is
// aborted in berthd (the transfer stops, partial files go) unless another caller still
// waits for it; a StopPodSandbox that outlives its caller's deadline finishes and leaves
// consistent state for the retry; the server's keepalive policy as configured in
// src/server/listen.cc (pings every 10 s or slower permitted without calls, faster ones
// answered with GOAWAY).
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <future>

#include "runtime_fixture.h"  // first: see support/berthd_process.h
#include "support/throttle_proxy.h"

namespace berth::testing {
namespace {

using ::testing::Not;

// 16 KiB every 100 ms: about 160 KB/s, so a 2 MiB layer takes some 13 s.
constexpr size_t kTrickleChunk = 16 << 10;
constexpr auto kTricklePeriod = std::chrono::milliseconds(100);

class DeadlineIT : public RuntimeServiceIT {
 protected:
  // Pushes a one-layer image of `bytes` random bytes (uncompressed, so the blob is that
  // large) to the suite's registry and starts a trickling proxy in front of it, which
  // berthd reaches as a plain-http registry of its own. Returns the image reference.
  std::string SlowImage(const std::string& repo, uint64_t bytes, uint64_t seed) {
    ImageSpec spec;
    spec.layers.push_back(RandomDataLayer(bytes, 1, seed, Compression::kNone));
    StatusOr<BuiltImage> built = BuildImage(spec);
    EXPECT_TRUE(built.ok()) << built.status().ToString();
    if (!built.ok()) return "";
    Status pushed = PushImage(PushTarget{registry_->url(), "", "", "", ""}, repo, "v1", *built);
    EXPECT_TRUE(pushed.ok()) << pushed.ToString();
    built_ = std::move(*built);
    proxy_ = std::make_unique<ThrottleProxy>("127.0.0.1", registry_->port(), kTrickleChunk,
                                             kTricklePeriod);
    Status started = proxy_->Start();
    EXPECT_TRUE(started.ok()) << started.ToString();
    Status host = berthd_->AddRegistryHost(proxy_->host(), proxy_->url());
    EXPECT_TRUE(host.ok()) << host.ToString();
    return StrCat(proxy_->host(), "/", repo, ":v1");
  }

  grpc::Status Pull(const std::string& image, std::chrono::milliseconds deadline,
                    cri::PullImageResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    cri::PullImageRequest req;
    req.mutable_image()->set_image(image);
    // A stub of its own: pulls run on several threads at once.
    auto stub = cri::ImageService::NewStub(berthd_->channel());
    return stub->PullImage(&ctx, req, resp);
  }

  bool ImageListed(const std::string& image) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ImageStatusRequest req;
    req.mutable_image()->set_image(image);
    cri::ImageStatusResponse resp;
    grpc::Status s = berthd_->images().ImageStatus(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return resp.has_image();
  }

  bool WaitForLog(const std::string& needle, std::chrono::seconds timeout) {
    auto until = Clock::now() + timeout;
    while (Clock::now() < until) {
      if (berthd_->Log().find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // Files a pull writes while it runs: content ingest files and unpack directories.
  std::vector<std::string> PartialFiles() {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(berthd_->root(), ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      std::string p = it->path().string();
      bool in_ingest = p.find("/content/ingest/") != std::string::npos;
      bool in_tmp = p.find("/snapshots/tmp/") != std::string::npos;
      if (in_ingest || in_tmp) out.push_back(p);
    }
    return out;
  }

  // berthd's open file descriptors that point into its image store.
  std::vector<std::string> StoreFds() {
    std::vector<std::string> out;
    const fs::path fds = StrCat("/proc/", berthd_->pid(), "/fd");
    for (const std::string& fd : DirEntries(fds)) {
      std::error_code ec;
      fs::path target = fs::read_symlink(fds / fd, ec);
      if (ec) continue;
      std::string t = target.string();
      if (t.find("/content/") != std::string::npos || t.find("/snapshots/") != std::string::npos) {
        out.push_back(t);
      }
    }
    return out;
  }

  std::unique_ptr<ThrottleProxy> proxy_;
  BuiltImage built_;
};

// The only caller's deadline passes: berthd stops the download (the proxy sees berthd hang
// up long before the blob is through), removes what it wrote, logs it, keeps serving, and a
// later pull of the same reference succeeds.
TEST_F(DeadlineIT, PullAbortedWhenItsOnlyCallerGivesUp) {
  const uint64_t kBytes = 2 << 20;
  const std::string image = SlowImage("it/slow-alone", kBytes, 101);
  ASSERT_FALSE(image.empty());

  cri::PullImageResponse resp;
  auto asked = Clock::now();
  grpc::Status s = Pull(image, std::chrono::milliseconds(1500), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << Describe(s);

  // At 160 KB/s the blob needs some 13 s; berthd polls its callers about once a second.
  const std::string layer = built_.layer_digests.at(0).str();
  ASSERT_TRUE(proxy_->WaitForFinishedTransfer(layer, std::chrono::seconds(8)))
      << "the blob download was still running 8 s after the caller's deadline";
  std::vector<ThrottledTransfer> transfers = proxy_->transfers(layer);
  ASSERT_EQ(transfers.size(), 1u);
  const ThrottledTransfer& t = transfers[0];
  EXPECT_TRUE(t.client_closed) << "relayed " << t.relayed_bytes << " of " << t.body_bytes;
  EXPECT_GE(t.body_bytes, kBytes);  // the tar of kBytes of file data
  EXPECT_LT(t.relayed_bytes, t.body_bytes / 2) << "berthd hung up late";
  EXPECT_LT(std::chrono::duration<double>(t.ended - asked).count(), 6.0);

  ASSERT_TRUE(WaitForLog("event=image_pull_aborted", std::chrono::seconds(10)))
      << berthd_->LogTail();
  EXPECT_THAT(berthd_->Log(), HasSubstr(StrCat("event=image_pull_aborted ref=", image)));
  EXPECT_THAT(PartialFiles(), IsEmpty()) << "partial downloads left behind";
  EXPECT_THAT(StoreFds(), IsEmpty()) << "berthd still holds files of the image store";
  EXPECT_FALSE(ImageListed(image));

  // The daemon keeps serving; the retry (at full speed through the same proxy) succeeds.
  grpc::ClientContext vctx;
  SetDeadline(vctx);
  cri::VersionResponse version;
  IT_EXPECT_GRPC_OK(berthd_->runtime().Version(&vctx, cri::VersionRequest(), &version));
  proxy_->set_throttled(false);
  IT_ASSERT_GRPC_OK(Pull(image, std::chrono::seconds(60), &resp));
  EXPECT_EQ(resp.image_ref(), built_.config_digest.str());
  EXPECT_TRUE(ImageListed(image));
  EXPECT_THAT(PartialFiles(), IsEmpty());
}

// Two callers share one pull: the first gives up, the second still waits, so the download
// goes on to the end and both outcomes are the callers' own.
TEST_F(DeadlineIT, PullGoesOnWhileAnotherCallerWaits) {
  const uint64_t kBytes = 1 << 20;  // some 6.5 s through the proxy
  const std::string image = SlowImage("it/slow-shared", kBytes, 202);
  ASSERT_FALSE(image.empty());

  cri::PullImageResponse patient_resp;
  auto patient = std::async(std::launch::async,
                            [&] { return Pull(image, std::chrono::seconds(60), &patient_resp); });
  // The impatient caller joins the pull in flight and leaves after 1.5 s.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  cri::PullImageResponse impatient_resp;
  grpc::Status impatient = Pull(image, std::chrono::milliseconds(1500), &impatient_resp);
  EXPECT_EQ(impatient.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << Describe(impatient);

  grpc::Status s = patient.get();
  IT_ASSERT_GRPC_OK(s);
  EXPECT_EQ(patient_resp.image_ref(), built_.config_digest.str());
  std::vector<ThrottledTransfer> transfers = proxy_->transfers(built_.layer_digests.at(0).str());
  ASSERT_EQ(transfers.size(), 1u) << "the two callers did not share one download";
  EXPECT_FALSE(transfers[0].client_closed);
  EXPECT_EQ(transfers[0].relayed_bytes, transfers[0].body_bytes);
  EXPECT_THAT(berthd_->Log(), Not(HasSubstr("event=image_pull_aborted")));
  EXPECT_TRUE(ImageListed(image));
  EXPECT_THAT(PartialFiles(), IsEmpty());
}

// StopPodSandbox is not cut short by its caller's deadline (as in containerd: stopping is
// idempotent and the kubelet retries). Here it waits behind a StopContainer that gives a
// SIGTERM-ignoring container 8 s of grace; both callers time out, berthd finishes the stops,
// and the retry finds a consistent, stopped pod.
TEST_F(DeadlineIT, StopPodSandboxOutlivesItsDeadlineAndTheRetrySucceeds) {
  cri::PodSandboxConfig pod = PodConfig("stubborn", cri::NODE, cri::CONTAINER);
  std::string pod_id, id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  IT_ASSERT_GRPC_OK(CreateCtr(
      pod_id, pod,
      CtrConfig("ignores-term", {"sh", "-c", "trap '' TERM; while :; do sleep 1; done"}), &id));
  IT_ASSERT_GRPC_OK(StartCtr(id));
  WaitForState(id, cri::CONTAINER_RUNNING, std::chrono::seconds(10));

  auto stop_ctr = std::async(std::launch::async, [&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    cri::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout(8);
    cri::StopContainerResponse resp;
    auto stub = cri::RuntimeService::NewStub(berthd_->channel());
    return stub->StopContainer(&ctx, req, &resp);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  cri::StopPodSandboxRequest req;
  req.set_pod_sandbox_id(pod_id);
  cri::StopPodSandboxResponse resp;
  grpc::Status s = berthd_->runtime().StopPodSandbox(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << Describe(s);
  grpc::Status c = stop_ctr.get();
  EXPECT_EQ(c.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << Describe(c);

  // Both stops are still at work: the container ignores SIGTERM and has grace left.
  cri::ContainerStatusResponse st;
  IT_ASSERT_GRPC_OK(CtrStatus(id, &st));
  EXPECT_EQ(st.status().state(), cri::CONTAINER_RUNNING);

  // The kubelet's retry (default deadline) waits for the stops in flight and succeeds; so
  // does another one.
  IT_ASSERT_GRPC_OK(StopPod(pod_id));
  IT_ASSERT_GRPC_OK(CtrStatus(id, &st));
  EXPECT_EQ(st.status().state(), cri::CONTAINER_EXITED);
  cri::PodSandboxStatusResponse ps;
  IT_ASSERT_GRPC_OK(PodStatus(pod_id, &ps));
  EXPECT_EQ(ps.status().state(), cri::SANDBOX_NOTREADY);
  IT_ASSERT_GRPC_OK(StopPod(pod_id));
  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  // TearDown checks that no mount is left; no process of the pod may remain either.
  for (int pid : AllPids()) {
    EXPECT_THAT(CmdlineOf(pid), Not(HasSubstr("trap '' TERM"))) << "pid " << pid;
  }
}

// The server's keepalive policy (src/server/listen.cc): keepalive pings are permitted
// without calls, at most one every 10 s. A client keeping to that stays connected across
// its pings; one pinging every second is sent GOAWAY (ENHANCE_YOUR_CALM, "too_many_pings")
// and loses the connection.
std::shared_ptr<grpc::Channel> PingingChannel(const fs::path& socket, int ping_every_ms) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, ping_every_ms);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);  // no cap on pings between calls
  // A channel of its own (no subchannel sharing with the fixture's channel).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(StrCat("unix:", socket.string()),
                                   grpc::InsecureChannelCredentials(), args);
}

grpc::Status CallVersion(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  cri::VersionResponse resp;
  return cri::RuntimeService::NewStub(channel)->Version(&ctx, cri::VersionRequest(), &resp);
}

TEST_F(DeadlineIT, KeepalivePingsAtThePermittedRateKeepTheConnection) {
  auto channel = PingingChannel(berthd_->socket_path(), 11'000);
  IT_ASSERT_GRPC_OK(CallVersion(channel));
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  // Two pings go out in 25 s without a call; the connection stays.
  bool changed = channel->WaitForStateChange(
      GRPC_CHANNEL_READY, std::chrono::system_clock::now() + std::chrono::seconds(25));
  EXPECT_FALSE(changed) << "the connection left READY: now " << channel->GetState(false);
  IT_EXPECT_GRPC_OK(CallVersion(channel));
}

TEST_F(DeadlineIT, KeepalivePingsTooOftenGetTheConnectionClosed) {
  auto channel = PingingChannel(berthd_->socket_path(), 1000);
  IT_ASSERT_GRPC_OK(CallVersion(channel));
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  // Pings one second apart: the third strike (gRPC's default of 2 allowed) ends the
  // connection with GOAWAY a few seconds in.
  bool changed = channel->WaitForStateChange(
      GRPC_CHANNEL_READY, std::chrono::system_clock::now() + std::chrono::seconds(20));
  EXPECT_TRUE(changed) << "a client pinging every second kept its connection for 20 s";
  EXPECT_NE(channel->GetState(false), GRPC_CHANNEL_READY);
  // A new connection works: the server ended one connection, not the service.
  IT_EXPECT_GRPC_OK(CallVersion(berthd_->channel()));
}

}  // namespace
}  // namespace berth::testing
