// HTTP/1.x message heads as the codec hands them out and the filters see them.
//
// Owned strings on purpose: a head outlives the read buffer it was parsed from (the
// connection keeps reading while the router streams). The vectors are reused between
// requests on one connection (clear() keeps their capacity), so a keep-alive connection
// stops allocating for heads after its first few requests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flowguard::core {

struct Header {
  std::string name;
  std::string value;
};

// Case-insensitive ASCII comparison of two strings of the same length.
bool equalsIgnoreCaseSameSize(const char* a, const char* b, size_t size);

// Case-insensitive ASCII comparison, as header names require. Inline: most calls compare
// names of different lengths, which the size check settles without a call.
inline bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && equalsIgnoreCaseSameSize(a.data(), b.data(), a.size());
}

// An RFC 9110 token (5.6.2): what a header name or a method is made of.
bool isToken(std::string_view text);

// `text` with A-Z turned into a-z (header names compare in this form).
std::string toLowerAscii(std::string_view text);

// Calls f(item) for each element of a comma-separated field value (RFC 9110 5.6.1), with the
// spaces and tabs around it trimmed; empty elements are skipped. f returns false to stop.
template <class F>
void forEachListItem(std::string_view value, F&& f) {
  while (!value.empty()) {
    const size_t comma = std::min(value.find(','), value.size());
    std::string_view item = value.substr(0, comma);
    value.remove_prefix(std::min(comma + 1, value.size()));
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty() && !f(item)) return;
  }
}

// An ordered list of header fields. Lookups are linear: heads have few fields and a
// linear scan over a small vector beats hashing here.
//
// Fields that go (remove, clear) stay in the vector past size() with their string buffers,
// and the next field added reuses one: a head that is parsed, amended by filters and cleared
// on every request of a keep-alive connection stops allocating after the first few requests,
// and clearing costs nothing. The spares are bounded by the most fields the map ever held (the
// parser stops at the listener's max_headers). Copies carry the live fields only.
class HeaderMap {
 public:
  HeaderMap() = default;
  HeaderMap(const HeaderMap& other) : slots_(other.begin(), other.end()), size_(other.size_) {}
  HeaderMap& operator=(const HeaderMap& other);
  HeaderMap(HeaderMap&& other) noexcept : slots_(std::move(other.slots_)), size_(other.size_) {
    other.size_ = 0;
  }
  HeaderMap& operator=(HeaderMap&& other) noexcept;

  void add(std::string_view name, std::string_view value);
  // A new last field, with empty name and value (a spare field's buffers when there is one).
  Header& append() {
    if (size_ == slots_.size()) return appendSlot();
    Header& h = slots_[size_++];
    h.name.clear();
    h.value.clear();
    return h;
  }
  // Replaces every field with this name by one field (appends when absent).
  void set(std::string_view name, std::string_view value);
  // Removes every field with this name; returns how many were removed.
  size_t remove(std::string_view name);
  // Removes the fields for which pred(header) is true, keeping the order of the others.
  template <class Pred>
  size_t removeIf(Pred&& pred);
  // First value for the name, or empty view when absent (use has() to tell "" apart).
  std::string_view get(std::string_view name) const;
  bool has(std::string_view name) const;
  size_t count(std::string_view name) const;
  void clear() { size_ = 0; }
  // Exchanges fields and spares with `other`: a head handed on without a copy.
  void swap(HeaderMap& other) noexcept {
    slots_.swap(other.slots_);
    std::swap(size_, other.size_);
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t spares() const { return slots_.size() - size_; }  // cleared fields kept for reuse

  Header* begin() { return slots_.data(); }
  Header* end() { return slots_.data() + size_; }
  const Header* begin() const { return slots_.data(); }
  const Header* end() const { return slots_.data() + size_; }
  Header& operator[](size_t i) { return slots_[i]; }
  const Header& operator[](size_t i) const { return slots_[i]; }
  Header& back() { return slots_[size_ - 1]; }
  const Header& back() const { return slots_[size_ - 1]; }

 private:
  Header& appendSlot();  // append() when there is no spare

  std::vector<Header> slots_;  // [0, size_) are the fields, the rest spare
  size_t size_ = 0;
};

template <class Pred>
size_t HeaderMap::removeIf(Pred&& pred) {
  // Kept fields slide down by swapping, so the removed ones end up past size_ as spares
  // with their buffers, and nothing is allocated or freed.
  size_t kept = 0;
  for (size_t i = 0; i < size_; ++i) {
    if (pred(static_cast<const Header&>(slots_[i]))) continue;
    if (kept != i) std::swap(slots_[kept], slots_[i]);
    ++kept;
  }
  const size_t removed = size_ - kept;
  size_ = kept;
  return removed;
}

// How the body of a message is delimited on the wire.
enum class BodyFraming : uint8_t {
  None,           // no body at all
  ContentLength,  // exactly contentLength bytes
  Chunked,        // Transfer-Encoding: chunked
  UntilClose,     // responses only: the body ends when the peer closes
};

struct RequestHead {
  std::string method;    // as received, e.g. "GET"
  std::string target;    // request-target as received, e.g. "/proxy?x=1"
  int versionMinor = 1;  // HTTP/1.<versionMinor>
  HeaderMap headers;
  BodyFraming framing = BodyFraming::None;
  uint64_t contentLength = 0;   // valid when framing == ContentLength
  bool keepAlive = true;        // after this exchange, may the connection be reused?
  bool expectContinue = false;  // "Expect: 100-continue" was sent

  std::string_view path() const;   // target without the query
  std::string_view query() const;  // after '?', without it; empty when none
  void clear();
  // Takes `parsed`'s method, target and fields by swapping buffers (parsed gets this head's
  // old ones, for its next message) and copies the rest, which parsed keeps too (a parser
  // still needs the framing for the body).
  void takeFrom(RequestHead& parsed);
};

struct ResponseHead {
  int status = 200;
  std::string reason;  // may be empty; the encoder fills in the standard phrase
  int versionMinor = 1;
  HeaderMap headers;
  BodyFraming framing = BodyFraming::None;
  uint64_t contentLength = 0;
  bool keepAlive = true;
  void clear();
};

// Standard reason phrase for a status code ("Not Found"), "Unknown" when unlisted.
std::string_view reasonPhrase(int status);

// True for GET, HEAD, OPTIONS, TRACE, PUT, DELETE (RFC 9110 9.2.2).
bool isIdempotentMethod(std::string_view method);

// True for header fields that apply to one connection only and must not be forwarded
// (RFC 9110 7.6.1): Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade, Proxy-Authenticate, Proxy-Authorization.
bool isHopByHopHeader(std::string_view name);

// Fields a request trailer may not carry when forwarded (RFC 9110 6.5.1): framing, routing,
// request modifiers, authentication, content processing; hop-by-hop fields; and the identity
// fields the gateway itself sets (X-Forwarded-*, X-Real-IP, Forwarded, X-Request-Id).
bool forbiddenInTrailer(std::string_view name);

// Removes hop-by-hop fields plus every field the Connection header names.
void removeHopByHopHeaders(HeaderMap& headers);

}  // namespace flowguard::core
