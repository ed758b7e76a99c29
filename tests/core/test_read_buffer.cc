#include "core/read_buffer.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <string_view>

using flowguard::core::ReadBuffer;

namespace {

// Appends `bytes` as one read would.
void receive(ReadBuffer& buffer, std::string_view bytes) {
  std::span<char> space = buffer.writable();
  REQUIRE(space.size() >= bytes.size());
  std::memcpy(space.data(), bytes.data(), bytes.size());
  buffer.commit(bytes.size());
}

std::string unparsed(const ReadBuffer& buffer) {
  return std::string(buffer.data(), buffer.size());
}

}  // namespace

TEST_CASE("read buffer: holds no memory until a read needs it, and none once emptied") {
  ReadBuffer buffer(1024, 4096, 256);
  CHECK(buffer.capacity() == 0);
  CHECK(buffer.empty());
  CHECK(buffer.data() != nullptr);  // parsers may be handed data() with a length of 0

  receive(buffer, "GET / HTTP/1.1\r\n");
  CHECK(buffer.capacity() == 1024);
  CHECK(unparsed(buffer) == "GET / HTTP/1.1\r\n");

  buffer.consume(4);
  buffer.releaseIfEmpty();  // bytes are left: kept
  CHECK(buffer.capacity() == 1024);
  CHECK(unparsed(buffer) == "/ HTTP/1.1\r\n");

  buffer.consume(buffer.size());
  buffer.releaseIfEmpty();
  CHECK(buffer.capacity() == 0);
  CHECK(buffer.size() == 0);

  receive(buffer, "next");  // allocates again, from the start
  CHECK(buffer.capacity() == 1024);
  CHECK(unparsed(buffer) == "next");
}

TEST_CASE("read buffer: unparsed bytes move to the front before the buffer grows") {
  ReadBuffer buffer(1024, 4096, 256);
  receive(buffer, std::string(900, 'a'));
  buffer.consume(850);
  receive(buffer, "bc");  // 124 bytes of room at the end: below 256, so the 50 'a's move
  CHECK(buffer.capacity() == 1024);
  CHECK(unparsed(buffer) == std::string(50, 'a') + "bc");
  CHECK(buffer.writable().size() == 1024 - 52);
}

TEST_CASE("read buffer: grows once to its maximum, keeping the unparsed bytes; then full") {
  ReadBuffer buffer(1024, 4096, 256);
  std::string head(900, 'h');
  receive(buffer, head);  // nothing consumed: a long head still arriving
  std::span<char> space = buffer.writable();
  CHECK(buffer.capacity() == 4096);
  CHECK(space.size() == 4096 - 900);
  CHECK(unparsed(buffer) == head);

  receive(buffer, std::string(3000, 'x'));
  CHECK(buffer.size() == 3900);
  CHECK(buffer.full());  // fewer than 256 bytes of room and no larger size to grow to
  buffer.consume(100);   // parsed: a read of at least 256 bytes fits again, after a move
  CHECK_FALSE(buffer.full());
}

TEST_CASE("read buffer: an empty buffer starts over at the front") {
  ReadBuffer buffer(1024, 1024, 256);
  receive(buffer, std::string(1000, 'a'));
  buffer.consume(1000);
  CHECK(buffer.writable().size() == 1024);  // kept (not released), and all of it is room again
}
