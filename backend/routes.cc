#include "backend/routes.h"

#include <charconv>

namespace flowguard::backend {

namespace {

bool parseNumber(std::string_view text, uint64_t& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// "/prefix/<rest>" -> rest; nullopt-like false when the path is not under prefix.
bool suffixAfter(std::string_view path, std::string_view prefix, std::string_view& rest) {
  if (path.size() <= prefix.size() || path.substr(0, prefix.size()) != prefix) return false;
  rest = path.substr(prefix.size());
  return true;
}

Route badArgument(std::string message) {
  Route r;
  r.kind = RouteKind::BadArgument;
  r.error = std::move(message);
  return r;
}

}  // namespace

bool queryFlag(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = item.find('=');
    if (item.substr(0, eq) != name) continue;
    if (eq == std::string_view::npos) return true;
    std::string_view value = item.substr(eq + 1);
    return value == "1" || value == "true";
  }
  return false;
}

Route matchRoute(std::string_view method, std::string_view path, std::string_view query) {
  bool readOnly = method == "GET" || method == "HEAD";
  Route r;
  std::string_view rest;
  if (readOnly && path == "/health") {
    r.kind = RouteKind::Health;
  } else if (readOnly && path == "/_stats") {
    r.kind = RouteKind::Stats;
  } else if (path == "/_fault") {
    if (readOnly) {
      r.kind = RouteKind::FaultGet;
    } else if (method == "POST") {
      r.kind = RouteKind::FaultSet;
    } else {
      r.kind = RouteKind::MethodNotAllowed;
      r.error = "/_fault accepts GET, HEAD and POST";
    }
  } else if (path == "/echo") {
    r.kind = RouteKind::Echo;
  } else if (suffixAfter(path, "/bytes/", rest)) {
    if (!parseNumber(rest, r.number)) return badArgument("/bytes/N needs a byte count");
    r.kind = RouteKind::Bytes;
    r.chunked = queryFlag(query, "chunked");
  } else if (suffixAfter(path, "/status/", rest)) {
    // 1xx are interim responses and cannot end an exchange, so they are not offered.
    if (!parseNumber(rest, r.number) || r.number < 200 || r.number > 599) {
      return badArgument("/status/N needs a status from 200 to 599");
    }
    r.kind = RouteKind::Status;
  } else if (suffixAfter(path, "/delay/", rest)) {
    if (!parseNumber(rest, r.number) || r.number > kMaxDelayMs) {
      return badArgument("/delay/MS needs milliseconds up to 600000");
    }
    r.kind = RouteKind::Delay;
  }
  return r;
}

}  // namespace flowguard::backend
