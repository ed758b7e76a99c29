#include "core/http_message.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace flowguard::core {

namespace {

constexpr char lowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

}  // namespace

std::string toLowerAscii(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = lowerAscii(c);
  return out;
}

bool isToken(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    const bool tchar = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!tchar) return false;
  }
  return true;
}

namespace {

// Eight ASCII-case-folded bytes at once: 'A'..'Z' get 0x20 added, every other byte (those
// >= 0x80 too) is left alone.
uint64_t foldWord(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  const uint64_t low7 = w & ~kHigh;
  const uint64_t atLeastA = low7 + (0x80 - 'A') * kOnes;    // high bit: byte >= 'A'
  const uint64_t aboveZ = low7 + (0x80 - 'Z' - 1) * kOnes;  // high bit: byte > 'Z'
  const uint64_t upper = atLeastA & ~aboveZ & ~w & kHigh;
  return w | (upper >> 2);
}

// `to` = `from`, in place when the lengths match.
void overwrite(std::string& to, std::string_view from) {
  if (to.size() == from.size()) {
    if (!from.empty()) std::memcpy(to.data(), from.data(), from.size());
  } else {
    to.assign(from);
  }
}

}  // namespace

bool equalsIgnoreCaseSameSize(const char* a, const char* b, size_t size) {
  for (; size >= 8; a += 8, b += 8, size -= 8) {
    uint64_t wa, wb;
    std::memcpy(&wa, a, 8);
    std::memcpy(&wb, b, 8);
    if (wa != wb && foldWord(wa) != foldWord(wb)) return false;
  }
  for (size_t i = 0; i < size; ++i) {
    if (lowerAscii(a[i]) != lowerAscii(b[i])) return false;
  }
  return true;
}

HeaderMap& HeaderMap::operator=(const HeaderMap& other) {
  if (this == &other) return *this;
  clear();
  for (const Header& h : other) add(h.name, h.value);
  return *this;
}

HeaderMap& HeaderMap::operator=(HeaderMap&& other) noexcept {
  slots_ = std::move(other.slots_);
  size_ = other.size_;
  other.slots_.clear();
  other.size_ = 0;
  return *this;
}

void HeaderMap::add(std::string_view name, std::string_view value) {
  if (size_ == slots_.size()) {
    // Built before the vector may grow: `name` or `value` may view one of its fields.
    slots_.push_back(Header{std::string(name), std::string(value)});
    ++size_;
    return;
  }
  // A spare often holds this very name already, and a value of the same length: a filter
  // adds the same fields to every response, in the same places. Bytes copied over in place
  // cost a third of what std::string::assign does.
  Header& h = slots_[size_++];
  overwrite(h.name, name);
  overwrite(h.value, value);
}

Header& HeaderMap::appendSlot() {
  slots_.emplace_back();
  return slots_[size_++];
}

void HeaderMap::set(std::string_view name, std::string_view value) {
  const Header* first = nullptr;
  for (Header& h : *this) {
    if (equalsIgnoreCase(h.name, name)) {
      h.value.assign(value);
      first = &h;
      break;
    }
  }
  if (first == nullptr) {
    add(name, value);
    return;
  }
  removeIf([&](const Header& h) { return &h != first && equalsIgnoreCase(h.name, name); });
}

size_t HeaderMap::remove(std::string_view name) {
  return removeIf([&](const Header& h) { return equalsIgnoreCase(h.name, name); });
}

std::string_view HeaderMap::get(std::string_view name) const {
  for (const Header& h : *this) {
    if (equalsIgnoreCase(h.name, name)) return h.value;
  }
  return {};
}

bool HeaderMap::has(std::string_view name) const {
  return std::any_of(begin(), end(), [&](const Header& h) { return equalsIgnoreCase(h.name, name); });
}

size_t HeaderMap::count(std::string_view name) const {
  return static_cast<size_t>(
      std::count_if(begin(), end(), [&](const Header& h) { return equalsIgnoreCase(h.name, name); }));
}

std::string_view RequestHead::path() const {
  std::string_view t = target;
  // absolute-form: the path starts after "scheme://authority".
  if (!t.empty() && t.front() != '/') {
    size_t scheme = t.find("://");
    if (scheme != std::string_view::npos && t.find_first_of("?#") > scheme) {
      size_t slash = t.find_first_of("/?#", scheme + 3);
      if (slash == std::string_view::npos || t[slash] != '/') return "/";
      t.remove_prefix(slash);
    }
  }
  return t.substr(0, t.find_first_of("?#"));
}

