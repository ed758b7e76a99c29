// HdrHistogram's log-linear latency histogram, written compactly for flowguard-loadgen.
//
// Values are microseconds from 1 µs to 1 hour, kept to 3 significant decimal digits: every
// recorded value lands in a bucket whose width is at most 1/1024 of the value (0.1 %), and
// values below 2048 µs are exact. Memory is fixed (23552 counters, ~184 KiB) and recording is
// O(1) with no allocation, so one histogram per outcome class per thread is cheap.
//
// Threads: one writer. Counters are atomics written with relaxed load+store (plain moves on
// x86, no locked instruction), so another thread may read a live histogram at any time (for the
// once-a-second log and progress line) and see slightly stale but never torn counts. Merging
// and percentile queries on a histogram that is being written give approximate answers;
// the final report merges after every writer has stopped.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace flowguard::loadgen {

class LatencyHistogram {
 public:
  static constexpr uint64_t kLowest = 1;                       // µs
  static constexpr uint64_t kHighest = 3600ULL * 1000 * 1000;  // 1 hour in µs
  static constexpr int kSignificantDigits = 3;

  LatencyHistogram();
  LatencyHistogram(const LatencyHistogram& other);
  LatencyHistogram& operator=(const LatencyHistogram& other);

  // Values outside [kLowest, kHighest] are clamped into it (a 0 µs loopback answer counts
  // as 1 µs, a multi-hour stall as 1 hour); max() keeps the clamped value.
  void record(uint64_t micros) { recordCount(micros, 1); }
  // The value record(micros) actually records (what a per-response log must show so that
  // its lines add up to mean()).
  static uint64_t clampToRange(uint64_t micros);
  void recordCount(uint64_t micros, uint64_t count);
  // Adds every count of `other` (merging threads' histograms).
  void merge(const LatencyHistogram& other);
  // Removes `earlier`'s counts, where `earlier` is an older copy of this same (cumulative)
  // histogram: the result is what was recorded in between. min/max become those of the
  // remaining buckets (bucket precision), sum stays exact.
  void subtract(const LatencyHistogram& earlier);
  void reset();

  uint64_t count() const { return load(total_); }
  uint64_t max() const { return load(max_); }  // exact largest recorded value, 0 if empty
  uint64_t min() const;                        // exact smallest recorded value, 0 if empty
  // Exact: the sum of the recorded (clamped) values over their count, 0 when empty.
  double mean() const;
  // The value at or below which `percentile` % (0..100) of the recorded values fall, as the
  // highest value equivalent to the bucket that holds it (so never below the true value and
  // at most 0.1 % above it). 0 when empty.
  uint64_t valueAtPercentile(double percentile) const;
  // Count of recorded values equivalent to `micros` (same bucket).
  uint64_t countAtValue(uint64_t micros) const;

  // The range of values that share a bucket with `micros`.
  static uint64_t lowestEquivalent(uint64_t micros);
  static uint64_t highestEquivalent(uint64_t micros);

  static constexpr int kSubBucketHalfCountMagnitude = 10;  // ceil(log2(2 * 10^3)) - 1
  static constexpr uint64_t kSubBucketCount = 1ULL << (kSubBucketHalfCountMagnitude + 1);
  static constexpr uint64_t kSubBucketHalfCount = kSubBucketCount / 2;
  static constexpr int kBucketCount = 22;  // 2048 << 21 is the first power past kHighest
  static constexpr size_t kCountsLen = (kBucketCount + 1) * kSubBucketHalfCount;

 private:
  static uint64_t load(const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); }
  static void store(std::atomic<uint64_t>& a, uint64_t v) { a.store(v, std::memory_order_relaxed); }
  static size_t indexOf(uint64_t micros);
  static uint64_t valueFromIndex(size_t index);
  void recomputeMinMax();

  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> total_{0};
  std::atomic<uint64_t> sum_{0};
  std::atomic<uint64_t> min_{UINT64_MAX};
  std::atomic<uint64_t> max_{0};
};

}  // namespace flowguard::loadgen
