#include "filters/recent_keys.h"

#include <cstdint>
#include <cstring>

#include "core/slot_hash.h"

namespace flowguard::filters {

namespace {

// True when the n bytes match. Constant-time in what they hold (every byte is looked at, no
// early exit), as CRYPTO_memcmp, but eight bytes a step: OpenSSL's goes byte by byte.
bool sameBytesConstantTime(const char* a, const char* b, size_t n) {
  uint64_t diff = 0;
  for (; n >= 8; a += 8, b += 8, n -= 8) {
    uint64_t wa, wb;
    std::memcpy(&wa, a, 8);
    std::memcpy(&wb, b, 8);
    diff |= wa ^ wb;
  }
  for (size_t i = 0; i < n; ++i) diff |= static_cast<uint64_t>(static_cast<unsigned char>(a[i] ^ b[i]));
  return diff == 0;
}

}  // namespace

size_t RecentKeys::slotOf(std::string_view key) {
  return core::slotHash(key) & (kSlots - 1);
}

const std::shared_ptr<const ApiKeyRecord>* RecentKeys::find(std::string_view key, uint64_t epoch) const {
  if (!entries_) return nullptr;
  const Entry& entry = entries_[slotOf(key)];
  if (entry.epoch != epoch || entry.key.size() != key.size()) return nullptr;
  if (!sameBytesConstantTime(entry.key.data(), key.data(), key.size())) return nullptr;
  return &entry.record;
}

void RecentKeys::remember(std::string_view key, uint64_t epoch, std::shared_ptr<const ApiKeyRecord> record) {
  if (!entries_) entries_ = std::make_unique<Entry[]>(kSlots);
  Entry& entry = entries_[slotOf(key)];
  entry.key.assign(key);
  entry.epoch = epoch;
  entry.record = std::move(record);
}

}  // namespace flowguard::filters
