// runtime.v1alpha2 over berthd's real socket, as a kubelet 1.20-1.25 or crictl v1.22 speaks
// it: the whole lifecycle of an image, a host-network pod and a container through v1alpha2
// stubs, with what v1 clients see of the same objects checked alongside (one node, both API
// versions at once, as during a kubelet upgrade). Ends with the fixture's leak checks.
//
// Needs root (namespaces, mounts, runc). Traffic goes only to 127.0.0.1.
//
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

#include <grpcpp/generic/generic_stub.h>

#include <condition_variable>
#include <mutex>

#include "runtime/v1alpha2/api.grpc.pb.h"

#ifndef BERTHCTL_PATH
#error "BERTHCTL_PATH must name the berthctl binary (see tests/integration/CMakeLists.txt)"
#endif

namespace berth::testing {
namespace {

namespace a2 = ::runtime::v1alpha2;

class V1alpha2IT : public RuntimeServiceIT {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(RuntimeServiceIT::SetUp());
    if (IsSkipped()) return;
    runtime_ = a2::RuntimeService::NewStub(berthd_->channel());
    images_ = a2::ImageService::NewStub(berthd_->channel());
  }

  // One unary call with the suite's deadline.
  template <typename Stub, typename Req, typename Resp>
  grpc::Status Call(Stub& stub, grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Req&, Resp*),
                    const Req& req, Resp* resp) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    return (stub.*rpc)(&ctx, req, resp);
  }

  std::unique_ptr<a2::RuntimeService::Stub> runtime_;
  std::unique_ptr<a2::ImageService::Stub> images_;
};

