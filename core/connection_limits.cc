#include "core/connection_limits.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

namespace flowguard::core {

const char* rejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::ListenerLimit:
      return "listener_limit";
    case RejectReason::ProcessLimit:
      return "process_limit";
    case RejectReason::Overloaded:
      return "overloaded";
  }
  return "unknown";
}

bool ConnectionLimit::tryAcquire() {
  int64_t max = max_.load(std::memory_order_relaxed);
  int64_t now = active_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (max > 0 && now > max) {
    active_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  accepted_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

uint64_t ConnectionLimit::rejectedTotal() const {
  uint64_t total = 0;
  for (const auto& n : rejected_) total += n.load(std::memory_order_relaxed);
  return total;
}

void ConnectionSlot::reset() {
  if (listener_) listener_->release();
  if (process_) process_->connections.release();
  listener_.reset();
  process_.reset();
}

bool admitConnection(const std::shared_ptr<ConnectionLimit>& listener,
                     const std::shared_ptr<OverloadState>& process, ConnectionSlot& slot,
                     RejectReason* reason) {
  auto reject = [&](RejectReason why) {
    if (listener) listener->countRejected(why);
    if (process) process->connections.countRejected(why);
    if (reason != nullptr) *reason = why;
    return false;
  };
  if (process && process->isOverloaded()) return reject(RejectReason::Overloaded);
  if (process && !process->connections.tryAcquire()) return reject(RejectReason::ProcessLimit);
  if (listener && !listener->tryAcquire()) {
    if (process) process->connections.release();
    return reject(RejectReason::ListenerLimit);
  }
  slot = ConnectionSlot(listener, process);
  return true;
}

int64_t defaultProcessConnectionLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 0;
  return static_cast<int64_t>(limit.rlim_cur / 2);
}

uint64_t currentRssBytes() {
  std::FILE* file = std::fopen("/proc/self/statm", "r");
  if (file == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  int n = std::fscanf(file, "%llu %llu", &size, &resident);
  std::fclose(file);
  if (n != 2) return 0;
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

bool nextOverloaded(bool overloaded, uint64_t rss, uint64_t limit) {
  if (limit == 0) return false;
  if (!overloaded) return rss > limit;
  return rss >= limit / 10 * 9;
}

bool shouldReleaseHeap(uint64_t rss, uint64_t lowestRssSinceRelease, uint64_t msSinceLastRelease,
                       bool overloaded, uint64_t limit) {
  if (!overloaded && nextOverloaded(false, rss, limit)) return true;  // about to shed: first try this
  if (msSinceLastRelease < kHeapReleaseIntervalMs) return false;
  return rss > lowestRssSinceRelease + kHeapReleaseStep || overloaded;
}

}  // namespace flowguard::core
