#include "core/recycler.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdlib>

namespace flowguard::core::recycler {

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRecycle = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kRecycle = false;
#else
constexpr bool kRecycle = true;
#endif
#else
constexpr bool kRecycle = true;
#endif

constexpr size_t kMinShift = 5;   // 32 bytes
constexpr size_t kMaxShift = 16;  // 64 KiB
constexpr size_t kClasses = kMaxShift - kMinShift + 1;

struct FreeBlock {
  FreeBlock* next;
};

struct FreeList {
  FreeBlock* head = nullptr;
  size_t length = 0;
};

// One set per thread; the blocks left on it when the thread ends are freed then.
struct ThreadLists {
  std::array<FreeList, kClasses> lists{};
  bool alive = true;  // false once the thread's exit destroyed it: blocks go to free() then
  ~ThreadLists() {
    alive = false;
    for (FreeList& list : lists) {
      while (list.head != nullptr) {
        FreeBlock* block = list.head;
        list.head = block->next;
        std::free(block);
      }
    }
  }
};

thread_local ThreadLists threadLists;

// How many blocks of class `c` a list keeps: kKeepPerClass, and at most 1 MiB of them.
size_t keepOf(size_t c) {
  size_t bytes = size_t{1} << (c + kMinShift);
  return std::min(kKeepPerClass, (size_t{1} << 20) / bytes);
}

// The class of a block of `bytes`, or kClasses when it is too big for one.
size_t classOf(size_t bytes) {
  if (bytes <= (size_t{1} << kMinShift)) return 0;
  size_t shift = std::bit_width(bytes - 1);
  return shift > kMaxShift ? kClasses : shift - kMinShift;
}

}  // namespace

void* allocate(size_t bytes) {
  size_t c = classOf(bytes);
  if (!kRecycle || c == kClasses) {
    void* block = std::malloc(bytes == 0 ? 1 : bytes);
    if (block == nullptr) throw std::bad_alloc();
    return block;
  }
  FreeList& list = threadLists.lists[c];
  // A block of a class always has the class's full size, even when made while this thread
  // exits: another thread may free it onto its list and hand it out again.
  if (list.head != nullptr && threadLists.alive) {
    FreeBlock* block = list.head;
    list.head = block->next;
    --list.length;
    return block;
  }
  void* block = std::malloc(size_t{1} << (c + kMinShift));
  if (block == nullptr) throw std::bad_alloc();
  return block;
}

void deallocate(void* block, size_t bytes) noexcept {
  if (block == nullptr) return;
  size_t c = classOf(bytes);
  if (!kRecycle || c == kClasses || !threadLists.alive) {
    std::free(block);
    return;
  }
  FreeList& list = threadLists.lists[c];
  if (list.length >= keepOf(c)) {
    std::free(block);
    return;
  }
  auto* free = static_cast<FreeBlock*>(block);
  free->next = list.head;
  list.head = free;
  ++list.length;
}

bool enabled() {
  return kRecycle;
}

size_t cachedBlocks() {
  size_t n = 0;
  for (const FreeList& list : threadLists.lists) n += list.length;
  return n;
}

}  // namespace flowguard::core::recycler
