#include "core/slot_hash.h"

#include <doctest/doctest.h>

#include <array>
#include <set>
#include <string>

using flowguard::core::slotHash;

TEST_CASE("slotHash: deterministic, sensitive to every byte and to the length") {
  const std::string key = "bench|k:static:bench-key-0001";
  CHECK(slotHash(key) == slotHash(std::string(key)));
  std::set<uint64_t> seen{slotHash(key)};
  for (size_t i = 0; i < key.size(); ++i) {
    std::string flipped = key;
    flipped[i] ^= 1;
    seen.insert(slotHash(flipped));
  }
  CHECK(seen.size() == key.size() + 1);
  // A prefix, and the same bytes with a zero appended (the tail word would read the same).
  CHECK(slotHash(key.substr(0, 20)) != slotHash(key.substr(0, 21)));
  CHECK(slotHash(std::string("abc")) != slotHash(std::string("abc\0", 4)));
  CHECK(slotHash("") != slotHash(std::string(1, '\0')));
}

TEST_CASE("slotHash: keys that differ only in a counter spread over 256 slots") {
  // What the caches see: descriptors and keys that share a long prefix.
  std::array<int, 256> load{};
  for (int i = 0; i < 25'600; ++i) ++load[slotHash("listener|ip:10.0.0." + std::to_string(i)) & 255];
  for (int slot = 0; slot < 256; ++slot) {
    CAPTURE(slot);
    CHECK(load[slot] > 50);  // 100 on average
    CHECK(load[slot] < 160);
  }
}
