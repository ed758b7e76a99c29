// What one worker thread measured, and the merge of all of them.
//
// Each worker owns one ThreadStats and is its only writer. The counters the main thread reads
// every second (status mix, bytes, the live latency histogram) are single-writer atomics, so
// the live log needs no lock; everything else is read only after the worker has been joined.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>
#include <vector>

#include "loadgen/latency_histogram.h"

namespace flowguard::loadgen {

enum class Outcome : uint8_t { S2xx, S3xx, S429, S4xx, S5xx, Error, kCount };
constexpr size_t kOutcomes = static_cast<size_t>(Outcome::kCount);

// Status 0 means no HTTP response (socket error, timeout, malformed response).
Outcome classify(int status);
std::string_view outcomeName(Outcome outcome);  // "2xx", "3xx", "429", "4xx", "5xx", "error"

struct KeyCounts {
  std::array<uint64_t, kOutcomes> outcomes{};
  uint64_t total() const;
};

// Statuses above 599 are counted as 599 (the parser rejects > 999; such servers are broken).
constexpr int kMaxStatus = 600;

struct ThreadStats {
  explicit ThreadStats(size_t keyCount);

  // One finished measured request. `status` 0 = error; latencies in µs.
  void record(int status, uint64_t correctedUs, uint64_t uncorrectedUs, int keyIndex);
  void addBytes(uint64_t n) {
    bytesRead.store(bytesRead.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  // Per outcome class: [0] corrected (from the due time), [1] uncorrected (from the send).
  std::array<std::array<LatencyHistogram, 2>, kOutcomes> latency;
  LatencyHistogram liveAll;  // corrected, every outcome: read live for the per-second p99
  std::array<std::atomic<uint64_t>, kMaxStatus> statusCounts{};  // index 0: errors
  std::atomic<uint64_t> bytesRead{0};
  std::atomic<uint64_t> completed{0};
  std::vector<KeyCounts> perKey;

  // Open loop bookkeeping (written by the worker, read after join).
  uint64_t sent = 0;         // measured requests written
  uint64_t firstSendNs = 0;  // uv_hrtime of the first measured send (0: none)
  uint64_t lastSendNs = 0;
  uint64_t lastDoneNs = 0;    // completion of the last measured request
  uint64_t maxSendLagNs = 0;  // how late the worst request was sent after its due time
  uint64_t unsent = 0;        // due within the run but never sent (the rate was not held)
  uint64_t connectErrors = 0;
  uint64_t timeouts = 0;
  uint64_t reconnects = 0;
};

// The merge of every ThreadStats after the run, plus what the main thread measured.
struct RunTotals {
  explicit RunTotals(size_t keyCount) : perKey(keyCount) {}
  void add(const ThreadStats& t);

  std::array<std::array<LatencyHistogram, 2>, kOutcomes> latency;
  LatencyHistogram allCorrected;
  LatencyHistogram allUncorrected;
  std::array<uint64_t, kMaxStatus> statusCounts{};
  std::vector<KeyCounts> perKey;
  uint64_t bytesRead = 0;
  uint64_t completed = 0;
  uint64_t sent = 0;
  uint64_t firstSendNs = 0;
  uint64_t lastSendNs = 0;
  uint64_t lastDoneNs = 0;
  uint64_t maxSendLagNs = 0;
  uint64_t unsent = 0;
  uint64_t connectErrors = 0;
  uint64_t timeouts = 0;
  uint64_t reconnects = 0;

  uint64_t outcomeCount(Outcome o) const { return latency[static_cast<size_t>(o)][0].count(); }
  uint64_t responses() const { return completed - outcomeCount(Outcome::Error); }
};

}  // namespace flowguard::loadgen
