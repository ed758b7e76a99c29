#include "tests/fuzz/fuzz_bodies.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config_loader.h"
#include "config/units.h"
#include "core/http1_parser.h"
#include "core/ip_range.h"
#include "filters/filter_plugin.h"
#include "filters/store_handlers.h"
#include "filters/stored_keys.h"
#include "loadgen/options.h"
#include "tests/support/http_text.h"

namespace flowguard::fuzz {
namespace {

using core::BodyFraming;
using core::Http1Parser;
using Kind = Http1Parser::Kind;
using Event = Http1Parser::Event;
using Limits = Http1Parser::Limits;

void check(bool condition, std::string_view what) {
  if (!condition) throw FuzzInvariantError(std::string(what));
}

// Long dumps would bury the message libFuzzer prints; the input file has the full story.
std::string clip(std::string s) {
  if (s.size() > 600) s = s.substr(0, 600) + "...";
  return s;
}

// The limits the gateway runs with: a listener's defaults (config.h ListenerConfig) for
// requests, the upstream connection's for responses, or tight ones so the 413/431 paths run
// on small inputs.
Limits gatewayLimits(Kind kind, bool tight) {
  if (tight) return Limits{256, 8, 64};
  if (kind == Kind::Request) return Limits{16 * 1024, 100, 10ull << 20};
  return Limits{64 * 1024, 200, std::numeric_limits<uint64_t>::max()};
}

bool isTchar(char c) {
  const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return alnum || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool isToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), isTchar);
}

// What request smuggling needs: a field that hides a line break or a NUL.
void checkFields(const core::HeaderMap& fields, size_t maxFields, std::string_view where) {
  check(fields.size() <= maxFields, std::string(where) + ": more fields than maxHeaders");
  for (const core::Header& f : fields) {
    check(isToken(f.name), std::string(where) + ": field name is not a token: " + clip(f.name));
    for (char c : f.value) {
      check(c != '\r' && c != '\n' && c != '\0', std::string(where) + ": CR, LF or NUL in a field value");
    }
  }
}

using test::describeFields;
using test::framingName;

struct Message {
  std::string head;
  std::string body;
  std::string trailers;
  bool complete = false;
  bool operator==(const Message&) const = default;
};

struct Trace {
  std::vector<Message> messages;
  std::string events;  // H, B (consecutive Body events collapsed), M, E
  int errorStatus = 0;
  std::string errorReason;
  // The reason text may name a different flaw when the input arrives in other pieces (which
  // check sees the bad byte first); the status, events and messages may not differ.
  bool operator==(const Trace& o) const {
    return messages == o.messages && events == o.events && errorStatus == o.errorStatus;
  }

  std::string str() const {
    std::string s = "events=" + events + " err=" + std::to_string(errorStatus) + " " + errorReason;
    for (const Message& m : messages) {
      s += " {" + m.head + "} body=" + std::to_string(m.body.size()) + " trailers=" + m.trailers +
           (m.complete ? " complete" : "");
    }
    return clip(s);
  }
};

// Drives one parser over pieces of input and checks the parser's contract at every event.
class Driver {
 public:
  Driver(Kind kind, Limits limits, bool requestWasHead)
      : kind_(kind), limits_(limits), requestWasHead_(requestWasHead), parser_(kind, limits) {
    parser_.setRequestWasHead(requestWasHead);
  }

  // Returns false once the parser reported an error.
  bool feed(const char* d, size_t n) {
    // Every event but NeedMore and a MessageComplete right after the head or body consumes
    // bytes, so more iterations than this mean the parser stopped making progress.
    const size_t guard = 2 * n + 4;
    for (size_t i = 0; i < guard; ++i) {
      const Http1Parser::Result r = parser_.parse(d, n);
      check(r.consumed <= n, "consumed more than given");
      if (r.event == Event::Body) {
        const std::string_view b = parser_.body();
        check(!b.empty(), "empty Body event");
        check(b.data() >= d && b.data() + b.size() <= d + r.consumed,
              "body is not a view into the consumed input");
      }
      if (r.event == Event::NeedMore) check(r.consumed == n, "NeedMore with unconsumed input");
      d += r.consumed;
      n -= r.consumed;
      if (!handle(r.event)) return false;
      if (r.event == Event::NeedMore) return true;
    }
    check(false, "parse loop makes no progress");
    return false;
  }

