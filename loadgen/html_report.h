// --html FILE: a self-contained report (no scripts, no external files, inline SVG) that shows
// what a rate-limit test is about at a glance: the status mix per second as a stacked chart
// (2xx and 3xx / 429 / other 4xx / 5xx / no response), per key (by prefix) the admitted 2xx
// against the limited 429, and the latency of each outcome class (p50, mean, p99, as bars and
// a table). Then requests/s and p99 per second over the run, the latency-by-percentile curve
// (corrected and uncorrected) on HdrHistogram's 1/(1-p) axis, and the text summary.
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
