// Per-thread free lists for the memory a request takes and gives back: the filter chain,
// its filters and their lists, and connections' read buffers. After warm-up a request reuses
// blocks the requests before it gave back, instead of calling malloc several times.
//
// Blocks come in power-of-two size classes from 32 bytes to 64 KiB (larger requests go to
// malloc). A freed block goes on the free list of the thread that frees it, which only that
// thread touches, so nothing is locked; each list keeps at most kKeepPerClass blocks (and at
// most 1 MiB) and frees the rest, so a burst does not pin its peak memory (idle connections still hold no
// read buffer). Built with AddressSanitizer, every block goes straight to malloc and free,
// so use-after-free is still caught.
#pragma once

#include <cstddef>
#include <new>

namespace flowguard::core::recycler {

inline constexpr size_t kKeepPerClass = 256;

void* allocate(size_t bytes);
void deallocate(void* block, size_t bytes) noexcept;
// Blocks on this thread's free lists, and whether blocks are recycled at all (not under
// AddressSanitizer); for tests.
size_t cachedBlocks();
bool enabled();

}  // namespace flowguard::core::recycler

namespace flowguard::core {

// Gives a class recycled storage: `new T` and `delete` through a base pointer (whose
// virtual destructor passes the real size) go to the recycler.
struct Recycled {
  static void* operator new(size_t bytes) { return recycler::allocate(bytes); }
  static void operator delete(void* block, size_t bytes) noexcept { recycler::deallocate(block, bytes); }
};

// The same for containers: std::vector<T, RecyclingAllocator<T>>.
template <class T>
struct RecyclingAllocator {
  using value_type = T;
  RecyclingAllocator() = default;
  template <class U>
  RecyclingAllocator(const RecyclingAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(recycler::allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { recycler::deallocate(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const RecyclingAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace flowguard::core
