#include "loadgen/run_stats.h"

#include <algorithm>

#include "core/status_class.h"

namespace flowguard::loadgen {

Outcome classify(int status) {
  switch (core::statusClass(status)) {
    case core::StatusClass::Success:
      return Outcome::S2xx;
    case core::StatusClass::Redirection:
      return Outcome::S3xx;
    case core::StatusClass::ClientError:
      return status == 429 ? Outcome::S429 : Outcome::S4xx;
    case core::StatusClass::ServerError:
      return Outcome::S5xx;
    case core::StatusClass::None:
      break;
  }
  return Outcome::Error;  // 0 (no response) and the odd final 1xx
}

std::string_view outcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::S2xx:
      return "2xx";
    case Outcome::S3xx:
      return "3xx";
    case Outcome::S429:
      return "429";
    case Outcome::S4xx:
      return "4xx";
    case Outcome::S5xx:
      return "5xx";
    case Outcome::Error:
      return "error";
    case Outcome::kCount:
      break;
  }
  return "?";
}

uint64_t KeyCounts::total() const {
  uint64_t sum = 0;
  for (uint64_t n : outcomes) sum += n;
  return sum;
}

ThreadStats::ThreadStats(size_t keyCount) : perKey(keyCount) {}

void ThreadStats::record(int status, uint64_t correctedUs, uint64_t uncorrectedUs, int keyIndex) {
  auto outcome = static_cast<size_t>(classify(status));
  latency[outcome][0].record(correctedUs);
  latency[outcome][1].record(uncorrectedUs);
  liveAll.record(correctedUs);
  auto& slot = statusCounts[std::clamp(status, 0, kMaxStatus - 1)];
  slot.store(slot.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  completed.store(completed.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (keyIndex >= 0) ++perKey[static_cast<size_t>(keyIndex)].outcomes[outcome];
}

void RunTotals::add(const ThreadStats& t) {
  for (size_t o = 0; o < kOutcomes; ++o) {
    for (size_t k = 0; k < 2; ++k) latency[o][k].merge(t.latency[o][k]);
    allCorrected.merge(t.latency[o][0]);
    allUncorrected.merge(t.latency[o][1]);
  }
  for (int s = 0; s < kMaxStatus; ++s) statusCounts[s] += t.statusCounts[s].load(std::memory_order_relaxed);
  for (size_t k = 0; k < perKey.size() && k < t.perKey.size(); ++k) {
    for (size_t o = 0; o < kOutcomes; ++o) perKey[k].outcomes[o] += t.perKey[k].outcomes[o];
  }
  bytesRead += t.bytesRead.load(std::memory_order_relaxed);
  completed += t.completed.load(std::memory_order_relaxed);
  sent += t.sent;
  if (t.firstSendNs != 0 && (firstSendNs == 0 || t.firstSendNs < firstSendNs)) firstSendNs = t.firstSendNs;
  lastSendNs = std::max(lastSendNs, t.lastSendNs);
  lastDoneNs = std::max(lastDoneNs, t.lastDoneNs);
  maxSendLagNs = std::max(maxSendLagNs, t.maxSendLagNs);
  unsent += t.unsent;
  connectErrors += t.connectErrors;
  timeouts += t.timeouts;
  reconnects += t.reconnects;
}

}  // namespace flowguard::loadgen