TEST_F(V1alpha2IT, WholeLifecycleThroughV1alpha2) {
  using RS = a2::RuntimeService::Stub;
  using IS = a2::ImageService::Stub;

  // Version names the API version that answered.
  {
    a2::VersionRequest req;
    req.set_version("v1alpha2");
    a2::VersionResponse resp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::Version, req, &resp));
    EXPECT_EQ(resp.runtime_name(), "berth");
    EXPECT_EQ(resp.runtime_api_version(), "v1alpha2");
    EXPECT_FALSE(resp.runtime_version().empty());
    cri::VersionResponse v1;
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    IT_ASSERT_GRPC_OK(berthd_->runtime().Version(&ctx, cri::VersionRequest(), &v1));
    EXPECT_EQ(v1.runtime_api_version(), "v1");
  }
  // Status: both conditions, no v1-only fields left over as unknown ones.
  {
    a2::StatusResponse resp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::Status, a2::StatusRequest(), &resp));
    std::map<std::string, bool> conditions;
    for (const auto& c : resp.status().conditions()) conditions[c.type()] = c.status();
    EXPECT_TRUE(conditions["RuntimeReady"]);
    EXPECT_TRUE(conditions.contains("NetworkReady"));
    EXPECT_TRUE(resp.GetReflection()->GetUnknownFields(resp).empty());
  }

  // Images: the fixture pulled through v1; v1alpha2 pulls again (already there) and sees it.
  {
    a2::PullImageRequest req;
    req.mutable_image()->set_image(image_);
    a2::PullImageResponse resp;
    IT_ASSERT_GRPC_OK(Call(*images_, &IS::PullImage, req, &resp));
    EXPECT_EQ(resp.image_ref(), busybox_->config_digest.str());

    a2::ImageStatusRequest sreq;
    sreq.mutable_image()->set_image(image_);
    a2::ImageStatusResponse sresp;
    IT_ASSERT_GRPC_OK(Call(*images_, &IS::ImageStatus, sreq, &sresp));
    EXPECT_EQ(sresp.image().id(), busybox_->config_digest.str());
    EXPECT_THAT(sresp.image().repo_tags(), ::testing::Contains(image_));
    EXPECT_GT(sresp.image().size(), 0u);

    a2::ListImagesResponse lresp;
    IT_ASSERT_GRPC_OK(Call(*images_, &IS::ListImages, a2::ListImagesRequest(), &lresp));
    ASSERT_EQ(lresp.images_size(), 1);
    EXPECT_EQ(lresp.images(0).id(), busybox_->config_digest.str());

    a2::ImageFsInfoResponse fresp;
    IT_ASSERT_GRPC_OK(Call(*images_, &IS::ImageFsInfo, a2::ImageFsInfoRequest(), &fresp));
    ASSERT_GE(fresp.image_filesystems_size(), 1);
    EXPECT_GT(fresp.image_filesystems(0).used_bytes().value(), 0u);
  }

  // A host-network pod.
  a2::PodSandboxConfig pod;
  {
    cri::PodSandboxConfig v1pod = PodConfig("alpha", cri::NODE, cri::CONTAINER);
    ASSERT_TRUE(pod.ParseFromString(v1pod.SerializeAsString()));
  }
  std::string pod_id;
  {
    a2::RunPodSandboxRequest req;
    *req.mutable_config() = pod;
    a2::RunPodSandboxResponse resp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::RunPodSandbox, req, &resp));
    pod_id = resp.pod_sandbox_id();
    ASSERT_FALSE(pod_id.empty());
    pod_ids_.insert(pod_id);
  }
  {
    a2::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(pod_id);
    a2::PodSandboxStatusResponse resp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::PodSandboxStatus, req, &resp));
    EXPECT_EQ(resp.status().id(), pod_id);
    EXPECT_EQ(resp.status().state(), a2::SANDBOX_READY);
    EXPECT_EQ(resp.status().metadata().uid(), pod.metadata().uid());
    EXPECT_EQ(AsMap(resp.status().annotations()), AsMap(pod.annotations()));
    EXPECT_EQ(resp.status().linux().namespaces().options().network(), a2::NODE);
    // v1's container statuses of the pod are not sent to a v1alpha2 client.
    EXPECT_TRUE(resp.GetReflection()->GetUnknownFields(resp).empty());
    // The same pod, as a v1 client sees it.
    EXPECT_THAT(PodIds(), UnorderedElementsAre(pod_id));
  }

  // A container with an environment variable (KeyValue changed type between the versions).
  std::string id;
  {
    a2::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    *req.mutable_sandbox_config() = pod;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name("main");
    c->mutable_image()->set_image(image_);
    for (const char* a : {"/bin/sh", "-c", "echo started; sleep 1000"}) c->add_command(a);
    auto* env = c->add_envs();
    env->set_key("GREETING");
    env->set_value("grüezi mitenand");
    c->set_log_path("main.log");
    (*c->mutable_labels())["ctr"] = "main";
    a2::CreateContainerResponse resp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::CreateContainer, req, &resp));
    id = resp.container_id();
    ASSERT_FALSE(id.empty());
    ctr_ids_.insert(id);
  }
  {
    a2::StartContainerRequest req;
    req.set_container_id(id);
    a2::StartContainerResponse resp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::StartContainer, req, &resp));
    TrackContainerProcess(id);
  }
  {
    a2::ContainerStatusRequest req;
    req.set_container_id(id);
    a2::ContainerStatusResponse resp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::ContainerStatus, req, &resp));
    EXPECT_EQ(resp.status().id(), id);
    EXPECT_EQ(resp.status().state(), a2::CONTAINER_RUNNING);
    EXPECT_EQ(resp.status().metadata().name(), "main");
    EXPECT_EQ(resp.status().image().image(), image_);
    EXPECT_FALSE(resp.status().image_ref().empty());
    EXPECT_GT(resp.status().started_at(), 0);
    EXPECT_EQ(resp.status().log_path(), (LogDir() / "alpha" / "main.log").string());
    EXPECT_TRUE(resp.status().GetReflection()->GetUnknownFields(resp.status()).empty());
    // v1 sees the same container, with its v1-only image_id.
    std::optional<cri::ContainerStatus> v1 = CtrStatusOf(id);
    ASSERT_TRUE(v1.has_value());
    EXPECT_EQ(v1->state(), cri::CONTAINER_RUNNING);
    EXPECT_EQ(v1->image_id(), busybox_->config_digest.str());
  }
  {
    a2::ListContainersRequest req;
    req.mutable_filter()->mutable_state()->set_state(a2::CONTAINER_RUNNING);
    (*req.mutable_filter()->mutable_label_selector())["ctr"] = "main";
    a2::ListContainersResponse resp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::ListContainers, req, &resp));
    ASSERT_EQ(resp.containers_size(), 1);
    EXPECT_EQ(resp.containers(0).id(), id);
    EXPECT_EQ(resp.containers(0).pod_sandbox_id(), pod_id);
    (*req.mutable_filter()->mutable_label_selector())["ctr"] = "other";
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::ListContainers, req, &resp));
    EXPECT_EQ(resp.containers_size(), 0);
  }

  // ExecSync: the environment variable arrived intact, exit codes come back.
  {
    a2::ExecSyncRequest req;
    req.set_container_id(id);
    for (const char* a : {"sh", "-c", "echo \"$GREETING\"; echo oops >&2; exit 3"}) req.add_cmd(a);
    req.set_timeout(10);
    a2::ExecSyncResponse resp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::ExecSync, req, &resp));
    EXPECT_EQ(resp.stdout(), "grüezi mitenand\n");
    EXPECT_EQ(resp.stderr(), "oops\n");
    EXPECT_EQ(resp.exit_code(), 3);
  }
  // Exec hands out a URL of the streaming server, as for v1.
  {
    a2::ExecRequest req;
    req.set_container_id(id);
    req.add_cmd("true");
    req.set_stdout(true);
    a2::ExecResponse resp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::Exec, req, &resp));
    EXPECT_THAT(resp.url(), HasSubstr("/exec/"));
  }
  // Stats of the running container.
  {
    a2::ContainerStatsRequest req;
    req.set_container_id(id);
    a2::ContainerStatsResponse resp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::ContainerStats, req, &resp));
    EXPECT_EQ(resp.stats().attributes().id(), id);
    EXPECT_EQ(resp.stats().attributes().metadata().name(), "main");
    EXPECT_GT(resp.stats().memory().working_set_bytes().value(), 0u);
    EXPECT_GT(resp.stats().cpu().timestamp(), 0);
    a2::ListContainerStatsResponse list;
    IT_ASSERT_GRPC_OK(
        Call(*runtime_, &RS::ListContainerStats, a2::ListContainerStatsRequest(), &list));
    ASSERT_EQ(list.stats_size(), 1);
    EXPECT_EQ(list.stats(0).attributes().id(), id);
    a2::ListPodSandboxStatsResponse pods;
    IT_ASSERT_GRPC_OK(
        Call(*runtime_, &RS::ListPodSandboxStats, a2::ListPodSandboxStatsRequest(), &pods));
    ASSERT_EQ(pods.stats_size(), 1);
    EXPECT_EQ(pods.stats(0).attributes().id(), pod_id);
  }
  // The log file, as crictl logs reads it.
  {
    std::string log = WaitForLog(
        LogDir() / "alpha" / "main.log",
        [](const std::string& l) { return LogHasRecord(l, "stdout", "started"); },
        std::chrono::seconds(5));
    EXPECT_TRUE(LogHasRecord(log, "stdout", "started")) << log;
  }

  // Errors pass through unchanged.
  {
    a2::ContainerStatusRequest req;
    req.set_container_id(std::string(64, 'e'));
    a2::ContainerStatusResponse resp;
    grpc::Status s = Call(*runtime_, &RS::ContainerStatus, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(s);
    a2::CreateContainerRequest bad;
    bad.set_pod_sandbox_id(pod_id);
    a2::CreateContainerResponse bad_resp;
    s = Call(*runtime_, &RS::CreateContainer, bad, &bad_resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
    a2::RemoveImageRequest in_use;
    in_use.mutable_image()->set_image("127.0.0.1:1/none:latest");
    a2::RemoveImageResponse in_use_resp;
    // Removing an image that is not there is OK (idempotent), as in v1.
    IT_EXPECT_GRPC_OK(Call(*images_, &IS::RemoveImage, in_use, &in_use_resp));
  }

  // Stop, remove, stop the pod, remove it.
  {
    a2::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout(1);
    a2::StopContainerResponse resp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::StopContainer, req, &resp));
    a2::ContainerStatusRequest sreq;
    sreq.set_container_id(id);
    a2::ContainerStatusResponse sresp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::ContainerStatus, sreq, &sresp));
    EXPECT_EQ(sresp.status().state(), a2::CONTAINER_EXITED);
    EXPECT_EQ(sresp.status().exit_code(), 137);

    a2::RemoveContainerRequest rreq;
    rreq.set_container_id(id);
    a2::RemoveContainerResponse rresp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::RemoveContainer, rreq, &rresp));
    EXPECT_THAT(ListCtrs(), IsEmpty());
  }
  {
    a2::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(pod_id);
    a2::StopPodSandboxResponse resp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::StopPodSandbox, req, &resp));
    a2::ListPodSandboxRequest lreq;
    lreq.mutable_filter()->mutable_state()->set_state(a2::SANDBOX_NOTREADY);
    a2::ListPodSandboxResponse lresp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::ListPodSandbox, lreq, &lresp));
    ASSERT_EQ(lresp.items_size(), 1);
    EXPECT_EQ(lresp.items(0).id(), pod_id);

    a2::RemovePodSandboxRequest rreq;
    rreq.set_pod_sandbox_id(pod_id);
    a2::RemovePodSandboxResponse rresp;
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::RemovePodSandbox, rreq, &rresp));
    IT_ASSERT_GRPC_OK(Call(*runtime_, &RS::RemovePodSandbox, rreq, &rresp));  // idempotent
    EXPECT_THAT(ListPods({}), IsEmpty());
  }
  ExpectNoLeaks("after removing the pod through v1alpha2");

  // rmi: gone for both versions.
  {
    a2::RemoveImageRequest req;
    req.mutable_image()->set_image(image_);
    a2::RemoveImageResponse resp;
    IT_ASSERT_GRPC_OK(Call(*images_, &IS::RemoveImage, req, &resp));
    a2::ImageStatusRequest sreq;
    sreq.mutable_image()->set_image(image_);
    a2::ImageStatusResponse sresp;
    IT_ASSERT_GRPC_OK(Call(*images_, &IS::ImageStatus, sreq, &sresp));
    EXPECT_FALSE(sresp.has_image());
    cri::ListImagesResponse v1;
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    IT_ASSERT_GRPC_OK(berthd_->images().ListImages(&ctx, cri::ListImagesRequest(), &v1));
    EXPECT_EQ(v1.images_size(), 0);
  }
}

