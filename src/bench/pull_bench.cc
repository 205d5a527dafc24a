#include "runtime/v1/api.grpc.pb.h"
// (the CRI header first: its Signal enum clashes with <signal.h>)

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>

#include "bench/cri_call.h"
#include "bench/pull_bench.h"

namespace berth::bench {

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

StatusOr<PullBenchResult> RunPullBench(const PullBenchOptions& options) {
  auto channel = grpc::CreateChannel(options.endpoint, grpc::InsecureChannelCredentials());
  auto images = runtime::v1::ImageService::NewStub(channel);
  PullBenchResult result;
  for (int i = 0; i < options.runs; ++i) {
    {
      grpc::ClientContext ctx;
      runtime::v1::RemoveImageRequest req;
      runtime::v1::RemoveImageResponse resp;
      req.mutable_image()->set_image(options.image);
      grpc::Status s = images->RemoveImage(&ctx, req, &resp);
      // containerd answers NOT_FOUND for an absent image; Berth answers OK.
      if (!s.ok() && s.error_code() != grpc::StatusCode::NOT_FOUND) {
        return FromGrpc(s, "RemoveImage");
      }
    }
    grpc::ClientContext ctx;
    runtime::v1::PullImageRequest req;
    runtime::v1::PullImageResponse resp;
    req.mutable_image()->set_image(options.image);
    auto start = std::chrono::steady_clock::now();
    grpc::Status s = images->PullImage(&ctx, req, &resp);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    RETURN_IF_ERROR(FromGrpc(s, "PullImage"));
    result.seconds.push_back(secs);
  }
  grpc::ClientContext ctx;
  runtime::v1::ImageStatusRequest req;
  runtime::v1::ImageStatusResponse resp;
  req.mutable_image()->set_image(options.image);
  RETURN_IF_ERROR(FromGrpc(images->ImageStatus(&ctx, req, &resp), "ImageStatus"));
  result.image_bytes = resp.image().size();
  result.median_seconds = Median(result.seconds);
  return result;
}

}  // namespace berth::bench
