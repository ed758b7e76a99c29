#include "loadgen/key_picker.h"

#include <algorithm>
#include <cmath>

namespace flowguard::loadgen {

KeyPicker::KeyPicker(KeyDist dist, double zipfExponent, size_t keyCount, uint64_t seed, size_t first)
    : dist_(dist), keyCount_(keyCount), cursor_(keyCount == 0 ? 0 : first % keyCount), rng_(seed) {
  if (dist_ == KeyDist::Zipf && keyCount_ > 0) {
    cdf_.resize(keyCount_);
    double sum = 0;
    for (size_t i = 0; i < keyCount_; ++i) {
      sum += 1.0 / std::pow(static_cast<double>(i + 1), zipfExponent);
      cdf_[i] = sum;
    }
    for (double& c : cdf_) c /= sum;
    cdf_.back() = 1.0;
  }
}

int KeyPicker::next() {
  if (keyCount_ == 0) return -1;
  switch (dist_) {
    case KeyDist::RoundRobin: {
      size_t k = cursor_;
      cursor_ = (cursor_ + 1) % keyCount_;
      return static_cast<int>(k);
    }
    case KeyDist::Uniform:
      return static_cast<int>(std::uniform_int_distribution<size_t>(0, keyCount_ - 1)(rng_));
    case KeyDist::Zipf: {
      double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
      auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
      return static_cast<int>(std::min<size_t>(it - cdf_.begin(), keyCount_ - 1));
    }
  }
  return 0;
}

}  // namespace flowguard::loadgen