  void finish() {
    for (int i = 0; i < 4; ++i) {
      const Http1Parser::Result r = parser_.finish();
      check(r.consumed == 0, "finish consumed bytes");
      if (!handle(r.event) || r.event == Event::NeedMore) return;
    }
    check(false, "finish loop does not end");
  }

  Trace trace;

 private:
  bool handle(Event e) {
    switch (e) {
      case Event::NeedMore:
        return true;
      case Event::HeadComplete:
        onHead();
        return true;
      case Event::Body: {
        check(!trace.messages.empty() && inMessage_, "Body outside a message");
        check(framing_ != BodyFraming::None, "Body for a message without one");
        bodyBytes_ += parser_.body().size();
        if (framing_ == BodyFraming::ContentLength)
          check(bodyBytes_ <= contentLength_, "body longer than Content-Length");
        check(bodyBytes_ <= limits_.maxBodyBytes, "body longer than maxBodyBytes");
        if (trace.events.back() != 'B') trace.events += 'B';
        trace.messages.back().body += parser_.body();
        return true;
      }
      case Event::MessageComplete:
        check(!trace.messages.empty() && inMessage_, "MessageComplete outside a message");
        check(parser_.betweenMessages() && !parser_.inBody(), "state wrong after MessageComplete");
        if (framing_ == BodyFraming::ContentLength)
          check(bodyBytes_ == contentLength_, "Content-Length body cut short");
        if (framing_ == BodyFraming::None) check(bodyBytes_ == 0, "body-less message with a body");
        checkFields(parser_.trailers(), limits_.maxHeaders, "trailers");
        check(framing_ == BodyFraming::Chunked || parser_.trailers().empty(),
              "trailers without chunked framing");
        inMessage_ = false;
        trace.events += 'M';
        trace.messages.back().complete = true;
        trace.messages.back().trailers = describeFields(parser_.trailers());
        return true;
      case Event::Error: {
        const int status = parser_.errorStatus();
        if (kind_ == Kind::Request) {
          check(status >= 400 && status <= 599,
                "request error status not 4xx/5xx: " + std::to_string(status));
        } else {
          check(status == 502, "response error status not 502: " + std::to_string(status));
        }
        check(!parser_.errorReason().empty(), "error without a reason");
        const Http1Parser::Result again = parser_.parse("GET / HTTP/1.1\r\n", 16);
        check(again.event == Event::Error && again.consumed == 0, "parser did not stay failed");
        check(parser_.errorStatus() == status, "error status changed after the error");
        trace.events += 'E';
        trace.errorStatus = status;
        trace.errorReason = parser_.errorReason();
        return false;
      }
    }
    check(false, "unknown event");
    return false;
  }

  void onHead() {
    check(!inMessage_, "HeadComplete inside a message");
    check(parser_.inBody(), "inBody false after HeadComplete");
    std::string head;
    if (kind_ == Kind::Request) {
      const core::RequestHead& r = parser_.request();
      check(isToken(r.method), "method is not a token");
      check(!r.target.empty(), "empty request-target");
      for (char c : r.target) {
        check(static_cast<unsigned char>(c) > 0x20 && c != 0x7f, "SP, CTL or DEL in the request-target");
      }
      check(r.versionMinor == 0 || r.versionMinor == 1, "request version not 1.0 or 1.1");
      check(r.framing != BodyFraming::UntilClose, "a request body framed by close");
      checkFields(r.headers, limits_.maxHeaders, "request head");
      framing_ = r.framing;
      contentLength_ = r.contentLength;
      if (framing_ == BodyFraming::ContentLength)
        check(contentLength_ <= limits_.maxBodyBytes, "Content-Length over the limit accepted");
      head = r.method + " " + r.target + " 1." + std::to_string(r.versionMinor) + " " +
             framingName(r.framing) + " cl=" + std::to_string(r.contentLength) +
             " ka=" + std::to_string(r.keepAlive) + " ec=" + std::to_string(r.expectContinue) + " " +
             describeFields(r.headers);
    } else {
      const core::ResponseHead& r = parser_.response();
      check(r.status >= 100 && r.status <= 599, "status out of range");
      check(r.status >= 200 || r.status == 101, "an interim 1xx response reached the caller");
      check(r.versionMinor == 0 || r.versionMinor == 1, "response version not 1.0 or 1.1");
      if (requestWasHead_) check(r.framing == BodyFraming::None, "response to HEAD with a body");
      for (char c : r.reason)
        check(c != '\r' && c != '\n' && c != '\0', "CR, LF or NUL in the reason phrase");
      checkFields(r.headers, limits_.maxHeaders, "response head");
      framing_ = r.framing;
      contentLength_ = r.contentLength;
      head = std::to_string(r.status) + " '" + r.reason + "' 1." + std::to_string(r.versionMinor) + " " +
             framingName(r.framing) + " cl=" + std::to_string(r.contentLength) +
             " ka=" + std::to_string(r.keepAlive) + " " + describeFields(r.headers);
    }
    inMessage_ = true;
    bodyBytes_ = 0;
    trace.events += 'H';
    trace.messages.push_back({std::move(head), "", "", false});
  }

