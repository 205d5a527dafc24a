#include "runtime/v1/api.grpc.pb.h"
// (the CRI header first: its Signal enum clashes with <signal.h>)

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>

#include "bench/cri_call.h"
#include "bench/stream_bench.h"
#include "common/fs.h"
#include "stream/client.h"

namespace berth::bench {

namespace {

namespace cri = runtime::v1;
using Stub = cri::RuntimeService::Stub;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kHttpPort = 8080;

// GET `path` from 127.0.0.1:`port` and the size of the body, read up to its
// Content-Length, after which the connection is closed, as curl does (a
// forwarder may keep a connection open until the client closes: containerd's
// waits up to a second for the other direction before it ends the stream).
// Refused or headless answers (the target not up yet) are UNAVAILABLE.
StatusOr<uint64_t> HttpGetBodySize(uint16_t port, const std::string& path) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{60, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return UnavailableError(StrCat("connect 127.0.0.1:", port, ": ", std::strerror(errno)));
  }
  std::string req = StrCat("GET ", path, " HTTP/1.0\r\nHost: bench\r\n\r\n");
  if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    return ErrnoStatus(errno, "send the HTTP request");
  }
  std::string head;
  uint64_t body = 0;
  std::optional<uint64_t> length;
  bool in_body = false;
  std::vector<char> buf(1 << 18);
  while (!length || body < *length) {
    ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "receive the HTTP answer");
    if (n == 0) break;
    if (in_body) {
      body += static_cast<uint64_t>(n);
      continue;
    }
    head.append(buf.data(), static_cast<size_t>(n));
    size_t end = head.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    if (head.compare(9, 3, "200") != 0) {
      return InternalError(StrCat("HTTP answer: ", head.substr(0, head.find("\r\n"))));
    }
    in_body = true;
    body = head.size() - end - 4;
    std::string lower = head.substr(0, end);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t cl = lower.find("\r\ncontent-length:");
    if (cl != std::string::npos) length = std::strtoull(lower.c_str() + cl + 17, nullptr, 10);
  }
  if (!in_body) return UnavailableError("the connection ended before an HTTP answer");
  return body;
}

struct BenchPod {
  Stub& stub;
  std::string pod_id, container_id;
  ~BenchPod() {
    if (!container_id.empty()) {
      cri::StopContainerRequest stop;
      stop.set_container_id(container_id);
      cri::StopContainerResponse stop_resp;
      (void)CriCall(stub, &Stub::StopContainer, stop, &stop_resp, "StopContainer");
      cri::RemoveContainerRequest rm;
      rm.set_container_id(container_id);
      cri::RemoveContainerResponse rm_resp;
      (void)CriCall(stub, &Stub::RemoveContainer, rm, &rm_resp, "RemoveContainer");
    }
    if (!pod_id.empty()) {
      cri::StopPodSandboxRequest stop;
      stop.set_pod_sandbox_id(pod_id);
      cri::StopPodSandboxResponse stop_resp;
      (void)CriCall(stub, &Stub::StopPodSandbox, stop, &stop_resp, "StopPodSandbox");
      cri::RemovePodSandboxRequest rm;
      rm.set_pod_sandbox_id(pod_id);
      cri::RemovePodSandboxResponse rm_resp;
      (void)CriCall(stub, &Stub::RemovePodSandbox, rm, &rm_resp, "RemovePodSandbox");
    }
  }
};

