// The recycler (core/recycler.h): blocks come back to the thread that freed them, by size
// class, up to a cap; objects and containers use it through Recycled and RecyclingAllocator.
#include "core/recycler.h"

#include <doctest/doctest.h>

#include <memory>
#include <thread>
#include <vector>

using namespace flowguard::core;

namespace {

struct Base : Recycled {
  virtual ~Base() = default;
};
struct Big : Base {
  char payload[200] = {};
};

}  // namespace

TEST_CASE("a freed block is the next one handed out for its size class") {
  if (!recycler::enabled()) return;  // AddressSanitizer build: plain malloc and free
  const size_t before = recycler::cachedBlocks();
  void* a = recycler::allocate(100);
  recycler::deallocate(a, 100);
  CHECK(recycler::cachedBlocks() == before + 1);
  CHECK(recycler::allocate(128) == a);  // 100 and 128 share the 128-byte class
  void* b = recycler::allocate(129);    // the next class up: another block
  CHECK(b != a);
  recycler::deallocate(b, 129);
  recycler::deallocate(a, 128);
  void* small = recycler::allocate(1);  // 32-byte class
  CHECK(small != a);
  recycler::deallocate(small, 1);
}

TEST_CASE("blocks over 64 KiB are not kept, and a class keeps a bounded number") {
  if (!recycler::enabled()) return;
  const size_t before = recycler::cachedBlocks();
  void* huge = recycler::allocate(100 * 1024);
  recycler::deallocate(huge, 100 * 1024);
  CHECK(recycler::cachedBlocks() == before);
  std::vector<void*> blocks;
  for (int i = 0; i < 100; ++i) blocks.push_back(recycler::allocate(64 * 1024));
  for (void* block : blocks) recycler::deallocate(block, 64 * 1024);
  CHECK(recycler::cachedBlocks() == before + 16);  // 1 MiB of 64 KiB blocks
}

TEST_CASE("Recycled objects deleted through a base pointer give back their real size") {
  if (!recycler::enabled()) return;
  std::unique_ptr<Base> big = std::make_unique<Big>();
  void* where = big.get();
  big.reset();
  // sizeof(Big) is over 128: it went back to its own class, and comes out again there.
  auto again = std::make_unique<Big>();
  CHECK(static_cast<void*>(again.get()) == where);
}

TEST_CASE("containers use it through RecyclingAllocator; another thread keeps its own blocks") {
  std::vector<int, RecyclingAllocator<int>> numbers;
  for (int i = 0; i < 1000; ++i) numbers.push_back(i);
  CHECK(numbers[999] == 999);
  if (!recycler::enabled()) return;
  void* block = recycler::allocate(256);
  const size_t before = recycler::cachedBlocks();
  std::thread([block] {
    recycler::deallocate(block, 256);
    CHECK(recycler::cachedBlocks() == 1);  // on this thread's list
  }).join();
  CHECK(recycler::cachedBlocks() == before);  // not on ours; that thread freed it on exit
}