  Kind kind_;
  Limits limits_;
  bool requestWasHead_;
  Http1Parser parser_;
  bool inMessage_ = false;
  BodyFraming framing_ = BodyFraming::None;
  uint64_t contentLength_ = 0;
  uint64_t bodyBytes_ = 0;
};

// Each piece in its own exact-size heap block, so a parser that kept a view into an earlier
// piece, or read past a piece's end, is caught by ASan instead of passing by luck.
Trace runPieces(Kind kind, Limits limits, bool requestWasHead, bool finish,
                const std::vector<std::string_view>& pieces) {
  Driver driver(kind, limits, requestWasHead);
  for (std::string_view piece : pieces) {
    std::unique_ptr<char[]> copy(new char[piece.size() + (piece.empty() ? 1 : 0)]);
    std::copy(piece.begin(), piece.end(), copy.get());
    if (!driver.feed(copy.get(), piece.size())) return driver.trace;
  }
  if (finish) driver.finish();
  return driver.trace;
}

// Control bytes: [flags][split 1][split 2], then the message bytes.
//   flags bits 0-1: 0 whole, 1 two pieces, 2 three pieces, 3 one byte at a time
//   bit 2: finish() at the end (the peer closed)
//   bit 3: tight limits
//   bit 4: responses only, the request was HEAD
void fuzzParser(Kind kind, const uint8_t* data, size_t size) {
  if (size < 3) return;
  const uint8_t flags = data[0];
  const std::string_view in(reinterpret_cast<const char*>(data + 3), size - 3);
  const Limits limits = gatewayLimits(kind, (flags & 8) != 0);
  const bool finish = (flags & 4) != 0;
  const bool wasHead = kind == Kind::Response && (flags & 16) != 0;

  const Trace whole = runPieces(kind, limits, wasHead, finish, {in});
  std::vector<std::string_view> pieces;
  const unsigned mode = flags & 3;
  if (mode == 3 && in.size() <= 4096) {
    for (size_t i = 0; i < in.size(); ++i) pieces.push_back(in.substr(i, 1));
  } else if (mode != 0) {
    size_t a = data[1] * in.size() / 255;
    size_t b = mode == 1 ? a : data[2] * in.size() / 255;
    if (a > b) std::swap(a, b);
    pieces = {in.substr(0, a), in.substr(a, b - a), in.substr(b)};
  } else {
    return;
  }
  const Trace split = runPieces(kind, limits, wasHead, finish, pieces);
  check(split == whole,
        "split input parsed differently:\n  split: " + split.str() + "\n  whole: " + whole.str());
}

// ---- chunked ------------------------------------------------------------------------------

constexpr std::string_view kChunkedHead = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

