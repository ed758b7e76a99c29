// Spreads requests across API keys: round-robin, uniform at random, or Zipf (key i chosen
// with probability proportional to 1 / (i+1)^S, so a few keys are hot, as real tenants are).
// One picker per worker thread; not thread-safe.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "loadgen/options.h"

namespace flowguard::loadgen {

class KeyPicker {
 public:
  // keyCount 0: next() always answers -1 (no key). `first` offsets round-robin so that
  // threads do not all start on key 0.
  KeyPicker(KeyDist dist, double zipfExponent, size_t keyCount, uint64_t seed, size_t first = 0);
  int next();

 private:
  KeyDist dist_;
  size_t keyCount_;
  size_t cursor_;
  std::mt19937_64 rng_;
  std::vector<double> cdf_;  // Zipf only: cumulative probabilities, last one 1.0
};

}  // namespace flowguard::loadgen
