#include "filters/recent_keys.h"

#include <openssl/crypto.h>

#include "core/slot_hash.h"

namespace flowguard::filters {

size_t RecentKeys::slotOf(std::string_view key) {
  return core::slotHash(key) & (kSlots - 1);
}

const std::shared_ptr<const ApiKeyRecord>* RecentKeys::find(std::string_view key, uint64_t epoch) const {
  if (!entries_) return nullptr;
  const Entry& entry = entries_[slotOf(key)];
  if (entry.epoch != epoch || entry.key.size() != key.size()) return nullptr;
  if (CRYPTO_memcmp(entry.key.data(), key.data(), key.size()) != 0) return nullptr;
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