// A plain reading of RFC 9112 chunked coding over a body the parser accepted: the data it
// must have delivered. Extensions and trailers are skipped (the parser validated them).
std::optional<std::string> referenceDecode(std::string_view in) {
  std::string body;
  size_t pos = 0;
  while (true) {
    uint64_t chunkSize = 0;
    size_t digits = 0;
    while (pos < in.size() && std::isxdigit(static_cast<unsigned char>(in[pos]))) {
      const char c = in[pos];
      const unsigned v = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
      if (chunkSize > (std::numeric_limits<uint64_t>::max() >> 4)) return std::nullopt;
      chunkSize = chunkSize * 16 + v;
      ++pos;
      ++digits;
    }
    if (digits == 0) return std::nullopt;
    const size_t eol = in.find("\r\n", pos);
    if (eol == std::string_view::npos) return std::nullopt;
    pos = eol + 2;
    if (chunkSize == 0) break;
    if (chunkSize > in.size() - pos) return std::nullopt;
    body.append(in.substr(pos, chunkSize));
    pos += chunkSize;
    if (in.substr(pos, 2) != "\r\n") return std::nullopt;
    pos += 2;
  }
  // Trailer section: field lines, then an empty line that must end the accepted bytes.
  while (true) {
    const size_t eol = in.find("\r\n", pos);
    if (eol == std::string_view::npos) return std::nullopt;
    if (eol == pos) {
      if (eol + 2 != in.size()) return std::nullopt;
      return body;
    }
    pos = eol + 2;
  }
}

}  // namespace

void fuzzRequestParser(const uint8_t* data, size_t size) {
  fuzzParser(Kind::Request, data, size);
}

void fuzzResponseParser(const uint8_t* data, size_t size) {
  fuzzParser(Kind::Response, data, size);
}

void fuzzChunkedDecoder(const uint8_t* data, size_t size) {
  const Limits limits = gatewayLimits(Kind::Request, false);
  std::unique_ptr<char[]> buffer(new char[kChunkedHead.size() + size]);
  std::copy(kChunkedHead.begin(), kChunkedHead.end(), buffer.get());
  std::copy(data, data + size, buffer.get() + kChunkedHead.size());
  const char* input = buffer.get() + kChunkedHead.size();
  const char* const end = input + size;

  Http1Parser parser(Kind::Request, limits);
  Http1Parser::Result r = parser.parse(buffer.get(), kChunkedHead.size());
  check(r.event == Event::HeadComplete && r.consumed == kChunkedHead.size(), "the fixed head did not parse");
  check(parser.request().framing == BodyFraming::Chunked, "the fixed head is not chunked");

  // Body views must come in input order, never overlap and never leave the input.
  const char* d = input;
  const char* lastEnd = input;
  std::string body;
  bool complete = false;
  for (size_t guard = 0; guard < 2 * size + 4 && !complete; ++guard) {
    const size_t n = static_cast<size_t>(end - d);
    r = parser.parse(d, n);
    check(r.consumed <= n, "consumed more than given");
    if (r.event == Event::Body) {
      const std::string_view b = parser.body();
      check(!b.empty() && b.data() >= lastEnd && b.data() + b.size() <= d + r.consumed,
            "chunk data out of order or outside the input");
      lastEnd = b.data() + b.size();
      body += b;
    }
    d += r.consumed;
    if (r.event == Event::Error) {
      const int status = parser.errorStatus();
      check(status == 400 || status == 413 || status == 431,
            "chunked error status: " + std::to_string(status));
      break;
    }
    if (r.event == Event::NeedMore) {
      check(d == end, "NeedMore with unconsumed input");
      break;
    }
    check(r.event == Event::Body || r.event == Event::MessageComplete, "unexpected event in a chunked body");
    complete = r.event == Event::MessageComplete;
  }
  check(body.size() <= size, "more body bytes than input bytes");
  if (complete) {
    const std::string_view accepted(input, static_cast<size_t>(d - input));
    const std::optional<std::string> expected = referenceDecode(accepted);
    check(expected.has_value(), "parser accepted a body the reference decoder rejects");
    check(*expected == body, "decoded body differs from the reference decoder");
  }

  // Same body fed a byte at a time must give the same result.
  if (size <= 2048) {
    std::vector<std::string_view> pieces{kChunkedHead};
    const std::string_view in(input, size);
    for (size_t i = 0; i < size; ++i) pieces.push_back(in.substr(i, 1));
    const Trace bytes = runPieces(Kind::Request, limits, false, false, pieces);
    const Trace whole = runPieces(Kind::Request, limits, false, false,
                                  {std::string_view(buffer.get(), kChunkedHead.size() + size)});
    check(bytes == whole,
          "byte-at-a-time chunked body differs:\n  bytes: " + bytes.str() + "\n  whole: " + whole.str());
  }
}

