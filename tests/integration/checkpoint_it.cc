// CheckpointContainer on a real berthd with real runc and Debian's CRIU: a running container's
// checkpoint archive at the requested location that CRIU's own tool (crit) can read, the
// container left running; where CRIU cannot work on the host (criu check fails), a clear
// FAILED_PRECONDITION that says why, and the container untouched.
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

namespace berth::testing {
namespace {

class CheckpointIT : public RuntimeServiceIT {
 protected:
  grpc::Status Checkpoint(const std::string& id, const std::string& location) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::CheckpointContainerRequest req;
    req.set_container_id(id);
    req.set_location(location);
    cri::CheckpointContainerResponse resp;
    return berthd_->runtime().CheckpointContainer(&ctx, req, &resp);
  }
};

TEST_F(CheckpointIT, ArchiveOfARunningContainerOrAClearError) {
  cri::PodSandboxConfig pod = PodConfig("ckpt", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  std::string id;
  IT_ASSERT_GRPC_OK(
      CreateCtr(pod_id, pod, CtrConfig("counter", {"sh", "-c", "while :; do sleep 1; done"}), &id));

  const fs::path archive = berthd_->dir() / "checkpoints" / "ckpt.tar";
  ASSERT_TRUE(fs::create_directories(archive.parent_path()));
  // Not running yet: nothing to checkpoint.
  grpc::Status s = Checkpoint(id, archive.string());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
  IT_ASSERT_GRPC_OK(StartCtr(id));
  s = Checkpoint(std::string(64, 'e'), archive.string());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(s);
  s = Checkpoint(id, "relative.tar");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  s = Checkpoint(id, (berthd_->dir() / "no-such-dir" / "x.tar").string());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("does not exist"));

  // What CRIU says of this host decides which outcome is right.
  StatusOr<ProcessResult> check = RunProcess({"criu", "check"});
  const bool criu_works = check.ok() && check->exit_code == 0;
  s = Checkpoint(id, archive.string());
  if (criu_works) {
    IT_ASSERT_GRPC_OK(s);
    ASSERT_TRUE(Exists(archive));
    const fs::path out = berthd_->dir() / "checkpoints" / "x";
    ASSERT_TRUE(fs::create_directories(out));
    StatusOr<ProcessResult> tar = RunProcess({"tar", "-xf", archive.string(), "-C", out.string()});
    ASSERT_TRUE(tar.ok() && tar->exit_code == 0);
    EXPECT_TRUE(Exists(out / "spec.dump"));
    EXPECT_TRUE(Exists(out / "config.dump"));
    StatusOr<ProcessResult> crit =
        RunProcess({"crit", "show", (out / "checkpoint" / "inventory.img").string()});
    ASSERT_TRUE(crit.ok());
    EXPECT_EQ(crit->exit_code, 0) << crit->err;
    EXPECT_THAT(crit->out, HasSubstr("\"magic\": \"INVENTORY\""));
    StatusOr<ProcessResult> ps = RunProcess({"crit", "x", (out / "checkpoint").string(), "ps"});
    ASSERT_TRUE(ps.ok());
    EXPECT_THAT(ps->out, HasSubstr("sh"));
  } else {
    // CRIU 3.17 (Debian 12) cannot read the vDSO of Linux 6.13 and later.
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr("criu check"));
    EXPECT_FALSE(Exists(archive));
    EXPECT_THAT(DirEntries(archive.parent_path()), IsEmpty()) << "a temporary file was left";
  }
  // Either way the container still runs, the same process.
  std::optional<cri::ContainerStatus> st = CtrStatusOf(id);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->state(), cri::CONTAINER_RUNNING);
  EXPECT_EQ(ExecOut(id, {"echo", "alive"}), "alive\n");
  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after the checkpoint");
}

}  // namespace
}  // namespace berth::testing
