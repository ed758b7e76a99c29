// Parsers for the value syntaxes flowguard.yaml shares between sections: durations ("250ms",
// "10s"), byte sizes ("16KiB"), host:port addresses and plain integers. They know nothing
// about YAML; on failure they return false and say why in `reason` (the caller adds which
// key and where), so the same rules apply wherever such a value appears.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"

namespace flowguard::config {

// "<digits><unit>" with unit ms, s, m or h. A bare number is rejected: "10" could mean
// seconds or milliseconds, and guessing wrong by 1000x is worse than asking.
bool parseDuration(std::string_view text, Duration& out, std::string& reason);

// "<digits>" (bytes) or "<digits><unit>" with unit B, KB, KiB, MB, MiB, GB or GiB
// (KB = 1000, KiB = 1024).
bool parseSize(std::string_view text, uint64_t& out, std::string& reason);

// What a host may be: an IP literal (or "localhost"), as for addresses FlowGuard binds, or
// also a DNS name, as for upstream hosts (resolved when the config is loaded).
enum class HostKind { Literal, NameOrLiteral };

// "host:port" or "[ipv6]:port"; host is an IPv4/IPv6 literal or "localhost" (or, with
// HostKind::NameOrLiteral, a DNS name such as backend1 or api.internal), port 1..65535.
bool parseSocketAddress(std::string_view text, SocketAddress& out, std::string& reason,
                        HostKind kind = HostKind::Literal);

// "<digits>/<unit>" with unit s, m or h, e.g. "10/s": `requests` per `period`. Zero requests
// is rejected (a limit that admits nothing is a deny rule, not a rate).
bool parseRate(std::string_view text, uint64_t& requests, Duration& period, std::string& reason);

// Decimal integer with an optional leading '-', nothing else (no "0x", no spaces).
bool parseInteger(std::string_view text, int64_t& out, std::string& reason);

}  // namespace flowguard::config
