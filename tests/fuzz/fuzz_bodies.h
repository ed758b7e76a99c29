// The bodies of the fuzz targets, shared by the libFuzzer mains (fuzz_<name>.cc, clang only)
// and by test_fuzz_regressions, which replays the seed corpora and every saved crash input in
// the normal build. A broken invariant throws FuzzInvariantError: under libFuzzer the
// uncaught exception aborts (a crash, input saved); under doctest it is a failed test case
// naming the input file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace flowguard::fuzz {

struct FuzzInvariantError : std::logic_error {
  using std::logic_error::logic_error;
};

// Request parser with the gateway's limits (or tight ones), input fed in 1..3 pieces or a byte
// at a time; compared against the same input fed whole. Input: 3 control bytes, then HTTP.
void fuzzRequestParser(const uint8_t* data, size_t size);
// Same for responses; a control bit marks the request as HEAD.
void fuzzResponseParser(const uint8_t* data, size_t size);
// The chunked body decoder: a fixed chunked request head, then the input as the body;
// checked against a reference decoder whenever the parser accepts the body.
void fuzzChunkedDecoder(const uint8_t* data, size_t size);
// config::loadConfigText on the input as flowguard.yaml text.
void fuzzConfigLoader(const uint8_t* data, size_t size);
// The small parsers of outside input; the first byte picks which (see fuzz_bodies.cc).
void fuzzUnits(const uint8_t* data, size_t size);
// The filter chain's phases: scripted filters and events in any order (fuzz_filter_chain.cc).
void fuzzFilterChain(const uint8_t* data, size_t size);

struct FuzzTarget {
  const char* name;  // also the folder under corpus/ and regressions/
  void (*run)(const uint8_t* data, size_t size);
};

inline constexpr FuzzTarget kFuzzTargets[] = {
    {"request", fuzzRequestParser},
    {"response", fuzzResponseParser},
    {"chunked", fuzzChunkedDecoder},
    {"config", fuzzConfigLoader},
    {"units", fuzzUnits},
    {"chain", fuzzFilterChain},
};

}  // namespace flowguard::fuzz
