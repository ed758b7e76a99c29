// Skipping honestly. A test that cannot run something here (data that is not installed, a
// check that means nothing under a sanitizer) calls skipTest(reason) and then returns or moves
// on. The test executable (tests/doctest_main.cc) then exits with kSkipExitCode unless
// something failed, and ctest, which every test is registered with SKIP_RETURN_CODE
// kSkipExitCode for, reports it "Skipped" instead of "Passed": a run where part of a test did
// not happen never looks like a full pass. scripts/test fails the normal build when anything is
// skipped there.
#pragma once

#include <string_view>

namespace flowguard::test {

inline constexpr int kSkipExitCode = 77;

// Records that the running test case skipped something, and why (printed at once and again
// in the summary when the executable exits).
void skipTest(std::string_view reason);

}  // namespace flowguard::test