std::string_view RequestHead::query() const {
  std::string_view t = target;
  t = t.substr(0, t.find('#'));  // a fragment is not part of the query
  size_t q = t.find('?');
  if (q == std::string_view::npos) return {};
  return t.substr(q + 1);
}

void RequestHead::takeFrom(RequestHead& parsed) {
  method.swap(parsed.method);
  target.swap(parsed.target);
  headers.swap(parsed.headers);
  versionMinor = parsed.versionMinor;
  framing = parsed.framing;
  contentLength = parsed.contentLength;
  keepAlive = parsed.keepAlive;
  expectContinue = parsed.expectContinue;
}

void RequestHead::clear() {
  method.clear();
  target.clear();
  versionMinor = 1;
  headers.clear();
  framing = BodyFraming::None;
  contentLength = 0;
  keepAlive = true;
  expectContinue = false;
}

void ResponseHead::clear() {
  status = 200;
  reason.clear();
  versionMinor = 1;
  headers.clear();
  framing = BodyFraming::None;
  contentLength = 0;
  keepAlive = true;
}

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 102:
      return "Processing";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 205:
      return "Reset Content";
    case 206:
      return "Partial Content";
    case 207:
      return "Multi-Status";
    case 208:
      return "Already Reported";
    case 226:
      return "IM Used";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 305:
      return "Use Proxy";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 418:
      return "I'm a teapot";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 423:
      return "Locked";
    case 424:
      return "Failed Dependency";
    case 425:
      return "Too Early";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 451:
      return "Unavailable For Legal Reasons";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    case 506:
      return "Variant Also Negotiates";
    case 507:
      return "Insufficient Storage";
    case 508:
      return "Loop Detected";
    case 510:
      return "Not Extended";
    case 511:
      return "Network Authentication Required";
    default:
      return "Unknown";
  }
}

bool isIdempotentMethod(std::string_view method) {
  // Methods are case-sensitive (RFC 9110 9.1).
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" || method == "PUT" ||
         method == "DELETE";
}

bool isHopByHopHeader(std::string_view name) {
  switch (name.size()) {
    case 2:
      return equalsIgnoreCase(name, "te");
    case 7:
      return equalsIgnoreCase(name, "trailer") || equalsIgnoreCase(name, "upgrade");
    case 10:
      return equalsIgnoreCase(name, "connection") || equalsIgnoreCase(name, "keep-alive");
    case 16:
      return equalsIgnoreCase(name, "proxy-connection");
    case 17:
      return equalsIgnoreCase(name, "transfer-encoding");
    case 18:
      return equalsIgnoreCase(name, "proxy-authenticate");
    case 19:
      return equalsIgnoreCase(name, "proxy-authorization");
    default:
      return false;
  }
}

bool forbiddenInTrailer(std::string_view name) {
  static constexpr std::string_view kForbidden[] = {
      // framing and routing
      "content-length", "transfer-encoding", "host", "trailer",
      // request modifiers: controls and conditionals
      "cache-control", "expect", "max-forwards", "pragma", "range", "te", "if-match", "if-none-match",
      "if-modified-since", "if-unmodified-since", "if-range",
      // authentication and state
      "authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate", "cookie",
      "set-cookie",
      // how the content is processed
      "content-encoding", "content-type", "content-range",
      // identity the gateway sets for the backend
      "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "forwarded", "x-request-id",
      "x-client-request-id"};
  if (isHopByHopHeader(name)) return true;
  for (std::string_view forbidden : kForbidden) {
    if (equalsIgnoreCase(name, forbidden)) return true;
  }
  return false;
}

void removeHopByHopHeaders(HeaderMap& headers) {
  // Mark fields named by Connection by emptying their names (a parsed field name is never
  // empty), so the Connection values stay readable while marking and nothing is allocated.
  for (const Header& conn : headers) {
    if (!equalsIgnoreCase(conn.name, "connection")) continue;
    forEachListItem(conn.value, [&](std::string_view token) {
      if (equalsIgnoreCase(token, "connection")) return true;  // removed anyway; keep it findable
      for (Header& h : headers) {
        if (&h != &conn && equalsIgnoreCase(h.name, token)) h.name.clear();
      }
      return true;
    });
  }
  headers.removeIf([](const Header& h) { return h.name.empty() || isHopByHopHeader(h.name); });
}

}  // namespace flowguard::core
