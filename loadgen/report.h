// The end-of-run report: the human summary on stdout and the same figures as JSON.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "loadgen/options.h"
#include "loadgen/run_stats.h"

namespace flowguard::loadgen {

struct RunFigures {
  double elapsedS = 0;  // measurement start to the last measured completion
  double requestsPerSec = 0;
  double bytesPerSec = 0;
  double sendRate = 0;  // open loop: measured sends per second actually achieved
};

RunFigures computeFigures(const Options& options, const RunTotals& totals, uint64_t measureStartNs,
                          uint64_t endNs);

// The warning to print when an open-loop run fell short of --rate (nullopt when it held).
std::optional<std::string> rateWarning(const Options& options, const RunTotals& totals, const RunFigures& f);

std::string formatSummary(const Options& options, const RunTotals& totals, const RunFigures& f);
nlohmann::json summaryJson(const Options& options, const RunTotals& totals, const RunFigures& f);

}  // namespace flowguard::loadgen
