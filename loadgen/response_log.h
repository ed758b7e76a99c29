// --response-log FILE (and ratelimit.log in config mode): one line per measured response,
// then the closing summary of the original FlowGuard load tester.
//
//   2025-01-31T12:00:00.123Z key=fg_3kQ9xLm2 url=http://127.0.0.1:8000/echo status=429 latency_ms=0.412
//   ...
//   # summary
//   # total attempts: 60
//   ...
//
// Lines. The time is when the response (or the failure) came, UTC with milliseconds. The key
// is its prefix (key_prefix.h), "-" without keys. The status is "error" when no HTTP response
// came (connect error, reset, timeout, malformed answer). The latency is the one every report
// uses: from the send in closed loop, from the due time under --rate; it is the very value the
// latency histograms record, so the summary's mean is the mean of the lines. Warm-up requests
// are neither logged nor counted, so the lines add up to the summary's total.
//
// Threads. Each worker formats its lines into a buffer of its own and writes it out in chunks
// of about kChunkBytes (a lock per chunk, never per response), and once more when its run
// ends. So within one worker the lines are in completion order, while the chunks of several
// workers interleave: the file is only roughly in time order (`sort ratelimit.log` sorts the
// lines by time, since the ISO-8601 times sort as text, and leaves the summary at the end).
#pragma once

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/run_stats.h"

namespace flowguard::loadgen {

// "2025-01-31T12:00:00.123Z" for nanoseconds since the Unix epoch.
std::string isoTimeUtc(uint64_t unixNs);

// Appends one response line (with its newline) to `out`. `status` 0: no response.
void appendResponseLine(std::string& out, uint64_t unixNs, std::string_view keyPrefix, std::string_view url,
                        int status, uint64_t latencyUs);

// The closing summary, every line starting with "# ": total attempts, successful (2xx),
// rate-limited (429), other errors (everything else: 3xx, other 4xx, 5xx, no response), the
// mean, p50 and p99 latency, and a count per status code.
std::string responseLogSummary(const RunTotals& totals);

class ResponseLog {
 public:
  static constexpr size_t kChunkBytes = 64 * 1024;

  // Creates (truncates) the file. Throws std::runtime_error when it cannot.
  ResponseLog(const std::string& path, std::string url, std::vector<std::string> keyPrefixes);
  ~ResponseLog();
  ResponseLog(const ResponseLog&) = delete;
  ResponseLog& operator=(const ResponseLog&) = delete;

  // A worker thread, no lock: one line into the worker's own `buffer`, which is written out
  // once it holds a chunk. `key` indexes the key prefixes, -1 without keys.
  void add(std::string& buffer, uint64_t unixNs, int key, int status, uint64_t latencyUs) {
    appendResponseLine(buffer, unixNs,
                       key < 0 ? std::string_view("-") : keyPrefixes_[static_cast<size_t>(key)], url_, status,
                       latencyUs);
    if (buffer.size() >= kChunkBytes) flush(buffer);
  }
  // Any thread: writes `buffer` out (under the file's lock) and clears it.
  void flush(std::string& buffer);
  // The main thread, once every worker has flushed: appends the summary and closes the file.
  // False when any write failed.
  bool finish(const RunTotals& totals);

 private:
  std::string url_;
  std::vector<std::string> keyPrefixes_;
  std::mutex mutex_;
  std::FILE* file_ = nullptr;  // guarded by mutex_
  bool failed_ = false;        // guarded by mutex_
};

}  // namespace flowguard::loadgen