void fuzzConfigLoader(const uint8_t* data, size_t size) {
  filters::registerPluggedFilters();  // their parsers too (ip_filter, server_timing...)
  const std::string text(reinterpret_cast<const char*>(data), size);
  const config::LoadResult result = config::loadConfigText(text, "fuzz.yaml");
  check(result.ok() == (result.config != nullptr), "ok() disagrees with config");
  for (const config::ConfigError& e : result.errors) {
    check(e.line >= 0 && e.column >= 0, "negative error position");
    check(e.file == "fuzz.yaml", "error names another file: " + e.file);
    check(!e.message.empty(), "error without a message");
    const std::string s = e.str();
    check(s.starts_with("fuzz.yaml"), "error string does not start with the file: " + clip(s));
  }
}

namespace {

std::string percentEncodeAll(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out += '%';
    out += kHex[u >> 4];
    out += kHex[u & 15];
  }
  return out;
}

void fuzzDuration(std::string_view text) {
  config::Duration d{};
  std::string reason;
  if (!config::parseDuration(text, d, reason)) {
    check(!reason.empty(), "duration rejected without a reason");
    return;
  }
  check(d.count() >= 0, "negative duration");
  config::Duration again{};
  check(config::parseDuration(std::to_string(d.count()) + "ms", again, reason) && again == d,
        "duration round trip");
}

void fuzzSize(std::string_view text) {
  uint64_t n = 0;
  std::string reason;
  if (!config::parseSize(text, n, reason)) {
    check(!reason.empty(), "size rejected without a reason");
    return;
  }
  uint64_t again = 0;
  check(config::parseSize(std::to_string(n), again, reason) && again == n, "size round trip");
}

void fuzzSocketAddress(std::string_view text, config::HostKind kind) {
  config::SocketAddress address;
  std::string reason;
  if (!config::parseSocketAddress(text, address, reason, kind)) {
    check(!reason.empty(), "address rejected without a reason");
    return;
  }
  check(!address.host.empty() && address.port != 0, "address without host or port");
  config::SocketAddress again;
  check(config::parseSocketAddress(address.str(), again, reason, kind) && again == address,
        "address round trip: " + clip(address.str()));
}

void fuzzRate(std::string_view text) {
  uint64_t requests = 0;
  config::Duration period{};
  std::string reason;
  if (!config::parseRate(text, requests, period, reason)) {
    check(!reason.empty(), "rate rejected without a reason");
    return;
  }
  check(requests > 0, "rate of zero requests accepted");
  const char* unit = period.count() == 1'000       ? "s"
                     : period.count() == 60'000    ? "m"
                     : period.count() == 3'600'000 ? "h"
                                                   : nullptr;
  check(unit != nullptr, "rate period not a second, minute or hour");
  uint64_t requests2 = 0;
  config::Duration period2{};
  check(config::parseRate(std::to_string(requests) + "/" + unit, requests2, period2, reason) &&
            requests2 == requests && period2 == period,
        "rate round trip");
}

void fuzzInteger(std::string_view text) {
  int64_t n = 0;
  std::string reason;
  if (!config::parseInteger(text, n, reason)) {
    check(!reason.empty(), "integer rejected without a reason");
    return;
  }
  int64_t again = 0;
  check(config::parseInteger(std::to_string(n), again, reason) && again == n, "integer round trip");
  check(std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || c == '-'; }),
        "integer with other characters accepted");
}

