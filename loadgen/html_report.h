// --html FILE: a self-contained report (no scripts, no external files) with two inline SVG
// charts: requests/s and p99 per second over the run, and the latency-by-percentile curve
// (corrected and uncorrected) on HdrHistogram's 1/(1-p) axis.
#pragma once

#include <string>
#include <vector>

#include "loadgen/live_monitor.h"
#include "loadgen/options.h"
#include "loadgen/report.h"
#include "loadgen/run_stats.h"

namespace flowguard::loadgen {

std::string htmlReport(const Options& options, const RunTotals& totals, const RunFigures& figures,
                       const std::vector<IntervalSample>& seconds);

}  // namespace flowguard::loadgen
