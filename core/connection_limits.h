// Process-wide admission of downstream connections and the overload flag. One
// ConnectionLimit per listener (shared by that listener's socket on every worker, carried
// across reloads by listener name) and one in OverloadState for the whole process. Workers
// acquire and release on their own threads, the main thread sets limits and the flag: all
// through relaxed atomics, no locks on the accept path.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/stat_set.h"

namespace flowguard::core {

// Why a connection was accepted and closed at once.
enum class RejectReason : size_t { ListenerLimit = 0, ProcessLimit = 1, Overloaded = 2 };
inline constexpr size_t kRejectReasons = 3;
const char* rejectReasonName(RejectReason reason);  // "listener_limit", "process_limit", "overloaded"

class ConnectionLimit {
 public:
  explicit ConnectionLimit(int64_t max = 0) : max_(max) {}

  // 0 = unlimited. Lowering it closes nothing: only new connections see it.
  void setMax(int64_t max) { max_.store(max, std::memory_order_relaxed); }
  int64_t max() const { return max_.load(std::memory_order_relaxed); }

  // Takes one slot when below the limit. Concurrent callers may each see room for the last
  // slot; the increment decides, so the limit is never exceeded.
  bool tryAcquire();
  void release() { active_.fetch_sub(1, std::memory_order_relaxed); }
  void countRejected(RejectReason reason) {
    rejected_[static_cast<size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  }

  int64_t active() const { return active_.load(std::memory_order_relaxed); }
  uint64_t accepted() const { return accepted_.load(std::memory_order_relaxed); }
  uint64_t rejected(RejectReason reason) const {
    return rejected_[static_cast<size_t>(reason)].load(std::memory_order_relaxed);
  }
  uint64_t rejectedTotal() const;
  // Times a connection stopped reading its client because the client was not reading the
  // answers (write queue above buffer_limit): /stats shows it, so a test can wait for it.
  void countHeldForOutput() { heldForOutput_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t heldForOutput() const { return heldForOutput_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> max_;
  std::atomic<int64_t> active_{0};
  std::atomic<uint64_t> accepted_{0};
  std::array<std::atomic<uint64_t>, kRejectReasons> rejected_{};
  std::atomic<uint64_t> heldForOutput_{0};
};

// A listener's (or the process's) connection numbers, declared once: /stats shows each under
// its name (`listener_connections.<listener>`, `connections`), Prometheus each listener's with
// the label {listener}. Rejections by reason are their own family (rejectReasonName).
inline constexpr FieldStatDecl<ConnectionLimit> kConnectionStats[] = {
    {"active", "flowguard_connections_active", "Open downstream connections, by listener (all workers).",
     true, [](const ConnectionLimit& c) { return c.active(); }},
    {"max", "flowguard_connections_max", "The listener's max_connections (0: no limit).", true,
     [](const ConnectionLimit& c) { return c.max(); }},
    {"accepted", "flowguard_connections_accepted_total", "Downstream connections accepted and kept.", false,
     [](const ConnectionLimit& c) { return static_cast<int64_t>(c.accepted()); }},
    {"held_for_output", "flowguard_connections_held_for_output_total",
     "Times a connection stopped reading its client, who was not reading the answers.", false,
     [](const ConnectionLimit& c) { return static_cast<int64_t>(c.heldForOutput()); }},
};

// What the whole process shares: the overall connection limit and the memory overload flag
// (set by the main thread's RSS sampling, read by workers at each accept and request head).
struct OverloadState {
  ConnectionLimit connections;
  std::atomic<bool> overloaded{false};
  std::atomic<uint64_t> shedRequests{0};  // requests answered 503 while overloaded
  std::atomic<uint64_t> rssBytes{0};      // last sample
  std::atomic<uint64_t> memoryLimit{0};   // in force; 0 = off
  std::atomic<uint64_t> transitions{0};   // times the flag went on
  std::atomic<uint64_t> heapReleases{0};  // times free heap memory was given back (see below)

  bool isOverloaded() const { return overloaded.load(std::memory_order_relaxed); }
};

// The slots one connection holds; released when it is destroyed (with the connection).
class ConnectionSlot {
 public:
  ConnectionSlot() = default;
  ConnectionSlot(std::shared_ptr<ConnectionLimit> listener, std::shared_ptr<OverloadState> process)
      : listener_(std::move(listener)), process_(std::move(process)) {}
  ~ConnectionSlot() { reset(); }
  ConnectionSlot(ConnectionSlot&& other) noexcept = default;
  ConnectionSlot& operator=(ConnectionSlot&& other) noexcept {
    if (this != &other) {
      reset();
      listener_ = std::move(other.listener_);
      process_ = std::move(other.process_);
    }
    return *this;
  }
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;

  void reset();

 private:
  std::shared_ptr<ConnectionLimit> listener_;
  std::shared_ptr<OverloadState> process_;
};

// Decides for one connection just accepted on a listener (either pointer may be null: no
// such limit). Admitted: `slot` holds what was acquired. Rejected: nothing is held and the
// rejection is counted on the listener (every reason) and on the process (every reason).
bool admitConnection(const std::shared_ptr<ConnectionLimit>& listener,
                     const std::shared_ptr<OverloadState>& process, ConnectionSlot& slot,
                     RejectReason* reason = nullptr);

// The default process-wide limit: half the RLIMIT_NOFILE soft limit (see config.h).
int64_t defaultProcessConnectionLimit();

// Resident set size of this process from /proc/self/statm, in bytes; 0 when unreadable.
uint64_t currentRssBytes();

// The overload flag after a sample: on above `limit`, off again only below 90% of it, so a
// process hovering at the limit does not flap. `limit` 0: always off.
bool nextOverloaded(bool overloaded, uint64_t rss, uint64_t limit);

// Whether to give the allocator's free memory back to the system now (malloc_trim). glibc
// keeps what a burst of connections freed (their read buffers: 16-64 KiB each) for reuse, so
// RSS stays at the burst's high-water mark although nothing uses it. Released when RSS has
// grown kHeapReleaseStep past the lowest it was since the last release, at most every
// kHeapReleaseIntervalMs; and always just before overload would be declared, so memory that
// is free does not make the gateway shed load (Envoy's shrink_heap overload action). A real
// leak is live memory: releasing cannot hide it.
inline constexpr uint64_t kHeapReleaseStep = 1 << 20;
inline constexpr uint64_t kHeapReleaseIntervalMs = 10'000;
bool shouldReleaseHeap(uint64_t rss, uint64_t lowestRssSinceRelease, uint64_t msSinceLastRelease,
                       bool overloaded, uint64_t limit);

}  // namespace flowguard::core
