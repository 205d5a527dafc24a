// The Stream* list RPCs over berthd's real socket: the same items and filters as their List*
// twins, every item exactly once, no empty message, and an empty list as a stream that ends
// OK without a message. (Chunking of very large lists: tests/unit/list_chunks_test.cc.)
// Needs root like the other integration tests; traffic only to 127.0.0.1.
//
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

namespace berth::testing {
namespace {

// Every message of a server stream; fails the test on an empty message or a bad end.
template <typename Item, typename Resp>
std::vector<Item> ReadAll(std::unique_ptr<grpc::ClientReader<Resp>> reader,
                          const google::protobuf::RepeatedPtrField<Item>& (Resp::*field)() const,
                          int* messages = nullptr) {
  std::vector<Item> out;
  Resp chunk;
  int n = 0;
  while (reader->Read(&chunk)) {
    ++n;
    EXPECT_GT((chunk.*field)().size(), 0) << "an empty chunk";
    for (const Item& i : (chunk.*field)()) out.push_back(i);
  }
  grpc::Status s = reader->Finish();
  EXPECT_TRUE(s.ok()) << Describe(s);
  if (messages != nullptr) *messages = n;
  return out;
}

template <typename Item>
std::vector<std::string> Ids(const std::vector<Item>& items,
                             const std::string& (Item::*id)() const) {
  std::vector<std::string> out;
  for (const Item& i : items) out.push_back((i.*id)());
  std::sort(out.begin(), out.end());
  return out;
}

class ListStreamsIT : public RuntimeServiceIT {
 protected:
  std::vector<cri::PodSandbox> StreamPods(const cri::PodSandboxFilter& f, int* messages = nullptr) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::StreamPodSandboxesRequest req;
    *req.mutable_filter() = f;
    return ReadAll(berthd_->runtime().StreamPodSandboxes(&ctx, req),
                   &cri::StreamPodSandboxesResponse::pod_sandboxes, messages);
  }
  std::vector<cri::Container> StreamCtrs(const cri::ContainerFilter& f, int* messages = nullptr) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::StreamContainersRequest req;
    *req.mutable_filter() = f;
    return ReadAll(berthd_->runtime().StreamContainers(&ctx, req),
                   &cri::StreamContainersResponse::containers, messages);
  }
  std::vector<cri::ContainerStats> StreamCtrStats(const cri::ContainerStatsFilter& f) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::StreamContainerStatsRequest req;
    *req.mutable_filter() = f;
    return ReadAll(berthd_->runtime().StreamContainerStats(&ctx, req),
                   &cri::StreamContainerStatsResponse::container_stats);
  }
  std::vector<cri::PodSandboxStats> StreamPodStats(const cri::PodSandboxStatsFilter& f) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::StreamPodSandboxStatsRequest req;
    *req.mutable_filter() = f;
    return ReadAll(berthd_->runtime().StreamPodSandboxStats(&ctx, req),
                   &cri::StreamPodSandboxStatsResponse::pod_sandbox_stats);
  }
  std::vector<cri::Image> StreamImages(const std::string& name, int* messages = nullptr) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::StreamImagesRequest req;
    if (!name.empty()) req.mutable_filter()->mutable_image()->set_image(name);
    return ReadAll(berthd_->images().StreamImages(&ctx, req), &cri::StreamImagesResponse::images,
                   messages);
  }
};

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST_F(ListStreamsIT, SameItemsAndFiltersAsTheListTwins) {
  // Empty lists: a stream without a message that ends OK.
  {
    int messages = -1;
    EXPECT_THAT(StreamPods({}, &messages), IsEmpty());
    EXPECT_EQ(messages, 0);
    EXPECT_THAT(StreamCtrs({}, &messages), IsEmpty());
    EXPECT_EQ(messages, 0);
    EXPECT_THAT(StreamImages("127.0.0.1:1/not/there:x", &messages), IsEmpty());
    EXPECT_EQ(messages, 0);
  }

  // Two host-network pods; two containers in the first (one running), one running in the second.
  cri::PodSandboxConfig pod_a = PodConfig("stream-a", cri::NODE, cri::CONTAINER);
  cri::PodSandboxConfig pod_b = PodConfig("stream-b", cri::NODE, cri::CONTAINER);
  std::string a, b;
  IT_ASSERT_GRPC_OK(RunPod(pod_a, &a));
  IT_ASSERT_GRPC_OK(RunPod(pod_b, &b));
  std::string a1, a2, b1;
  IT_ASSERT_GRPC_OK(CreateCtr(a, pod_a, CtrConfig("a1", {"sleep", "1000"}), &a1));
  IT_ASSERT_GRPC_OK(CreateCtr(a, pod_a, CtrConfig("a2", {"sleep", "1000"}), &a2));
  IT_ASSERT_GRPC_OK(CreateCtr(b, pod_b, CtrConfig("b1", {"sleep", "1000"}), &b1));
  IT_ASSERT_GRPC_OK(StartCtr(a1));
  IT_ASSERT_GRPC_OK(StartCtr(b1));

  // Pods.
  {
    int messages = 0;
    std::vector<cri::PodSandbox> all = StreamPods({}, &messages);
    EXPECT_EQ(messages, 1);  // small lists fit one chunk
    EXPECT_EQ(Ids(all, &cri::PodSandbox::id), Sorted({a, b}));
    EXPECT_EQ(Ids(all, &cri::PodSandbox::id), Sorted(PodIds()));
    for (const cri::PodSandbox& p : all) {
      EXPECT_EQ(p.state(), cri::SANDBOX_READY);
      EXPECT_FALSE(p.metadata().name().empty());
    }
    EXPECT_EQ(Ids(StreamPods(PodFilterLabels({{"app", "stream-b"}})), &cri::PodSandbox::id),
              std::vector<std::string>{b});
    EXPECT_EQ(Ids(StreamPods(PodFilterId(a.substr(0, 12))), &cri::PodSandbox::id),
              std::vector<std::string>{a});
    EXPECT_THAT(StreamPods(PodFilterState(cri::SANDBOX_NOTREADY)), IsEmpty());
  }
  // Containers.
  {
    EXPECT_EQ(Ids(StreamCtrs({}), &cri::Container::id), Sorted({a1, a2, b1}));
    EXPECT_EQ(Ids(StreamCtrs({}), &cri::Container::id), Sorted(CtrIds()));
    cri::ContainerFilter by_pod;
    by_pod.set_pod_sandbox_id(a);
    EXPECT_EQ(Ids(StreamCtrs(by_pod), &cri::Container::id), Sorted({a1, a2}));
    EXPECT_EQ(Ids(StreamCtrs(CtrFilterState(cri::CONTAINER_RUNNING)), &cri::Container::id),
              Sorted({a1, b1}));
    EXPECT_EQ(Ids(StreamCtrs(CtrFilterState(cri::CONTAINER_CREATED)), &cri::Container::id),
              std::vector<std::string>{a2});
    cri::ContainerFilter by_label;
    (*by_label.mutable_label_selector())["ctr"] = "b1";
    EXPECT_EQ(Ids(StreamCtrs(by_label), &cri::Container::id), std::vector<std::string>{b1});
    (*by_label.mutable_label_selector())["ctr"] = "none";
    int messages = -1;
    EXPECT_THAT(StreamCtrs(by_label, &messages), IsEmpty());
    EXPECT_EQ(messages, 0);
  }
  // Container stats: every container, like ListContainerStats; by pod.
  {
    std::vector<std::string> ids;
    for (const auto& s : StreamCtrStats({})) ids.push_back(s.attributes().id());
    EXPECT_EQ(Sorted(ids), Sorted({a1, a2, b1}));
    cri::ContainerStatsFilter by_pod;
    by_pod.set_pod_sandbox_id(b);
    std::vector<cri::ContainerStats> in_b = StreamCtrStats(by_pod);
    ASSERT_EQ(in_b.size(), 1u);
    EXPECT_EQ(in_b[0].attributes().id(), b1);
    EXPECT_GT(in_b[0].memory().working_set_bytes().value(), 0u);
  }
  // Pod stats: ready pods; by label.
  {
    std::vector<std::string> ids;
    for (const auto& s : StreamPodStats({})) ids.push_back(s.attributes().id());
    EXPECT_EQ(Sorted(ids), Sorted({a, b}));
    cri::PodSandboxStatsFilter by_label;
    (*by_label.mutable_label_selector())["app"] = "stream-a";
    std::vector<cri::PodSandboxStats> only_a = StreamPodStats(by_label);
    ASSERT_EQ(only_a.size(), 1u);
    EXPECT_EQ(only_a[0].attributes().id(), a);
  }
  // Pod metrics: the pods ListPodSandboxMetrics reports.
  {
    grpc::ClientContext lctx;
    SetDeadline(lctx);
    cri::ListPodSandboxMetricsResponse listed;
    IT_ASSERT_GRPC_OK(berthd_->runtime().ListPodSandboxMetrics(
        &lctx, cri::ListPodSandboxMetricsRequest(), &listed));
    std::vector<std::string> want;
    for (const auto& m : listed.pod_metrics()) want.push_back(m.pod_sandbox_id());
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    std::vector<cri::PodSandboxMetrics> streamed =
        ReadAll(berthd_->runtime().StreamPodSandboxMetrics(&ctx, {}),
                &cri::StreamPodSandboxMetricsResponse::pod_sandbox_metrics);
    EXPECT_EQ(Ids(streamed, &cri::PodSandboxMetrics::pod_sandbox_id), Sorted(want));
    EXPECT_EQ(Sorted(want), Sorted({a, b}));
  }
  // Images: all, and one by name.
  {
    std::vector<cri::Image> all = StreamImages("");
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].id(), busybox_->config_digest.str());
    EXPECT_THAT(all[0].repo_tags(), ::testing::Contains(image_));
    std::vector<cri::Image> one = StreamImages(image_);
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0].id(), busybox_->config_digest.str());
  }

  IT_EXPECT_GRPC_OK(RemovePod(a));
  IT_EXPECT_GRPC_OK(RemovePod(b));
  EXPECT_THAT(StreamPods({}), IsEmpty());
  ExpectNoLeaks("after removing the pods");
}

}  // namespace
}  // namespace berth::testing