Status StartServer(const StreamBenchOptions& o, BenchPod& pod) {
  cri::PodSandboxConfig config;
  const std::string name = StrCat(o.name_prefix, "-stream-", ::getpid());
  config.mutable_metadata()->set_name(name);
  config.mutable_metadata()->set_uid(name + "-uid");
  config.mutable_metadata()->set_namespace_("berth-bench");
  if (!o.host_network) config.set_hostname(name);
  auto* ns = config.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_network(o.host_network ? cri::NODE : cri::POD);
  ns->set_pid(cri::CONTAINER);
  cri::RunPodSandboxRequest run;
  *run.mutable_config() = config;
  cri::RunPodSandboxResponse run_resp;
  RETURN_IF_ERROR(CriCall(pod.stub, &Stub::RunPodSandbox, run, &run_resp, "RunPodSandbox"));
  pod.pod_id = run_resp.pod_sandbox_id();

  cri::CreateContainerRequest create;
  create.set_pod_sandbox_id(pod.pod_id);
  *create.mutable_sandbox_config() = config;
  auto* c = create.mutable_config();
  c->mutable_metadata()->set_name("httpd");
  c->mutable_image()->set_image(o.image);
  for (const char* a : {"sh", "-c"}) c->add_command(a);
  c->add_command(StrCat("mkdir -p /www && head -c ", o.transfer_bytes,
                        " /dev/urandom > /www/data && echo ready > /www/ready && exec httpd -f -p "
                        "127.0.0.1:",
                        kHttpPort, " -h /www"));
  cri::CreateContainerResponse create_resp;
  RETURN_IF_ERROR(
      CriCall(pod.stub, &Stub::CreateContainer, create, &create_resp, "CreateContainer"));
  pod.container_id = create_resp.container_id();
  cri::StartContainerRequest start;
  start.set_container_id(pod.container_id);
  cri::StartContainerResponse start_resp;
  RETURN_IF_ERROR(CriCall(pod.stub, &Stub::StartContainer, start, &start_resp, "StartContainer"));
  // The data file is written before httpd starts.
  auto deadline = Clock::now() + std::chrono::seconds(120);
  for (;;) {
    cri::ExecSyncRequest req;
    req.set_container_id(pod.container_id);
    req.add_cmd("cat");
    req.add_cmd("/www/ready");
    req.set_timeout(10);
    cri::ExecSyncResponse resp;
    Status s = CriCall(pod.stub, &Stub::ExecSync, req, &resp, "ExecSync cat /www/ready");
    if (s.ok() && resp.stdout() == "ready\n") return OkStatus();
    if (Clock::now() > deadline) {
      return DeadlineExceededError("the bench container did not write its data in 120 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// Exec RPC + SPDY session of `echo hi`, checked.
Status ExecEchoOverSpdy(Stub& stub, const std::string& container_id) {
  cri::ExecRequest req;
  req.set_container_id(container_id);
  req.add_cmd("echo");
  req.add_cmd("hi");
  req.set_stdout(true);
  req.set_stderr(true);
  cri::ExecResponse resp;
  RETURN_IF_ERROR(CriCall(stub, &Stub::Exec, req, &resp, "Exec"));
  stream::StringOutput out, err;
  stream::RemoteCommandIo io;
  io.stdout = &out;
  io.stderr = &err;
  stream::ClientOptions opts;
  opts.protocol = stream::StreamProtocol::kSpdy;
  auto code = stream::RunRemoteCommand(resp.url(), io, opts);
  if (!code.ok()) return Annotate(code.status(), StrCat("exec `echo hi` via ", resp.url()));
  if (*code != 0 || out.str() != "hi\n") {
    return InternalError(StrCat("exec `echo hi`: exit code ", *code, ", stdout \"", out.str(),
                                "\", stderr \"", err.str(), "\""));
  }
  return OkStatus();
}

}  // namespace

StatusOr<StreamBenchResult> RunStreamBench(const StreamBenchOptions& options) {
  auto stub = cri::RuntimeService::NewStub(
      grpc::CreateChannel(options.endpoint, grpc::InsecureChannelCredentials()));
  BenchPod pod{*stub, "", ""};
  RETURN_IF_ERROR(StartServer(options, pod));
  StreamBenchResult result;
  result.transfer_bytes = options.transfer_bytes;

  RETURN_IF_ERROR(ExecEchoOverSpdy(*stub, pod.container_id));  // warm-up, not counted
  for (int i = 0; i < options.exec_iterations; ++i) {
    Clock::time_point t0 = Clock::now();
    RETURN_IF_ERROR(ExecEchoOverSpdy(*stub, pod.container_id));
    result.exec_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }

  for (int i = 0; i < options.transfer_runs; ++i) {
    cri::PortForwardRequest req;
    req.set_pod_sandbox_id(pod.pod_id);
    req.add_port(kHttpPort);
    cri::PortForwardResponse resp;
    RETURN_IF_ERROR(CriCall(*stub, &Stub::PortForward, req, &resp, "PortForward"));
    stream::ClientOptions opts;
    opts.protocol = stream::StreamProtocol::kSpdy;
    ASSIGN_OR_RETURN(std::unique_ptr<stream::PortForwarder> forwarder,
                     stream::PortForwarder::Start(resp.url(), {{"127.0.0.1", 0, kHttpPort}}, opts));
    const uint16_t local = forwarder->local_ports().at(0);
    Clock::time_point t0 = Clock::now();
    ASSIGN_OR_RETURN(uint64_t got, HttpGetBodySize(local, "/data"));
    double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    forwarder->Stop();
    if (got != options.transfer_bytes) {
      return InternalError(
          StrCat("port-forward transfer ", i, ": ", got, " bytes of ", options.transfer_bytes));
    }
    result.transfer_seconds.push_back(seconds);
  }
  return result;
}

}  // namespace berth::bench
