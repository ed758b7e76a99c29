// Replays every seed (corpus/<target>/) and every saved crash input (regressions/<target>/)
// through the fuzz bodies, so the normal build, without clang or libFuzzer, keeps checking
// the invariants the fuzzers check and keeps every crash once found fixed.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_bodies.h"

namespace fs = std::filesystem;
using flowguard::fuzz::FuzzInvariantError;
using flowguard::fuzz::FuzzTarget;
using flowguard::fuzz::kFuzzTargets;

namespace {

std::vector<fs::path> filesIn(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::is_directory(dir)) return files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    // README files and the like describe a folder; inputs have no extension.
    if (e.is_regular_file() && !e.path().has_extension()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string readAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot read " << path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// tests/fuzz in the source tree; ctest sets FLOWGUARD_SOURCE_DIR for every test.
fs::path fuzzDir() {
  const char* source = std::getenv("FLOWGUARD_SOURCE_DIR");
  REQUIRE_MESSAGE(source, "FLOWGUARD_SOURCE_DIR is not set (run through ctest)");
  return fs::path(source) / "tests" / "fuzz";
}

size_t replay(const FuzzTarget& target, const fs::path& dir) {
  size_t count = 0;
  for (const fs::path& file : filesIn(dir)) {
    const std::string bytes = readAll(file);
    INFO("input: " << file.string());
    CHECK_NOTHROW(target.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    ++count;
  }
  return count;
}

}  // namespace

TEST_CASE("fuzz seed corpora pass every invariant") {
  for (const FuzzTarget& target : kFuzzTargets) {
    INFO("target: " << target.name);
    const size_t count = replay(target, fuzzDir() / "corpus" / target.name);
    // An empty or missing corpus would make this test pass without checking anything.
    CHECK(count >= 5);
  }
}

TEST_CASE("saved fuzz crash inputs stay fixed") {
  for (const FuzzTarget& target : kFuzzTargets) {
    INFO("target: " << target.name);
    replay(target, fuzzDir() / "regressions" / target.name);
  }
}
