#include "oci/handler_registry.h"

namespace berth::oci {

HandlerRegistry::HandlerRegistry(std::vector<HandlerState> handlers, std::string configured_default)
    : handlers_(std::move(handlers)), configured_default_(std::move(configured_default)) {}

const HandlerState* HandlerRegistry::FindLocked(const std::string& name) const {
  for (const auto& h : handlers_) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

bool HandlerRegistry::AllProbedLocked() const {
  for (const auto& h : handlers_) {
    if (!h.probed) return false;
  }
  return true;
}

std::string HandlerRegistry::DefaultLocked() const {
  return configured_default_.empty() ? chosen_default_ : configured_default_;
}

void HandlerRegistry::SetProbeResult(const std::string& name, RuntimeProbe probe) {
  std::lock_guard lock(mu_);
  for (auto& h : handlers_) {
    if (h.name != name) continue;
    h.probe = std::move(probe);
    h.probed = true;
    break;
  }
  if (configured_default_.empty() && AllProbedLocked()) {
    auto works = [&](const std::string& n) {
      const HandlerState* h = FindLocked(n);
      return h != nullptr && h->probe.works;
    };
    std::string chosen;
    for (const char* preferred : {"crun", "runc"}) {
      if (works(preferred)) {
        chosen = preferred;
        break;
      }
    }
    for (const auto& h : handlers_) {
      if (chosen.empty() && h.probe.works) chosen = h.name;
    }
    if (chosen.empty() && !handlers_.empty()) {
      chosen = FindLocked("runc") != nullptr ? "runc" : handlers_.front().name;
    }
    chosen_default_ = chosen;
  }
  changed_.notify_all();
}

std::vector<HandlerState> HandlerRegistry::Handlers() const {
  std::lock_guard lock(mu_);
  return handlers_;
}

bool HandlerRegistry::AllProbed() const {
  std::lock_guard lock(mu_);
  return AllProbedLocked();
}

std::string HandlerRegistry::DefaultName() const {
  std::lock_guard lock(mu_);
  return DefaultLocked();
}

StatusOr<HandlerState> HandlerRegistry::WaitFor(const std::string& name,
                                                std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::string wanted = name.empty() ? DefaultLocked() : name;
    bool decided = !wanted.empty() || AllProbedLocked();
    if (decided) {
      const HandlerState* h = FindLocked(wanted);
      if (h == nullptr && wanted.empty()) {
        return FailedPreconditionError(
            "no OCI runtime of runtime.handlers was found (install crun or runc)");
      }
      if (h == nullptr) {
        std::string known;
        for (const auto& k : handlers_) known = StrCat(known, known.empty() ? "" : ", ", k.name);
        return InvalidArgumentError(StrCat("unknown runtime handler \"", wanted,
                                           "\"; configured: ", known.empty() ? "none" : known));
      }
      if (h->probed) return *h;
    }
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) {
      return UnavailableError(StrCat("runtime handler \"", name.empty() ? "(default)" : name,
                                     "\" is still being probed; retry shortly"));
    }
  }
}

}  // namespace berth::oci
