// Counters declared once. Whoever counts something (a plugged filter, a cluster) declares its
// counters in one table, in the order of an enum that names them:
//
//   enum class IpFilterStat { Allowed, Denied };
//   constexpr core::StatDecl kIpFilterStats[] = {
//       {"allowed", "Requests whose client address the filter let through."},
//       {"denied", "Requests refused with 403 for their client address."}};
//
// and counts with stats.add(IpFilterStat::Denied). The admin listener's /stats JSON, its
// Prometheus text and the exit summary are generated from the table; no admin code names
// a counter. One StatSet is shared by every worker (relaxed atomics, no lock) and kept
// across reloads while the filter stays in place.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace flowguard::core {

struct StatDecl {
  std::string_view name;  // snake_case; Prometheus adds the owner's prefix and "_total"
  std::string_view help;  // one sentence, for Prometheus' HELP line
  // Optional: counters that Prometheus shows as one family told apart by a label, as
  // flowguard_cluster_timeouts_total{kind="connect"}: the family's name (instead of `name`)
  // and the label. The first counter of a family gives its HELP line.
  std::string_view family = {};
  std::string_view label = {};  // e.g. kind="connect"
};

// A number an owner keeps in a field of its own (a level such as open connections, or a
// count kept where its owner needs it), declared once with the function that reads it: the
// admin listener's JSON shows it as `name`, Prometheus as `prometheus` (a gauge or a counter,
// with the owner's labels), from the table alone.
template <class Owner>
struct FieldStatDecl {
  std::string_view name;        // its key in the admin listener's JSON
  std::string_view prometheus;  // its full Prometheus name (a counter's ends in _total)
  std::string_view help;        // one sentence, for Prometheus' HELP line
  bool gauge;                   // a level, not a count
  int64_t (*read)(const Owner& owner);
};

class StatSet {
 public:
  explicit StatSet(std::span<const StatDecl> decls)
      : decls_(decls), values_(std::make_unique<std::atomic<uint64_t>[]>(decls.size())) {}

  template <class Stat>
  void add(Stat stat, uint64_t n = 1) {
    values_[static_cast<size_t>(stat)].fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t value(size_t index) const { return values_[index].load(std::memory_order_relaxed); }
  template <class Stat>
  uint64_t value(Stat stat) const {
    return value(static_cast<size_t>(stat));
  }
  std::span<const StatDecl> decls() const { return decls_; }

 private:
  std::span<const StatDecl> decls_;
  std::unique_ptr<std::atomic<uint64_t>[]> values_;
};

}  // namespace flowguard::core
