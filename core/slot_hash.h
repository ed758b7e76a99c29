// A fast, non-cryptographic string hash for the per-worker direct-mapped caches (the auth
// filter's RecentKeys, the rate limiter's store View): a slot is picked once per request, and
// std::hash (MurmurHash, byte-careful) cost more than the lookup it served. Eight bytes per
// step, a multiply-xorshift mix, and a final avalanche so the low bits (the slot) depend on
// every input byte. Not for chained hash tables exposed to chosen keys: those need a seed.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace flowguard::core {

inline uint64_t slotHash(std::string_view s) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  auto mix = [](uint64_t h, uint64_t word) {
    h = (h ^ word) * kMul;
    return h ^ (h >> 29);
  };
  uint64_t h = static_cast<uint64_t>(s.size()) * kMul;
  const char* p = s.data();
  size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    h = mix(h, word);
  }
  if (n > 0) {
    uint64_t word = 0;
    for (size_t i = 0; i < n; ++i) word |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    h = mix(h, word);
  }
  h ^= h >> 32;
  h *= kMul;
  return h ^ (h >> 31);
}

}  // namespace flowguard::core
