#include "loadgen/latency_histogram.h"

#include <algorithm>
#include <bit>

namespace flowguard::loadgen {

namespace {

// HdrHistogram's index math with unit magnitude 0 (the lowest value is 1 µs): bucket b holds
// 1024 sub-buckets of width 2^b; bucket 0 additionally holds the exact values 0..1023.
int bucketIndexOf(uint64_t v) {
  return 63 - std::countl_zero(v | (LatencyHistogram::kSubBucketCount - 1)) -
         LatencyHistogram::kSubBucketHalfCountMagnitude;
}

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(new std::atomic<uint64_t>[kCountsLen]) {
  reset();
}

LatencyHistogram::LatencyHistogram(const LatencyHistogram& other) : LatencyHistogram() {
  merge(other);
}

LatencyHistogram& LatencyHistogram::operator=(const LatencyHistogram& other) {
  if (this != &other) {
    reset();
    merge(other);
  }
  return *this;
}

uint64_t LatencyHistogram::clampToRange(uint64_t micros) {
  return std::clamp(micros, kLowest, kHighest);
}

size_t LatencyHistogram::indexOf(uint64_t v) {
  int bucket = bucketIndexOf(v);
  uint64_t subBucket = v >> bucket;
  return (static_cast<size_t>(bucket + 1) << kSubBucketHalfCountMagnitude) +
         (subBucket - kSubBucketHalfCount);
}

uint64_t LatencyHistogram::valueFromIndex(size_t index) {
  int bucket = static_cast<int>(index >> kSubBucketHalfCountMagnitude) - 1;
  uint64_t subBucket = (index & (kSubBucketHalfCount - 1)) + kSubBucketHalfCount;
  if (bucket < 0) {
    subBucket -= kSubBucketHalfCount;
    bucket = 0;
  }
  return subBucket << bucket;
}

uint64_t LatencyHistogram::lowestEquivalent(uint64_t micros) {
  return valueFromIndex(indexOf(clampToRange(micros)));
}

uint64_t LatencyHistogram::highestEquivalent(uint64_t micros) {
  uint64_t v = clampToRange(micros);
  return lowestEquivalent(v) + (uint64_t{1} << bucketIndexOf(v)) - 1;
}

void LatencyHistogram::recordCount(uint64_t micros, uint64_t count) {
  uint64_t v = clampToRange(micros);
  std::atomic<uint64_t>& slot = counts_[indexOf(v)];
  store(slot, load(slot) + count);
  store(total_, load(total_) + count);
  store(sum_, load(sum_) + v * count);
  if (v < load(min_)) store(min_, v);
  if (v > load(max_)) store(max_, v);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kCountsLen; ++i) {
    uint64_t c = load(other.counts_[i]);
    if (c != 0) store(counts_[i], load(counts_[i]) + c);
  }
  store(total_, load(total_) + other.count());
  store(sum_, load(sum_) + load(other.sum_));
  if (other.count() > 0) {
    store(min_, std::min(load(min_), load(other.min_)));
    store(max_, std::max(load(max_), load(other.max_)));
  }
}

void LatencyHistogram::subtract(const LatencyHistogram& earlier) {
  uint64_t total = 0;
  for (size_t i = 0; i < kCountsLen; ++i) {
    uint64_t mine = load(counts_[i]);
    uint64_t theirs = std::min(mine, load(earlier.counts_[i]));
    store(counts_[i], mine - theirs);
    total += mine - theirs;
  }
  store(total_, total);
  store(sum_, load(sum_) - std::min(load(sum_), load(earlier.sum_)));
  recomputeMinMax();
}

void LatencyHistogram::recomputeMinMax() {
  store(min_, UINT64_MAX);
  store(max_, 0);
  for (size_t i = 0; i < kCountsLen; ++i) {
    if (load(counts_[i]) == 0) continue;
    uint64_t low = valueFromIndex(i);
    if (load(min_) == UINT64_MAX) store(min_, low);
    store(max_, highestEquivalent(low));
  }
}

void LatencyHistogram::reset() {
  for (size_t i = 0; i < kCountsLen; ++i) store(counts_[i], 0);
  store(total_, 0);
  store(sum_, 0);
  store(min_, UINT64_MAX);
  store(max_, 0);
}

uint64_t LatencyHistogram::min() const {
  return count() == 0 ? 0 : load(min_);
}

double LatencyHistogram::mean() const {
  uint64_t n = count();
  return n == 0 ? 0.0 : static_cast<double>(load(sum_)) / static_cast<double>(n);
}

uint64_t LatencyHistogram::valueAtPercentile(double percentile) const {
  uint64_t total = count();
  if (total == 0) return 0;
  double requested = std::clamp(percentile, 0.0, 100.0);
  // HdrHistogram's rule: the smallest value whose cumulative count reaches p % of the total
  // (rounded to the nearest count, at least 1).
  auto target = static_cast<uint64_t>(requested / 100.0 * static_cast<double>(total) + 0.5);
  target = std::max<uint64_t>(target, 1);
  uint64_t seen = 0;
  for (size_t i = 0; i < kCountsLen; ++i) {
    seen += load(counts_[i]);
    if (seen >= target) return std::min(highestEquivalent(valueFromIndex(i)), max());
  }
  return max();
}

uint64_t LatencyHistogram::countAtValue(uint64_t micros) const {
  return load(counts_[indexOf(clampToRange(micros))]);
}

}  // namespace flowguard::loadgen