// RPCs that v1alpha2 never had are not there under its name: gRPC answers UNIMPLEMENTED.
TEST_F(V1alpha2IT, V1OnlyRpcsAreUnimplementedUnderV1alpha2) {
  grpc::GenericStub generic(berthd_->channel());
  for (const char* method : {"/runtime.v1alpha2.RuntimeService/GetContainerEvents",
                             "/runtime.v1alpha2.RuntimeService/RuntimeConfig",
                             "/runtime.v1alpha2.RuntimeService/ListMetricDescriptors"}) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    grpc::Slice empty_message("");
    grpc::ByteBuffer req(&empty_message, 1);
    grpc::ByteBuffer resp;
    grpc::Status got;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    generic.UnaryCall(&ctx, method, grpc::StubOptions(), &req, &resp, [&](grpc::Status s) {
      std::lock_guard lock(mu);
      got = std::move(s);
      done = true;
      cv.notify_one();
    });
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
    EXPECT_EQ(got.error_code(), grpc::StatusCode::UNIMPLEMENTED) << method << ": " << Describe(got);
  }
  // The v1 twin of the first one is there.
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  cri::RuntimeConfigResponse resp;
  IT_EXPECT_GRPC_OK(berthd_->runtime().RuntimeConfig(&ctx, cri::RuntimeConfigRequest(), &resp));
}

