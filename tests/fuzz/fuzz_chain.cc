// libFuzzer entry point; the body lives in fuzz_bodies.cc so the normal build replays it.
#include "tests/fuzz/fuzz_bodies.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  flowguard::fuzz::fuzzFilterChain(data, size);
  return 0;
}
