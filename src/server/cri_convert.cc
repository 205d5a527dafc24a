#include "server/cri_convert.h"

#include <algorithm>

#include "server/cri_convert_features.h"

namespace berth::server {

namespace {

oci::NamespaceMode ToMode(runtime::v1::NamespaceMode m) {
  switch (m) {
    case runtime::v1::POD:
      return oci::NamespaceMode::kPod;
    case runtime::v1::CONTAINER:
      return oci::NamespaceMode::kContainer;
    case runtime::v1::NODE:
      return oci::NamespaceMode::kNode;
    case runtime::v1::TARGET:
      return oci::NamespaceMode::kTarget;
    default:
      return oci::NamespaceMode::kPod;
  }
}

runtime::v1::NamespaceMode FromMode(oci::NamespaceMode m) {
  switch (m) {
    case oci::NamespaceMode::kPod:
      return runtime::v1::POD;
    case oci::NamespaceMode::kContainer:
      return runtime::v1::CONTAINER;
    case oci::NamespaceMode::kNode:
      return runtime::v1::NODE;
    case oci::NamespaceMode::kTarget:
      return runtime::v1::TARGET;
  }
  return runtime::v1::POD;
}

std::optional<oci::SecurityProfile> ToProfile(const runtime::v1::SecurityProfile& p, bool has) {
  if (!has) return std::nullopt;
  oci::SecurityProfile out;
  switch (p.profile_type()) {
    case runtime::v1::SecurityProfile::RuntimeDefault:
      out.profile_type = oci::ProfileType::kRuntimeDefault;
      break;
    case runtime::v1::SecurityProfile::Unconfined:
      out.profile_type = oci::ProfileType::kUnconfined;
      break;
    case runtime::v1::SecurityProfile::Localhost:
      out.profile_type = oci::ProfileType::kLocalhost;
      break;
    default:
      break;
  }
  out.localhost_ref = p.localhost_ref();
  return out;
}

std::map<std::string, std::string> ToMap(const google::protobuf::Map<std::string, std::string>& m) {
  return {m.begin(), m.end()};
}

}  // namespace

bool LabelsMatch(const google::protobuf::Map<std::string, std::string>& selector,
                 const std::map<std::string, std::string>& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

StatusOr<sandbox::SandboxConfig> ToSandboxConfig(const runtime::v1::PodSandboxConfig& c) {
  sandbox::SandboxConfig out;
  out.name = c.metadata().name();
  out.uid = c.metadata().uid();
  out.namespace_ = c.metadata().namespace_();
  out.attempt = c.metadata().attempt();
  out.hostname = c.hostname();
  out.log_directory = c.log_directory();
  if (!out.log_directory.empty() && out.log_directory[0] != '/') {
    return InvalidArgumentError(
        StrCat("log_directory \"", out.log_directory, "\" is not absolute"));
  }
  out.dns_servers.assign(c.dns_config().servers().begin(), c.dns_config().servers().end());
  out.dns_searches.assign(c.dns_config().searches().begin(), c.dns_config().searches().end());
  out.dns_options.assign(c.dns_config().options().begin(), c.dns_config().options().end());
  for (const auto& p : c.port_mappings()) {
    network::PortMapping m;
    m.host_port = p.host_port();
    m.container_port = p.container_port();
    m.protocol = p.protocol() == runtime::v1::UDP    ? "udp"
                 : p.protocol() == runtime::v1::SCTP ? "sctp"
                                                     : "tcp";
    m.host_ip = p.host_ip();
    out.port_mappings.push_back(m);
  }
  out.labels = ToMap(c.labels());
  out.annotations = ToMap(c.annotations());
  out.cgroup_parent = c.linux().cgroup_parent();
  out.sysctls = ToMap(c.linux().sysctls());
  auto pod_resources = [](const runtime::v1::LinuxContainerResources& r) {
    oci::PodResources p;
    p.cpu_period = r.cpu_period();
    p.cpu_quota = r.cpu_quota();
    p.cpu_shares = r.cpu_shares();
    p.memory_limit_in_bytes = r.memory_limit_in_bytes();
    return p;
  };
  if (c.linux().has_resources()) out.resources = pod_resources(c.linux().resources());
  if (c.linux().has_overhead()) out.overhead = pod_resources(c.linux().overhead());
  const auto& ns = c.linux().security_context().namespace_options();
  out.network_mode = ToMode(ns.network());
  out.pid_mode = ToMode(ns.pid());
  out.ipc_mode = ToMode(ns.ipc());
  out.privileged = c.linux().security_context().privileged();
  if (ns.has_userns_options()) {
    const auto& u = ns.userns_options();
    switch (u.mode()) {
      case runtime::v1::NODE:
        if (u.uids_size() > 0 || u.gids_size() > 0) {
          return InvalidArgumentError("userns_options of mode NODE must not carry mappings");
        }
        break;
      case runtime::v1::POD: {
        sandbox::SandboxConfig::UserNamespace userns;
        for (const auto& m : u.uids())
          userns.uids.push_back({m.container_id(), m.host_id(), m.length()});
        for (const auto& m : u.gids())
          userns.gids.push_back({m.container_id(), m.host_id(), m.length()});
        if (userns.uids.empty() || userns.gids.empty()) {
          return InvalidArgumentError(
              "userns_options of mode POD needs uid and gid mappings (uids, gids)");
        }
        out.userns = std::move(userns);
        break;
      }
      default:
        return InvalidArgumentError(StrCat("userns_options mode ",
                                           runtime::v1::NamespaceMode_Name(u.mode()),
                                           " is not supported (POD or NODE)"));
    }
  }
  return out;
}

oci::Resources ToResources(const runtime::v1::LinuxContainerResources& r) {
  oci::Resources out;
  out.cpu_period = r.cpu_period();
  out.cpu_quota = r.cpu_quota();
  out.cpu_shares = r.cpu_shares();
  out.memory_limit_in_bytes = r.memory_limit_in_bytes();
  if (r.oom_score_adj() != 0) out.oom_score_adj = r.oom_score_adj();
  out.cpuset_cpus = r.cpuset_cpus();
  out.cpuset_mems = r.cpuset_mems();
  for (const auto& h : r.hugepage_limits())
    out.hugepage_limits.push_back({h.page_size(), h.limit()});
  out.unified = ToMap(r.unified());
  out.memory_swap_limit_in_bytes = r.memory_swap_limit_in_bytes();
  return out;
}

void FromResources(const oci::Resources& r, runtime::v1::LinuxContainerResources* out) {
  out->set_cpu_period(r.cpu_period);
  out->set_cpu_quota(r.cpu_quota);
  out->set_cpu_shares(r.cpu_shares);
  out->set_memory_limit_in_bytes(r.memory_limit_in_bytes);
  out->set_oom_score_adj(r.oom_score_adj.value_or(0));
  out->set_cpuset_cpus(r.cpuset_cpus);
  out->set_cpuset_mems(r.cpuset_mems);
  for (const auto& h : r.hugepage_limits) {
    auto* l = out->add_hugepage_limits();
    l->set_page_size(h.page_size);
    l->set_limit(h.limit);
  }
  for (const auto& [k, v] : r.unified) (*out->mutable_unified())[k] = v;
  out->set_memory_swap_limit_in_bytes(r.memory_swap_limit_in_bytes);
}

StatusOr<oci::ContainerConfig> ToContainerConfig(const runtime::v1::ContainerConfig& c) {
  oci::ContainerConfig out;
  out.name = c.metadata().name();
  out.attempt = c.metadata().attempt();
  out.command.assign(c.command().begin(), c.command().end());
  out.args.assign(c.args().begin(), c.args().end());
  out.working_dir = c.working_dir();
  for (const auto& kv : c.envs()) out.envs.emplace_back(kv.key(), kv.value());
  for (const auto& m : c.mounts()) {
    oci::Mount om;
    if (m.has_image() && !m.image().image().empty()) {
      if (!m.host_path().empty()) {
        return InvalidArgumentError(StrCat("mount ", m.container_path(),
                                           ": an image volume has no host_path (got \"",
                                           m.host_path(), "\")"));
      }
      om.image = m.image().image();
      om.image_sub_path = m.image_sub_path();
    } else if (!m.image_sub_path().empty()) {
      return InvalidArgumentError(
          StrCat("mount ", m.container_path(), ": image_sub_path is set without an image"));
    }
    om.container_path = m.container_path();
    om.host_path = m.host_path();
    om.readonly = m.readonly();
    om.recursive_read_only = m.recursive_read_only();
    om.selinux_relabel = m.selinux_relabel();
    om.propagation = m.propagation() == runtime::v1::PROPAGATION_HOST_TO_CONTAINER
                         ? oci::MountPropagation::kHostToContainer
                     : m.propagation() == runtime::v1::PROPAGATION_BIDIRECTIONAL
                         ? oci::MountPropagation::kBidirectional
                         : oci::MountPropagation::kPrivate;
    out.mounts.push_back(om);
  }
  for (const auto& d : c.devices()) {
    oci::Device od;
    od.container_path = d.container_path();
    od.host_path = d.host_path();
    od.permissions = d.permissions();
    out.devices.push_back(od);
  }
  out.labels = ToMap(c.labels());
  out.annotations = ToMap(c.annotations());
  out.tty = c.tty();
  out.stdin = c.stdin();
  out.stdin_once = c.stdin_once();
  out.resources = ToResources(c.linux().resources());
  const auto& sc = c.linux().security_context();
  auto& osc = out.security_context;
  osc.capabilities.add_capabilities.assign(sc.capabilities().add_capabilities().begin(),
                                           sc.capabilities().add_capabilities().end());
  osc.capabilities.drop_capabilities.assign(sc.capabilities().drop_capabilities().begin(),
                                            sc.capabilities().drop_capabilities().end());
  osc.privileged = sc.privileged();
  osc.namespace_options.network = ToMode(sc.namespace_options().network());
  osc.namespace_options.pid = ToMode(sc.namespace_options().pid());
  osc.namespace_options.ipc = ToMode(sc.namespace_options().ipc());
  osc.namespace_options.target_id = sc.namespace_options().target_id();
  if (sc.has_run_as_user()) osc.run_as_user = sc.run_as_user().value();
  if (sc.has_run_as_group()) osc.run_as_group = sc.run_as_group().value();
  osc.run_as_username = sc.run_as_username();
  osc.readonly_rootfs = sc.readonly_rootfs();
  osc.supplemental_groups.assign(sc.supplemental_groups().begin(), sc.supplemental_groups().end());
  osc.supplemental_groups_policy = sc.supplemental_groups_policy() == runtime::v1::Strict
                                       ? oci::SupplementalGroupsPolicy::kStrict
                                       : oci::SupplementalGroupsPolicy::kMerge;
  osc.no_new_privs = sc.no_new_privs();
  // proto3 cannot tell an empty list from an absent one: empty means the
  // defaults, as in containerd.
  if (sc.masked_paths_size() > 0) {
    osc.masked_paths = std::vector<std::string>(sc.masked_paths().begin(), sc.masked_paths().end());
  }
  if (sc.readonly_paths_size() > 0) {
    osc.readonly_paths =
        std::vector<std::string>(sc.readonly_paths().begin(), sc.readonly_paths().end());
  }
  osc.seccomp = ToProfile(sc.seccomp(), sc.has_seccomp());
  // Older kubelets still send the deprecated string fields.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  osc.seccomp_profile_path = sc.seccomp_profile_path();
  osc.apparmor = ToProfile(sc.apparmor(), sc.has_apparmor());
  osc.apparmor_profile = sc.apparmor_profile();
#pragma GCC diagnostic pop
  out.stop_signal = StopSignalName(c.stop_signal());
  for (const auto& d : c.cdi_devices()) out.cdi_devices.push_back(d.name());
  return out;
}

// What PodSandbox (list) and PodSandboxStatus share: id, metadata, state, created.
template <typename CriMessage>
void FillSandboxCommon(const sandbox::SandboxRecord& r, CriMessage* out) {
  out->set_id(r.id);
  auto* md = out->mutable_metadata();
  md->set_name(r.config.name);
  md->set_uid(r.config.uid);
  md->set_namespace_(r.config.namespace_);
  md->set_attempt(r.config.attempt);
  out->set_state(r.state == sandbox::SandboxState::kReady ? runtime::v1::SANDBOX_READY
                                                          : runtime::v1::SANDBOX_NOTREADY);
  out->set_created_at(r.created_at_ns);
}

void ToCriSandbox(const sandbox::SandboxRecord& r, runtime::v1::PodSandbox* out) {
  FillSandboxCommon(r, out);
  for (const auto& [k, v] : r.config.labels) (*out->mutable_labels())[k] = v;
  for (const auto& [k, v] : r.config.annotations) (*out->mutable_annotations())[k] = v;
  out->set_runtime_handler(r.runtime_handler);
}

void ToCriSandboxStatus(const sandbox::SandboxRecord& r, runtime::v1::PodSandboxStatus* out) {
  FillSandboxCommon(r, out);
  if (!r.ip.empty()) {
    out->mutable_network()->set_ip(r.ip);
    for (const auto& ip : r.additional_ips)
      out->mutable_network()->add_additional_ips()->set_ip(ip);
  }
  auto* ns = out->mutable_linux()->mutable_namespaces()->mutable_options();
  ns->set_network(FromMode(r.config.network_mode));
  ns->set_pid(FromMode(r.config.pid_mode));
  ns->set_ipc(FromMode(r.config.ipc_mode));
  for (const auto& [k, v] : r.config.labels) (*out->mutable_labels())[k] = v;
  for (const auto& [k, v] : r.config.annotations) (*out->mutable_annotations())[k] = v;
  out->set_runtime_handler(r.runtime_handler);
}

runtime::v1::ContainerState ToCriState(container::ContainerState s) {
  switch (s) {
    case container::ContainerState::kCreated:
      return runtime::v1::CONTAINER_CREATED;
    case container::ContainerState::kRunning:
      return runtime::v1::CONTAINER_RUNNING;
    case container::ContainerState::kExited:
      return runtime::v1::CONTAINER_EXITED;
    case container::ContainerState::kUnknown:
      return runtime::v1::CONTAINER_UNKNOWN;
  }
  return runtime::v1::CONTAINER_UNKNOWN;
}

void ToCriContainer(const container::ContainerRecord& r, runtime::v1::Container* out) {
  out->set_id(r.id);
  out->set_pod_sandbox_id(r.sandbox_id);
  out->mutable_metadata()->set_name(r.name);
  out->mutable_metadata()->set_attempt(r.attempt);
  out->mutable_image()->set_image(r.image);
  out->set_image_ref(r.image_ref);
  out->set_image_id(r.image_id);
  out->set_state(ToCriState(r.state));
  out->set_created_at(r.created_at_ns);
  for (const auto& [k, v] : r.labels) (*out->mutable_labels())[k] = v;
  for (const auto& [k, v] : r.annotations) (*out->mutable_annotations())[k] = v;
}

void ToCriContainerStatus(const container::ContainerRecord& r, runtime::v1::ContainerStatus* out) {
  out->set_id(r.id);
  out->mutable_metadata()->set_name(r.name);
  out->mutable_metadata()->set_attempt(r.attempt);
  out->set_state(ToCriState(r.state));
  out->set_created_at(r.created_at_ns);
  // A CREATED record carries the stamp of a start in progress; it has not started yet.
  out->set_started_at(r.state == container::ContainerState::kCreated ? 0 : r.started_at_ns);
  out->set_finished_at(r.finished_at_ns);
  out->set_exit_code(r.exit_code);
  out->mutable_image()->set_image(r.image);
  out->set_image_ref(r.image_ref);
  out->set_image_id(r.image_id);
  out->set_reason(r.reason);
  out->set_message(r.message);
  for (const auto& [k, v] : r.labels) (*out->mutable_labels())[k] = v;
  for (const auto& [k, v] : r.annotations) (*out->mutable_annotations())[k] = v;
  for (const auto& m : r.mounts) {
    auto* om = out->add_mounts();
    om->set_container_path(m.container_path);
    om->set_host_path(m.host_path);
    om->set_readonly(m.readonly);
    om->set_propagation(static_cast<runtime::v1::MountPropagation>(m.propagation));
    if (!m.image.empty()) {
      om->mutable_image()->set_image(m.image);
      om->set_image_sub_path(m.image_sub_path);
    }
  }
  out->set_log_path(r.log_path);
  FromResources(r.resources, out->mutable_resources()->mutable_linux());
  out->mutable_user()->mutable_linux()->set_uid(r.uid);
  out->mutable_user()->mutable_linux()->set_gid(r.gid);
  for (uint32_t g : r.supplemental_groups) {
    out->mutable_user()->mutable_linux()->add_supplemental_groups(g);
  }
  out->set_stop_signal(ToCriSignal(container::EffectiveStopSignal(r.stop_signal, "")));
}

void ToCriContainerStatuses(std::vector<container::ContainerRecord> records,
                            google::protobuf::RepeatedPtrField<runtime::v1::ContainerStatus>* out) {
  std::stable_sort(records.begin(), records.end(),
                   [](const auto& a, const auto& b) { return a.created_at_ns < b.created_at_ns; });
  for (const auto& r : records) ToCriContainerStatus(r, out->Add());
}

void ToCriContainerEvent(const container::LifecycleEvent& e,
                         runtime::v1::ContainerEventResponse* out) {
  out->set_container_id(e.id);
  switch (e.type) {
    case container::LifecycleEventType::kCreated:
      out->set_container_event_type(runtime::v1::CONTAINER_CREATED_EVENT);
      break;
    case container::LifecycleEventType::kStarted:
      out->set_container_event_type(runtime::v1::CONTAINER_STARTED_EVENT);
      break;
    case container::LifecycleEventType::kStopped:
      out->set_container_event_type(runtime::v1::CONTAINER_STOPPED_EVENT);
      break;
    case container::LifecycleEventType::kDeleted:
      out->set_container_event_type(runtime::v1::CONTAINER_DELETED_EVENT);
      break;
  }
  out->set_created_at(e.at_ns);
  if (e.sandbox) ToCriSandboxStatus(*e.sandbox, out->mutable_pod_sandbox_status());
  ToCriContainerStatuses(e.containers, out->mutable_containers_statuses());
}

}  // namespace berth::server
