// flowguard-loadgen: an HTTP/1.1 load generator for FlowGuard that knows about API keys and
// 429s and whose latency figures are not fooled by coordinated omission. See options.cc for
// the flags and worker.h for how requests are scheduled.
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "loadgen/address.h"
#include "loadgen/html_report.h"
#include "loadgen/key_prefix.h"
#include "loadgen/live_monitor.h"
#include "loadgen/options.h"
#include "loadgen/register_keys.h"
#include "loadgen/report.h"
#include "loadgen/request_builder.h"
#include "loadgen/response_log.h"
#include "loadgen/run_stats.h"
#include "loadgen/worker.h"

namespace {

using namespace flowguard::loadgen;

volatile std::sig_atomic_t gInterrupted = 0;

void onInterrupt(int) {
  gInterrupted = 1;
}

// Connections need a moment to open before the schedule starts; requests due meanwhile would
// only measure the connect.
constexpr uint64_t kStartDelayNs = 50'000'000;

struct Schedule {
  uint64_t startNs = 0;
  uint64_t measureStartNs = 0;
  uint64_t endNs = 0;  // duration mode only
};

std::vector<WorkerPlan> makePlans(const Options& options, const sockaddr_storage& address,
                                  const std::vector<std::string>& requests, ResponseLog* responseLog,
                                  Schedule& schedule) {
  schedule.startNs = uv_hrtime() + kStartDelayNs;
  uint64_t firstMeasured = 0;
  if (options.rate > 0) {
    // Open loop: warm-up is the first ceil(warmup * R) requests of the global schedule.
    firstMeasured = static_cast<uint64_t>(std::ceil(options.warmupS * options.rate));
    schedule.measureStartNs =
        schedule.startNs +
        static_cast<uint64_t>(std::llround(static_cast<double>(firstMeasured) * 1e9 / options.rate));
  } else {
    schedule.measureStartNs = schedule.startNs + static_cast<uint64_t>(options.warmupS * 1e9);
  }
  if (!options.requests)
    schedule.endNs = schedule.measureStartNs + static_cast<uint64_t>(options.durationS * 1e9);

  std::vector<WorkerPlan> plans(options.threads);
  for (unsigned i = 0; i < options.threads; ++i) {
    WorkerPlan& p = plans[i];
    p.index = i;
    p.threads = options.threads;
    p.connections =
        options.connections / options.threads + (i < options.connections % options.threads ? 1 : 0);
    p.address = address;
    p.startNs = schedule.startNs;
    p.measureStartNs = schedule.measureStartNs;
    p.endNs = schedule.endNs;
    p.rate = options.rate;
    p.firstMeasuredIndex = firstMeasured;
    if (options.requests) {
      uint64_t n = *options.requests;
      if (options.rate > 0) {
        p.endIndex = firstMeasured + n;
      } else {
        p.budget = n / options.threads + (i < n % options.threads ? 1 : 0);
      }
    }
    p.timeoutNs = static_cast<uint64_t>(options.timeoutS * 1e9);
    p.headRequests = options.method == "HEAD";
    p.requests = &requests;
    p.keyDist = options.keyDist;
    p.zipfExponent = options.zipfExponent;
    p.keyCount = options.keys.size();
    p.responseLog = responseLog;
  }
  return plans;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (auto code = parseOptions(argc, argv, options)) return *code;

  sockaddr_storage address{};
  try {
    address = resolveAddress(options.target.host, options.target.port);
    if (options.registerCount > 0) {
      auto keys = registerKeys(address, options.target, options.registerCount, options.timeoutS);
      options.keys.insert(options.keys.end(), keys.begin(), keys.end());
      std::cerr << "registered " << keys.size() << " keys\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "flowguard-loadgen: " << e.what() << "\n";
    return 1;
  }
  std::vector<std::string> requests = buildRequests(options);

  std::ofstream log;
  if (!options.logPath.empty()) {
    log.open(options.logPath, std::ios::trunc);
    if (!log) {
      std::cerr << "flowguard-loadgen: cannot write " << options.logPath << "\n";
      return 2;
    }
  }
  std::unique_ptr<ResponseLog> responseLog;
  if (!options.responseLogPath.empty()) {
    std::vector<std::string> prefixes;
    for (const std::string& key : options.keys) prefixes.push_back(keyPrefix(key));
    try {
      responseLog = std::make_unique<ResponseLog>(options.responseLogPath, options.url, std::move(prefixes));
    } catch (const std::exception& e) {
      std::cerr << "flowguard-loadgen: " << e.what() << "\n";
      return 2;
    }
  }

  struct sigaction action {};
  action.sa_handler = onInterrupt;
  action.sa_flags = SA_RESETHAND;  // a second Ctrl-C ends the program at once
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  Schedule schedule;
  std::vector<WorkerPlan> plans = makePlans(options, address, requests, responseLog.get(), schedule);
  std::vector<std::unique_ptr<ThreadStats>> stats;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<const ThreadStats*> statsView;
  for (WorkerPlan& plan : plans) {
    stats.push_back(std::make_unique<ThreadStats>(options.keys.size()));
    statsView.push_back(stats.back().get());
    workers.push_back(std::make_unique<Worker>(plan, *stats.back()));
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([worker = w.get()] { worker->run(); });

  // The main thread only watches: a line per second for --log and for stdout. In config mode
  // stdout gets the same plain line, even when it is no terminal (ratelimit.log holds the
  // responses, so the run's pace has to show somewhere); otherwise a terminal gets a progress
  // line rewritten in place.
  bool linesOnStdout = !options.quiet && options.configMode;
  bool progress = !options.quiet && !options.configMode && isatty(STDOUT_FILENO);
  auto writeSecond = [&](const IntervalSample& s) {
    std::string line = LiveMonitor::logLine(s);
    if (log.is_open()) log << line << "\n" << std::flush;
    if (linesOnStdout) std::cout << line << "\n" << std::flush;
  };
  LiveMonitor monitor(statsView, schedule.measureStartNs);
  uint64_t nextSampleNs = schedule.measureStartNs + 1'000'000'000;
  std::vector<IntervalSample> seconds;  // for --html
  bool stopSent = false;
  auto allDone = [&] {
    for (auto& w : workers) {
      if (!w->done()) return false;
    }
    return true;
  };
  while (!allDone()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (gInterrupted && !stopSent) {
      for (auto& w : workers) w->stop();
      stopSent =
          std::all_of(workers.begin(), workers.end(), [](auto& w) { return w->running() || w->done(); });
    }
    uint64_t now = uv_hrtime();
    if (now >= nextSampleNs) {
      nextSampleNs += 1'000'000'000;
      IntervalSample s = monitor.sample(now);
      seconds.push_back(s);
      writeSecond(s);
      if (progress) std::cout << "\r\033[K" << LiveMonitor::progressLine(s) << std::flush;
    }
  }
  for (auto& t : threads) t.join();
  uint64_t endNs = uv_hrtime();
  if (progress) std::cout << "\r\033[K";

  RunTotals totals(options.keys.size());
  for (auto& s : stats) totals.add(*s);
  // The last, partial second, so the log adds up to the totals.
  IntervalSample last = monitor.sample(std::max(endNs, schedule.measureStartNs));
  if (last.requests > 0) {
    seconds.push_back(last);
    writeSecond(last);
  }

  RunFigures figures = computeFigures(options, totals, schedule.measureStartNs, endNs);
  std::cout << formatSummary(options, totals, figures);
  if (responseLog) {
    // Every worker flushed its last lines before it finished; the summary closes the file.
    if (!responseLog->finish(totals)) {
      std::cerr << "flowguard-loadgen: cannot write " << options.responseLogPath << "\n";
      return 2;
    }
    std::cout << "Response log: " << options.responseLogPath << "\n";
  }
  if (auto warning = rateWarning(options, totals, figures)) std::cerr << *warning << "\n";
  if (!options.jsonPath.empty()) {
    std::ofstream json(options.jsonPath, std::ios::trunc);
    json << summaryJson(options, totals, figures).dump(2) << "\n";
    if (!json) {
      std::cerr << "flowguard-loadgen: cannot write " << options.jsonPath << "\n";
      return 2;
    }
  }
  if (!options.htmlPath.empty()) {
    std::ofstream html(options.htmlPath, std::ios::trunc);
    html << htmlReport(options, totals, figures, seconds);
    if (!html) {
      std::cerr << "flowguard-loadgen: cannot write " << options.htmlPath << "\n";
      return 2;
    }
  }
  if (totals.responses() == 0) {
    std::cerr << "flowguard-loadgen: no response from " << options.url << " (target unreachable?)\n";
    return 1;
  }
  return 0;
}
