// The API keys one worker's auth filter accepted lately, by their plaintext, so that a key
// seen before costs a short hash and a constant-time compare instead of a SHA-256 (2.3k
// instructions, most of what auth cost per request).
//
// A direct-mapped table: a key has one slot, chosen by its hash, and a new key takes the
// slot over. There are no chains to walk, so no set of keys can make a lookup slow, and
// only keys the registry knew are entered: a client sending made-up keys pays the SHA-256
// every time, as before, and cannot evict anything. An entry is valid for one `epoch`,
// which the owner advances whenever a key registry publishes (a key issued or revoked, a
// reload): a revoked key is never served from here.
//
// The plaintext sits in this worker's memory while cached, as it does in the request
// buffers it came from; it is compared in constant time (as CRYPTO_memcmp does), so how
// long a compare takes does not tell how much of a guess was right.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "filters/key_registry.h"

namespace flowguard::filters {

class RecentKeys {
 public:
  static constexpr size_t kSlots = 256;  // a power of two; ~20 KiB per worker when full

  // The record cached for `key` in this epoch, or null.
  const std::shared_ptr<const ApiKeyRecord>* find(std::string_view key, uint64_t epoch) const;
  // Caches a key the registry knew.
  void remember(std::string_view key, uint64_t epoch, std::shared_ptr<const ApiKeyRecord> record);
  // The slot a key has (core::slotHash).
  static size_t slotOf(std::string_view key);

 private:
  struct Entry {
    std::string key;
    uint64_t epoch = 0;  // 0: empty (epochs start at 1)
    std::shared_ptr<const ApiKeyRecord> record;
  };
  std::unique_ptr<Entry[]> entries_;  // allocated by the first remember()
};

}  // namespace flowguard::filters