// A runtime that speaks only runtime.v1alpha2 (as containerd 1.5 or CRI-O 1.22 did): a proxy
// in this process that serves the v1alpha2 services alone, passing each call on to berthd's
// v1alpha2 services.
class V1alpha2OnlyProxy {
 public:
  V1alpha2OnlyProxy(const std::shared_ptr<grpc::Channel>& berthd, const fs::path& socket)
      : runtime_(berthd, this), images_(berthd, this) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(StrCat("unix://", socket.string()), grpc::InsecureServerCredentials());
    builder.RegisterService(&runtime_);
    builder.RegisterService(&images_);
    server_ = builder.BuildAndStart();
  }
  ~V1alpha2OnlyProxy() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }
  bool ok() const { return server_ != nullptr; }
  // The v1alpha2 calls that reached the proxy, by method name.
  std::vector<std::string> calls() {
    std::lock_guard l(mu_);
    return calls_;
  }

 private:
#define PROXY_RPC(Method)                                                   \
  grpc::Status Method(grpc::ServerContext*, const a2::Method##Request* req, \
                      a2::Method##Response* resp) override {                \
    owner_->Seen(#Method);                                                  \
    grpc::ClientContext ctx;                                                \
    SetDeadline(ctx);                                                       \
    return stub_->Method(&ctx, *req, resp);                                 \
  }
  class Runtime final : public a2::RuntimeService::Service {
   public:
    Runtime(const std::shared_ptr<grpc::Channel>& ch, V1alpha2OnlyProxy* owner)
        : stub_(a2::RuntimeService::NewStub(ch)), owner_(owner) {}
    PROXY_RPC(Version)
    PROXY_RPC(Status)
    PROXY_RPC(ListPodSandbox)
    PROXY_RPC(ListContainers)

   private:
    std::unique_ptr<a2::RuntimeService::Stub> stub_;
    V1alpha2OnlyProxy* owner_;
  };
  class Images final : public a2::ImageService::Service {
   public:
    Images(const std::shared_ptr<grpc::Channel>& ch, V1alpha2OnlyProxy* owner)
        : stub_(a2::ImageService::NewStub(ch)), owner_(owner) {}
    PROXY_RPC(ListImages)
    PROXY_RPC(ImageStatus)
    PROXY_RPC(ImageFsInfo)

   private:
    std::unique_ptr<a2::ImageService::Stub> stub_;
    V1alpha2OnlyProxy* owner_;
  };
#undef PROXY_RPC

  void Seen(const char* method) {
    std::lock_guard l(mu_);
    calls_.emplace_back(method);
  }

  std::mutex mu_;
  std::vector<std::string> calls_;
  Runtime runtime_;
  Images images_;
  std::unique_ptr<grpc::Server> server_;
};

