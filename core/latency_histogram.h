// A latency histogram with fixed buckets: recording is one atomic add and never allocates;
// readers on any thread sum the buckets and read percentiles from the sums.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace flowguard::core {

// Log-linear histogram of microseconds: 8 sub-buckets per power of two, so a percentile
// read from it is within 12.5 % of the true value. Fixed size: recording never allocates.
class LatencyHistogram {
 public:
  static constexpr int kSubBuckets = 8;
  static constexpr int kBuckets = 62 * kSubBuckets;  // exponents 3..63, plus 0..7 exactly

  // One writer per histogram (a worker's own): a plain load and store, no locked instruction.
  void record(uint64_t micros);
  // Several writers (a host shared by every worker).
  void recordShared(uint64_t micros);
  uint64_t count() const;
  // Sum of everything recorded, in microseconds (Prometheus wants it next to the buckets).
  uint64_t sum() const { return sum_.load(std::memory_order_relaxed); }
  // Upper bound of the bucket holding the q-quantile (0 < q <= 1), in microseconds; 0 if empty.
  uint64_t percentile(double q) const;
  void addTo(std::array<uint64_t, kBuckets>& sums) const;
  static uint64_t percentileOf(const std::array<uint64_t, kBuckets>& sums, double q);
  static int bucketOf(uint64_t micros);
  static uint64_t upperBound(int bucket);

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> sum_{0};
};

}  // namespace flowguard::core