void fuzzPercentDecode(std::string_view text, bool plusIsSpace) {
  const std::optional<std::string> decoded = filters::percentDecode(text, plusIsSpace);
  if (decoded) {
    check(decoded->size() <= text.size(), "decoding made the text longer");
    if (text.find('%') == std::string_view::npos) {
      std::string expected(text);
      if (plusIsSpace) std::replace(expected.begin(), expected.end(), '+', ' ');
      check(*decoded == expected, "text without escapes changed");
    }
    check(filters::percentDecode(percentEncodeAll(*decoded), plusIsSpace) == decoded,
          "decode(encode(x)) != x");
  } else {
    check(text.find('%') != std::string_view::npos, "text without '%' rejected");
  }
  check(filters::percentDecode(percentEncodeAll(text), plusIsSpace) == std::string(text),
        "decode(encode(raw)) != raw");
}

void fuzzLimitJson(std::string_view text) {
  const nlohmann::json json = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (json.is_discarded()) return;
  const std::optional<config::RateLimitSpec> limit = filters::limitFromJson(json);
  if (!limit) return;
  check(limit->requests > 0 && limit->period.count() > 0 && limit->burst > 0,
        "limit with a zero field accepted");
  const nlohmann::json out = filters::limitToJson(*limit);
  const std::optional<config::RateLimitSpec> back = filters::limitFromJson(out);
  check(back.has_value(), "limitToJson output rejected by limitFromJson: " + clip(out.dump()));
  check(filters::limitToJson(*back) == out, "limit JSON round trip");
}

void fuzzUrl(std::string_view text) {
  loadgen::TargetUrl url;
  try {
    url = loadgen::parseUrl(std::string(text));
  } catch (const std::invalid_argument&) {
    return;
  }
  check(!url.host.empty() && url.port != 0, "URL without host or port accepted");
  check(!url.path.empty() && url.path[0] == '/', "URL path does not start with '/'");
  check(!url.hostHeader.empty(), "URL without a Host field value");
}

// trusted_proxies entries and X-Forwarded-For hops: what parses must print and parse back to
// itself, and a range must contain its own base address and not the other family's.
void fuzzIpRange(std::string_view text) {
  std::string error;
  if (auto range = core::IpRange::parse(text, error)) {
    check(error.empty(), "IpRange parsed and set an error");
    check(range->prefixBits >= 0 && range->prefixBits <= (range->base.v6 ? 128 : 32), "prefix out of range");
    check(range->contains(range->base), "a range does not contain its own base address");
    std::string again;
    auto reparsed = core::IpRange::parse(range->str(), again);
    check(reparsed.has_value() && *reparsed == *range,
          "IpRange::str() does not parse back to the same range");
    core::IpAddress other = range->base;
    other.v6 = !other.v6;
    check(!range->contains(other), "a range matched the other address family");
  } else {
    check(!error.empty(), "IpRange refused without saying why");
  }
  if (auto address = core::IpAddress::parse(text)) {
    std::string unused;
    auto single = core::IpRange::parse(
        text.substr(text.front() == '[' ? 1 : 0, text.size() - (text.front() == '[' ? 2 : 0)), unused);
    check(single.has_value() && single->contains(*address), "an address is not in its own /32 or /128");
  }
}

}  // namespace

// First byte picks the parser; the rest is its input.
//   0 duration, 1 size, 2 address (literal), 3 address (name or literal), 4 rate, 5 integer,
//   6 method token, 7 percent-decode, 8 percent-decode with '+', 9 limit JSON, 10 loadgen URL,
//   11 IP address / CIDR range
void fuzzUnits(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 12) {
    case 0:
      fuzzDuration(text);
      break;
    case 1:
      fuzzSize(text);
      break;
    case 2:
      fuzzSocketAddress(text, config::HostKind::Literal);
      break;
    case 3:
      fuzzSocketAddress(text, config::HostKind::NameOrLiteral);
      break;
    case 4:
      fuzzRate(text);
      break;
    case 5:
      fuzzInteger(text);
      break;
    case 6:
      check(core::isToken(text) == isToken(text), "core::isToken disagrees with RFC 9110 tchar");
      break;
    case 7:
      fuzzPercentDecode(text, false);
      break;
    case 8:
      fuzzPercentDecode(text, true);
      break;
    case 9:
      fuzzLimitJson(text);
      break;
    case 10:
      fuzzUrl(text);
      break;
    case 11:
      fuzzIpRange(text);
      break;
  }
}

}  // namespace flowguard::fuzz
