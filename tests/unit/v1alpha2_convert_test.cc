// The v1alpha2 <-> v1 conversion: the two .proto files agree on every v1alpha2
// field (so re-encoding is sound), and the converted messages carry what they
// should, no more.
#include "server/v1alpha2_convert.h"
// (blank line keeps clang-format from reordering)

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace berth::server::v1alpha2 {
namespace {

namespace pb = google::protobuf;
namespace v1 = ::runtime::v1;
namespace a2 = ::runtime::v1alpha2;

const pb::FileDescriptor* V1File() { return v1::VersionRequest::descriptor()->file(); }
const pb::FileDescriptor* AlphaFile() { return a2::VersionRequest::descriptor()->file(); }

std::string V1Name(const std::string& alpha_full_name) {
  const std::string prefix = "runtime.v1alpha2.";
  return "runtime.v1." + alpha_full_name.substr(prefix.size());
}

// The only field whose type differs: an environment variable's value became
// bytes in v1 (same wire type; v1alpha2 strings are valid bytes).
const std::set<std::string> kTypeChanged = {"runtime.v1alpha2.KeyValue.value"};

void CheckMessage(const pb::Descriptor* alpha, std::vector<std::string>* problems) {
  const pb::Descriptor* v1 =
      pb::DescriptorPool::generated_pool()->FindMessageTypeByName(V1Name(alpha->full_name()));
  if (v1 == nullptr) {
    problems->push_back("no v1 message for " + alpha->full_name());
    return;
  }
  for (int i = 0; i < alpha->field_count(); ++i) {
    const pb::FieldDescriptor* a = alpha->field(i);
    const pb::FieldDescriptor* b = v1->FindFieldByNumber(a->number());
    const std::string what = a->full_name();
    if (b == nullptr) {
      problems->push_back(what + ": number " + std::to_string(a->number()) + " missing in v1");
      continue;
    }
    if (a->name() != b->name()) problems->push_back(what + ": named " + b->name() + " in v1");
    if (a->label() != b->label()) problems->push_back(what + ": label differs");
    if (a->type() != b->type() && !kTypeChanged.contains(what)) {
      problems->push_back(what + ": type differs");
    }
    if (a->message_type() != nullptr &&
        (b->message_type() == nullptr ||
         V1Name(a->message_type()->full_name()) != b->message_type()->full_name())) {
      problems->push_back(what + ": message type differs");
    }
    if (a->enum_type() != nullptr &&
        (b->enum_type() == nullptr ||
         V1Name(a->enum_type()->full_name()) != b->enum_type()->full_name())) {
      problems->push_back(what + ": enum type differs");
    }
  }
  for (int i = 0; i < alpha->nested_type_count(); ++i)
    CheckMessage(alpha->nested_type(i), problems);
}

void CheckEnum(const pb::EnumDescriptor* alpha, std::vector<std::string>* problems) {
  const pb::EnumDescriptor* v1 =
      pb::DescriptorPool::generated_pool()->FindEnumTypeByName(V1Name(alpha->full_name()));
  if (v1 == nullptr) {
    problems->push_back("no v1 enum for " + alpha->full_name());
    return;
  }
  for (int i = 0; i < alpha->value_count(); ++i) {
    const pb::EnumValueDescriptor* a = alpha->value(i);
    const pb::EnumValueDescriptor* b = v1->FindValueByNumber(a->number());
    if (b == nullptr || b->name() != a->name()) {
      problems->push_back(a->full_name() + ": no v1 value of the same number and name");
    }
  }
}

TEST(V1alpha2Proto, EveryFieldHasTheSameNumberAndTypeInV1) {
  std::vector<std::string> problems;
  const pb::FileDescriptor* alpha = AlphaFile();
  ASSERT_GT(alpha->message_type_count(), 100);
  for (int i = 0; i < alpha->message_type_count(); ++i)
    CheckMessage(alpha->message_type(i), &problems);
  for (int i = 0; i < alpha->enum_type_count(); ++i) CheckEnum(alpha->enum_type(i), &problems);
  for (int i = 0; i < alpha->message_type_count(); ++i) {
    for (int j = 0; j < alpha->message_type(i)->enum_type_count(); ++j) {
      CheckEnum(alpha->message_type(i)->enum_type(j), &problems);
    }
  }
  EXPECT_TRUE(problems.empty()) << ::testing::PrintToString(problems);
}

// Every v1alpha2 RPC has a v1 twin of the same name and message types, which
// is what the forwarding services call.
TEST(V1alpha2Proto, EveryRpcHasAV1Twin) {
  const pb::FileDescriptor* alpha = AlphaFile();
  ASSERT_EQ(alpha->service_count(), 2);
  int rpcs = 0;
  for (int s = 0; s < alpha->service_count(); ++s) {
    const pb::ServiceDescriptor* a = alpha->service(s);
    const pb::ServiceDescriptor* b = V1File()->FindServiceByName(a->name());
    ASSERT_NE(b, nullptr) << a->name();
    for (int m = 0; m < a->method_count(); ++m, ++rpcs) {
      const pb::MethodDescriptor* am = a->method(m);
      const pb::MethodDescriptor* bm = b->FindMethodByName(am->name());
      ASSERT_NE(bm, nullptr) << am->full_name();
      EXPECT_EQ(V1Name(am->input_type()->full_name()), bm->input_type()->full_name());
      EXPECT_EQ(V1Name(am->output_type()->full_name()), bm->output_type()->full_name());
      EXPECT_FALSE(am->server_streaming() || am->client_streaming()) << am->full_name();
      EXPECT_EQ(bm->server_streaming(), am->server_streaming()) << am->full_name();
    }
  }
  EXPECT_EQ(rpcs, 29);  // 24 RuntimeService + 5 ImageService in cri-api v0.25
}

TEST(V1alpha2Convert, RequestKeepsEveryField) {
  a2::CreateContainerRequest in;
  in.set_pod_sandbox_id("pod-1");
  auto* c = in.mutable_config();
  c->mutable_metadata()->set_name("web");
  c->mutable_metadata()->set_attempt(3);
  c->mutable_image()->set_image("registry.local/busybox:1");
  c->add_command("/bin/sh");
  c->add_args("-c");
  auto* env = c->add_envs();
  env->set_key("GREETING");
  env->set_value("grüezi");
  auto* m = c->add_mounts();
  m->set_container_path("/data");
  m->set_host_path("/srv/data");
  m->set_readonly(true);
  m->set_propagation(a2::PROPAGATION_HOST_TO_CONTAINER);
  (*c->mutable_labels())["app"] = "web";
  c->mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(64 << 20);
  c->mutable_linux()->mutable_security_context()->mutable_run_as_user()->set_value(1000);
  c->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      a2::CONTAINER);
  in.mutable_sandbox_config()->mutable_metadata()->set_uid("uid-1");
  in.mutable_sandbox_config()->mutable_dns_config()->add_servers("10.0.0.10");

  v1::CreateContainerRequest out;
  ASSERT_TRUE(Upgrade(in, &out).ok());
  EXPECT_EQ(out.pod_sandbox_id(), "pod-1");
  EXPECT_EQ(out.config().metadata().name(), "web");
  EXPECT_EQ(out.config().metadata().attempt(), 3u);
  EXPECT_EQ(out.config().image().image(), "registry.local/busybox:1");
  ASSERT_EQ(out.config().envs_size(), 1);
  EXPECT_EQ(out.config().envs(0).value(), "grüezi");
  ASSERT_EQ(out.config().mounts_size(), 1);
  EXPECT_EQ(out.config().mounts(0).propagation(), v1::PROPAGATION_HOST_TO_CONTAINER);
  EXPECT_TRUE(out.config().mounts(0).readonly());
  EXPECT_EQ(out.config().labels().at("app"), "web");
  EXPECT_EQ(out.config().linux().resources().memory_limit_in_bytes(), 64 << 20);
  EXPECT_EQ(out.config().linux().security_context().run_as_user().value(), 1000);
  EXPECT_EQ(out.config().linux().security_context().namespace_options().pid(), v1::CONTAINER);
  EXPECT_EQ(out.sandbox_config().dns_config().servers(0), "10.0.0.10");
  // v1-only fields stay unset.
  EXPECT_EQ(out.config().cdi_devices_size(), 0);
  EXPECT_EQ(out.config().stop_signal(), v1::Signal());
  // Nothing was unknown to v1.
  std::string again;
  ASSERT_TRUE(out.SerializeToString(&again));
  std::string original;
  ASSERT_TRUE(in.SerializeToString(&original));
  EXPECT_EQ(again.size(), original.size());
}

TEST(V1alpha2Convert, ResponseDropsV1OnlyFieldsAndKeepsTheRest) {
  v1::ContainerStatusResponse in;
  auto* st = in.mutable_status();
  st->set_id("c1");
  st->set_state(v1::CONTAINER_EXITED);
  st->set_exit_code(137);
  st->set_reason("OOMKilled");
  st->set_image_ref("sha256:abc");
  st->set_image_id("sha256:abc");                      // v1 only
  st->mutable_user()->mutable_linux()->set_uid(1000);  // v1 only
  (*in.mutable_info())["info"] = "{}";

  a2::ContainerStatusResponse out;
  ASSERT_TRUE(Downgrade(in, &out).ok());
  EXPECT_EQ(out.status().id(), "c1");
  EXPECT_EQ(out.status().state(), a2::CONTAINER_EXITED);
  EXPECT_EQ(out.status().exit_code(), 137);
  EXPECT_EQ(out.status().reason(), "OOMKilled");
  EXPECT_EQ(out.status().image_ref(), "sha256:abc");
  EXPECT_EQ(out.info().at("info"), "{}");
  // Not carried as unknown fields to a client that cannot read them.
  EXPECT_TRUE(out.status().GetReflection()->GetUnknownFields(out.status()).empty());

  v1::PodSandboxStatusResponse pod;
  pod.mutable_status()->set_id("p1");
  pod.add_containers_statuses()->set_id("c1");  // v1 only
  pod.set_timestamp(42);                        // v1 only
  a2::PodSandboxStatusResponse pod_out;
  ASSERT_TRUE(Downgrade(pod, &pod_out).ok());
  EXPECT_EQ(pod_out.status().id(), "p1");
  EXPECT_TRUE(pod_out.GetReflection()->GetUnknownFields(pod_out).empty());
  EXPECT_EQ(pod_out.ByteSizeLong(), pod_out.status().ByteSizeLong() + 2);
}

TEST(V1alpha2Convert, VersionSaysV1alpha2) {
  v1::VersionResponse in;
  in.set_version("0.1.0");
  in.set_runtime_name("berth");
  in.set_runtime_version("1.2.3");
  in.set_runtime_api_version("v1");
  a2::VersionResponse out;
  ASSERT_TRUE(Downgrade(in, &out).ok());
  EXPECT_EQ(out.runtime_name(), "berth");
  EXPECT_EQ(out.runtime_version(), "1.2.3");
  EXPECT_EQ(out.runtime_api_version(), "v1alpha2");
}

TEST(V1alpha2Convert, BytesThatAreNotAMessageOfTheOtherVersionAreInternal) {
  // An env value that is not UTF-8 (v1 allows it) cannot become a v1alpha2 string.
  v1::KeyValue in;
  in.set_key("K");
  in.set_value(std::string("\xff\xfe", 2));
  a2::KeyValue out;
  Status s = Reencode(in, &out);
  EXPECT_EQ(s.code(), StatusCode::kInternal) << s.ToString();
  EXPECT_NE(s.message().find("runtime.v1.KeyValue"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace berth::server::v1alpha2
