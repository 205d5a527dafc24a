// `berthd doctor -o json` on this host, next to a running berthd: what it reports about the
// cgroup layout, the runtime handlers, CAP_SYS_RESOURCE and the socket matches what the test
// finds out by itself, and Status verbose info ("doctor", as `berthctl info` shows it) says
// the same.
#include <linux/capability.h>
#include <sys/syscall.h>

#include "runtime_fixture.h"

namespace berth::testing {
namespace {

class DoctorIT : public RuntimeServiceIT {
 protected:
  // `berthd doctor` with the directories of the test's berthd.
  nlohmann::json RunDoctor(int* exit_code) {
    std::vector<std::string> argv = {BERTHD_PATH,
                                     "doctor",
                                     "-o",
                                     "json",
                                     "--socket",
                                     berthd_->socket_path().string(),
                                     "--root",
                                     berthd_->root().string(),
                                     "--state",
                                     berthd_->state().string(),
                                     "--registry-config-dir",
                                     berthd_->certs_dir().string(),
                                     "--cni-conf-dir",
                                     berthd_->cni_dir().string(),
                                     "--cni-bin-dir",
                                     kCniBinDir,
                                     "--config",
                                     (berthd_->dir() / "config.toml").string()};
    RunOptions opts;
    opts.timeout = std::chrono::seconds(60);
    StatusOr<ProcessResult> r = RunProcess(argv, opts);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return nullptr;
    *exit_code = r->exit_code;
    nlohmann::json j = nlohmann::json::parse(r->out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON:\n" << r->out << "\nstderr:\n" << r->err;
    return j;
  }

  static const nlohmann::json* Find(const nlohmann::json& report, const std::string& name) {
    for (const nlohmann::json& c : report["checks"]) {
      if (c.value("name", "") == name) return &c;
    }
    ADD_FAILURE() << "no check " << name << " in " << report.dump(2);
    return nullptr;
  }
};

// The layout as the test reads it: the kernel's files, not doctor's code.
std::string HostCgroupLayout() {
  if (Exists("/sys/fs/cgroup/cgroup.controllers")) return "v2";
  if (Exists("/sys/fs/cgroup/unified/cgroup.controllers")) return "hybrid";
  return Exists("/sys/fs/cgroup/memory") ? "v1" : "none";
}

// CAP_SYS_RESOURCE in this process's effective set, from capget(2). berthd doctor runs as a
// child with the same credentials.
bool HasCapSysResource() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  return (data[CAP_SYS_RESOURCE / 32].effective >> (CAP_SYS_RESOURCE % 32)) & 1;
}

TEST_F(DoctorIT, ReportsThisHostAsItIs) {
  int exit_code = -1;
  nlohmann::json report = RunDoctor(&exit_code);
  ASSERT_TRUE(report.is_object());
  // This suite runs pods on this host, so the doctor must say it can.
  EXPECT_EQ(report["canRunPods"], true) << report.dump(2);
  EXPECT_EQ(exit_code, 0);
  for (const nlohmann::json& c : report["checks"]) {
    if (c["status"] != "pass") {
      EXPECT_FALSE(c.value("fix", "").empty()) << "a failed check must say what to do: " << c;
    }
  }

  const nlohmann::json* cgroups = Find(report, "cgroups");
  ASSERT_NE(cgroups, nullptr);
  const std::string layout = HostCgroupLayout();
  EXPECT_EQ((*cgroups)["details"]["layout"], layout) << *cgroups;
  std::cerr << "cgroup layout here: " << layout << "\n";

  const nlohmann::json* runc = Find(report, "runtime-handler/runc");
  ASSERT_NE(runc, nullptr);
  EXPECT_EQ((*runc)["details"]["works"], true) << *runc;
  EXPECT_THAT((*runc)["details"]["version"].get<std::string>(), HasSubstr("runc version"));
  const nlohmann::json* def = Find(report, "default-runtime");
  ASSERT_NE(def, nullptr);
  EXPECT_EQ((*def)["status"], "pass") << *def;

  // crun refuses a hybrid host whose v2 tree has controllers; doctor must say so and why.
  const std::string unified_controllers = Trim(ReadOr("/sys/fs/cgroup/unified/cgroup.controllers"));
  const nlohmann::json* crun = Find(report, "runtime-handler/crun");  // configured by default
  ASSERT_NE(crun, nullptr);
  const bool crun_installed = !(*crun)["details"]["binary"].get<std::string>().empty();
  if (layout == "hybrid" && !unified_controllers.empty() && crun_installed) {
    EXPECT_EQ((*crun)["details"]["works"], false) << *crun;
    EXPECT_EQ((*crun)["status"], "warn") << "crun is not the default here, so a warning: " << *crun;
    EXPECT_THAT((*crun)["why"].get<std::string>(), HasSubstr("hybrid"));
    EXPECT_THAT((*crun)["details"]["error"].get<std::string>(), HasSubstr("hybrid"));
    EXPECT_THAT((*crun)["fix"].get<std::string>(), HasSubstr("systemd.unified_cgroup_hierarchy"));
    EXPECT_EQ((*def)["details"]["handler"], "runc");
  }

  const nlohmann::json* oom = Find(report, "oom-score-adj");
  ASSERT_NE(oom, nullptr);
  const bool cap = HasCapSysResource();
  EXPECT_EQ((*oom)["details"]["capSysResource"], cap) << *oom;
  EXPECT_EQ((*oom)["status"], cap ? "pass" : "warn") << *oom;
  std::cerr << "CAP_SYS_RESOURCE here: " << (cap ? "yes" : "no") << "\n";

  const nlohmann::json* sock = Find(report, "socket");
  ASSERT_NE(sock, nullptr);
  EXPECT_EQ((*sock)["details"]["state"], "live") << *sock;
  EXPECT_EQ((*sock)["details"]["mode"], "0660") << *sock;
  EXPECT_EQ((*sock)["status"], "pass");

  // The empty CNI directory of the test's berthd: a warning that the default network will be
  // written once the kubelet sends a pod CIDR (the plugins are installed in /usr/lib/cni).
  const nlohmann::json* cni = Find(report, "cni");
  ASSERT_NE(cni, nullptr);
  EXPECT_EQ((*cni)["status"], "warn") << *cni;
  EXPECT_EQ((*cni)["details"]["confDir"], berthd_->cni_dir().string());

  // berthd's own view through Status verbose info: the same checks with the same outcomes.
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  cri::StatusRequest req;
  req.set_verbose(true);
  cri::StatusResponse resp;
  IT_ASSERT_GRPC_OK(berthd_->runtime().Status(&ctx, req, &resp));
  ASSERT_TRUE(resp.info().contains("doctor"));
  nlohmann::json inside = nlohmann::json::parse(resp.info().at("doctor"), nullptr, false);
  ASSERT_TRUE(inside.is_object()) << resp.info().at("doctor");
  std::map<std::string, std::string> outside_outcomes, inside_outcomes;
  for (const nlohmann::json& c : report["checks"]) outside_outcomes[c["name"]] = c["status"];
  for (const nlohmann::json& c : inside["checks"]) inside_outcomes[c["name"]] = c["status"];
  EXPECT_EQ(inside_outcomes, outside_outcomes) << inside.dump(2);
  EXPECT_EQ(inside["canRunPods"], true);

  // The text form says the same for people, and nothing was left behind by the probes.
  StatusOr<ProcessResult> text = RunProcess(
      {BERTHD_PATH, "doctor", "--root", berthd_->root().string(), "--state",
       berthd_->state().string(), "--cni-conf-dir", berthd_->cni_dir().string(),
       "--registry-config-dir", berthd_->certs_dir().string(), "--cni-bin-dir", kCniBinDir});
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(text->out, HasSubstr("This host can run pods"));
  EXPECT_THAT(text->out, HasSubstr("runtime-handler/runc"));
  EXPECT_THAT(MountsUnder(berthd_->root()), IsEmpty());
  ExpectNoLeaks("after berthd doctor");
}

}  // namespace
}  // namespace berth::testing