ProcessResult RunBerthctl(const std::string& endpoint, std::vector<std::string> args) {
  std::vector<std::string> argv = {BERTHCTL_PATH, "-r", endpoint, "-i", endpoint};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions opts;
  opts.timeout = std::chrono::seconds(60);
  StatusOr<ProcessResult> r = RunProcess(argv, opts);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : ProcessResult{};
}

TEST_F(V1alpha2IT, BerthctlFallsBackToV1alpha2) {
  // berthd itself: v1 answers, and no v1alpha2 call is needed.
  const std::string direct = StrCat("unix://", berthd_->socket_path().string());
  {
    ProcessResult r = RunBerthctl(direct, {"version"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("RuntimeName:  berth\n"));
    EXPECT_THAT(r.out, HasSubstr("RuntimeApiVersion:  v1\n"));
  }

  const fs::path socket = berthd_->dir() / "alpha-only.sock";
  V1alpha2OnlyProxy proxy(berthd_->channel(), socket);
  ASSERT_TRUE(proxy.ok());
  const std::string endpoint = StrCat("unix://", socket.string());
  {
    ProcessResult r = RunBerthctl(endpoint, {"--debug", "version"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("RuntimeName:  berth\n"));
    EXPECT_THAT(r.out, HasSubstr("RuntimeApiVersion:  v1alpha2\n"));
    EXPECT_THAT(r.err, HasSubstr("using CRI v1alpha2 RuntimeService"));
  }
  // The probe, then the call itself.
  EXPECT_THAT(proxy.calls(), ::testing::ElementsAre("Version", "Version"));
  {
    ProcessResult r = RunBerthctl(endpoint, {"images", "-q"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, busybox_->config_digest.str() + "\n");
  }
  {
    ProcessResult r = RunBerthctl(endpoint, {"inspecti", image_});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr(busybox_->config_digest.str()));
  }
  {
    ProcessResult r = RunBerthctl(endpoint, {"pods", "-q"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "");
  }
  // A command that exists only in v1 says so.
  {
    ProcessResult r = RunBerthctl(endpoint, {"metricdescs"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_THAT(r.err, HasSubstr("Unimplemented"));
  }
  // The image service probes with ImageFsInfo, like the kubelet.
  std::vector<std::string> calls = proxy.calls();
  EXPECT_NE(std::find(calls.begin(), calls.end(), "ImageFsInfo"), calls.end());
}

}  // namespace
}  // namespace berth::testing
