// doctest's main, plus the skip report of tests/test_skip.h: when any test case called
// skipTest() and nothing failed, the executable exits kSkipExitCode (ctest: "Skipped"),
// listing what was skipped and how many cases ran in full. A failure wins over a skip.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "tests/test_skip.h"

namespace {

struct SkipLog {
  std::mutex mutex;
  std::string currentCase;
  int casesStarted = 0;
  std::vector<std::pair<std::string, std::string>> skips;  // test case, reason
};

SkipLog& skipLog() {
  static SkipLog log;
  return log;
}

// Only notes which test case is running; reports nothing itself.
struct CaseTracker : doctest::IReporter {
  explicit CaseTracker(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData& data) override {
    std::lock_guard lock(skipLog().mutex);
    skipLog().currentCase = data.m_name;
    ++skipLog().casesStarted;
  }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

}  // namespace

REGISTER_LISTENER("flowguard_case_tracker", 1, CaseTracker);

namespace flowguard::test {

void skipTest(std::string_view reason) {
  std::lock_guard lock(skipLog().mutex);
  skipLog().skips.emplace_back(skipLog().currentCase, std::string(reason));
  std::printf("SKIPPED in \"%s\": %.*s\n", skipLog().currentCase.c_str(), static_cast<int>(reason.size()),
              reason.data());
  std::fflush(stdout);
}

}  // namespace flowguard::test

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int result = context.run();
  if (context.shouldExit() || result != 0) return result;
  SkipLog& log = skipLog();
  std::lock_guard lock(log.mutex);
  if (log.skips.empty()) return 0;
  std::vector<std::string> casesWithSkips;
  for (const auto& skip : log.skips) {
    if (casesWithSkips.empty() || casesWithSkips.back() != skip.first) casesWithSkips.push_back(skip.first);
  }
  std::printf("\nSKIPPED: %zu of %d test case(s) skipped all or part of their checks (the others passed):\n",
              casesWithSkips.size(), log.casesStarted);
  for (const auto& [testCase, reason] : log.skips)
    std::printf("  \"%s\": %s\n", testCase.c_str(), reason.c_str());
  std::printf("exit %d: ctest reports this test as skipped, not passed\n", flowguard::test::kSkipExitCode);
  std::fflush(stdout);
  return flowguard::test::kSkipExitCode;
}
