#include "core/latency_histogram.h"

#include <algorithm>
#include <bit>

namespace flowguard::core {

int LatencyHistogram::bucketOf(uint64_t micros) {
  if (micros < kSubBuckets) return static_cast<int>(micros);
  int exponent = 63 - std::countl_zero(micros);  // micros in [2^e, 2^(e+1))
  int shift = exponent - 3;                      // log2(kSubBuckets) = 3
  int sub = static_cast<int>((micros >> shift) & (kSubBuckets - 1));
  int bucket = (exponent - 2) * kSubBuckets + sub;
  return std::min(bucket, kBuckets - 1);
}

uint64_t LatencyHistogram::upperBound(int bucket) {
  if (bucket < kSubBuckets) return static_cast<uint64_t>(bucket);
  int exponent = bucket / kSubBuckets + 2;
  int sub = bucket % kSubBuckets;
  int shift = exponent - 3;
  return ((static_cast<uint64_t>(kSubBuckets + sub) + 1) << shift) - 1;
}

void LatencyHistogram::record(uint64_t micros) {
  auto& bucket = buckets_[static_cast<size_t>(bucketOf(micros))];
  bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  sum_.store(sum_.load(std::memory_order_relaxed) + micros, std::memory_order_relaxed);
}

void LatencyHistogram::recordShared(uint64_t micros) {
  buckets_[static_cast<size_t>(bucketOf(micros))].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(micros, std::memory_order_relaxed);
}

uint64_t LatencyHistogram::count() const {
  uint64_t n = 0;
  for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
  return n;
}

void LatencyHistogram::addTo(std::array<uint64_t, kBuckets>& sums) const {
  for (size_t i = 0; i < buckets_.size(); ++i) sums[i] += buckets_[i].load(std::memory_order_relaxed);
}

uint64_t LatencyHistogram::percentileOf(const std::array<uint64_t, kBuckets>& sums, double q) {
  uint64_t total = 0;
  for (uint64_t n : sums) total += n;
  if (total == 0) return 0;
  auto rank = static_cast<uint64_t>(q * static_cast<double>(total) + 0.999999);
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < sums.size(); ++i) {
    seen += sums[i];
    if (seen >= rank) return upperBound(static_cast<int>(i));
  }
  return upperBound(kBuckets - 1);
}

uint64_t LatencyHistogram::percentile(double q) const {
  std::array<uint64_t, kBuckets> sums{};
  addTo(sums);
  return percentileOf(sums, q);
}

}  // namespace flowguard::core
