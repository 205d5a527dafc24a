// RpcDecorator: readiness, error conversion and draining at shutdown.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "server/rpc_decorator.h"

namespace berth::server {
namespace {

TEST(RpcDecoratorTest, UnavailableUntilReady) {
  RpcDecorator rpc;
  bool ran = false;
  grpc::Status s = rpc.Run("Version", [&] {
    ran = true;
    return OkStatus();
  });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(ran);
  rpc.MarkReady();
  EXPECT_TRUE(rpc.Run("Version", [&] { return OkStatus(); }).ok());
  s = rpc.Run("Version", [] { return NotFoundError("no such thing"); });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "no such thing");
}

TEST(RpcDecoratorTest, DrainWaitsForCallsInProgressAndRefusesNewOnes) {
  RpcDecorator rpc;
  rpc.MarkReady();
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  auto call = std::async(std::launch::async, [&] {
    return rpc.Run("PullImage", [&] {
      entered.set_value();
      released.wait();
      return OkStatus();
    });
  });
  entered.get_future().wait();

  // The call in progress keeps Drain waiting until its timeout...
  EXPECT_FALSE(rpc.Drain(std::chrono::milliseconds(50)));
  // ...new calls are refused...
  bool ran = false;
  grpc::Status refused = rpc.Run("Version", [&] {
    ran = true;
    return OkStatus();
  });
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(refused.error_message().find("stopping"), std::string::npos);
  EXPECT_FALSE(ran);
  // ...and once it finishes, Drain succeeds.
  auto drained =
      std::async(std::launch::async, [&] { return rpc.Drain(std::chrono::seconds(10)); });
  release.set_value();
  EXPECT_TRUE(call.get().ok());
  EXPECT_TRUE(drained.get());
}

TEST(RpcDecoratorTest, DrainWithNothingInProgressIsImmediate) {
  RpcDecorator rpc;
  rpc.MarkReady();
  EXPECT_TRUE(rpc.Drain(std::chrono::milliseconds(0)));
}

}  // namespace
}  // namespace berth::server
