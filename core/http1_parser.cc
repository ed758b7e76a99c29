#include "core/http1_parser.h"

#include <llhttp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

namespace flowguard::core {

namespace {

// RFC 9110 5.6.2 tchar.
constexpr std::array<bool, 256> makeTcharTable() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kTchar = makeTcharTable();

inline bool isTchar(char c) {
  return kTchar[static_cast<unsigned char>(c)];
}
inline bool isWs(char c) {
  return c == ' ' || c == '\t';
}
inline bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
// Field values and reason phrases: HTAB, SP, VCHAR, obs-text; no other CTL, no DEL.
inline bool isTextChar(char ch) {
  auto c = static_cast<unsigned char>(ch);
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

inline int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && isWs(s.front())) s.remove_prefix(1);
  while (!s.empty() && isWs(s.back())) s.remove_suffix(1);
  return s;
}

bool startsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && equalsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

// uri-host [":" port] characters: reg-name (unreserved, pct-encoded, sub-delims), IP literals.
bool isValidAuthority(std::string_view a, bool requirePort) {
  if (a.empty()) return false;
  for (char c : a) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) ||
              std::string_view("-._~%!$&'()*+,;=:[]").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  if (requirePort) {
    size_t colon = a.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == a.size()) return false;
    for (size_t i = colon + 1; i < a.size(); ++i) {
      if (!isDigit(a[i])) return false;
    }
  }
  return true;
}

constexpr size_t kMaxChunkLine = 4096;  // chunk-size line including extensions
constexpr uint64_t kMaxChunkSize = uint64_t{1} << 60;

}  // namespace

struct Http1Parser::Impl {
  enum class State : uint8_t {
    Head,
    HeadDone,  // HeadComplete returned; the next parse() starts the body
    BodyLength,
    BodyUntilClose,
    ChunkLine,
    ChunkData,
    ChunkDataCR,
    ChunkDataLF,
    Trailers,
    Failed,
  };
  enum class ChunkLineState : uint8_t {
    Size,
    ExtSemi,  // after ';' (BWS, then the name)
    ExtName,
    ExtAfterName,  // BWS after a name: only '=' or ';' may follow
    ExtEquals,     // after '=' (BWS, then the value)
    ExtToken,
    ExtQuoted,
    ExtQuotedPair,
    ExtAfterQuoted,
    ExtAfterValueWs,  // BWS after a value: only ';' may follow
    AwaitLf,
  };

  // What the byte-level check learned about the head; decides framing before llhttp runs.
  struct Semantics {
    int versionMinor = 1;
    bool isConnect = false;
    int status = 0;
    int contentLengthCount = 0;
    uint64_t contentLength = 0;
    bool hasTransferEncoding = false;
    bool chunkedSeen = false;
    bool chunkedLast = false;
    bool unsupportedCoding = false;
    int hostCount = 0;
    bool connectionClose = false;
    bool connectionKeepAlive = false;
    bool expectContinue = false;
    bool contentLengthTrailingTab = false;
  };

  struct ErrorInfo {
    int status;
    const char* reason;
  };

  explicit Impl(Http1Parser& owner) : p(owner) {
    llhttp_settings_init(&settings);
    settings.on_method = &Impl::onMethod;
    settings.on_url = &Impl::onUrl;
    settings.on_status = &Impl::onStatus;
    settings.on_header_field = &Impl::onHeaderField;
    settings.on_header_value = &Impl::onHeaderValue;
    settings.on_headers_complete = &Impl::onHeadersComplete;
    llhttp_init(&llp, p.kind_ == Kind::Request ? HTTP_REQUEST : HTTP_RESPONSE, &settings);
  }

  Http1Parser& p;
  State state = State::Head;

  // Head accumulation. Offsets count from the first byte of the message (leading empty lines
  // included); headBuf holds those bytes only when the head spans several parse() calls.
  std::string headBuf;
  std::string scratch;
  size_t scanPos = 0;    // where the search for the next LF resumes
  size_t lineStart = 0;  // first byte of the line being scanned
  size_t headStart = 0;  // first byte after leading empty lines
  size_t headEnd = 0;
  size_t lineCount = 0;  // start line + field lines validated so far
  Semantics sem;

  llhttp_t llp{};
  llhttp_settings_t settings{};
  HeaderMap* llHeaders = nullptr;
  size_t fieldCount = 0;
  bool inFieldName = false;

  // Body.
  uint64_t remaining = 0;
  uint64_t bodyTotal = 0;
  ChunkLineState chunkLine = ChunkLineState::Size;
  size_t chunkLineLen = 0;
  uint64_t chunkSize = 0;
  bool chunkSizeDigits = false;
  std::string trailerLine;
  size_t trailerBytes = 0;

  bool isRequest() const { return p.kind_ == Kind::Request; }

  Result fail(int status, const char* reason) {
    state = State::Failed;
    p.errorStatus_ = isRequest() ? status : 502;
    p.errorReason_.assign(reason);
    p.body_ = {};
    return {Event::Error, 0};
  }
  Result fail(const ErrorInfo& e) { return fail(e.status, e.reason); }

  void resetHead() {
    headBuf.clear();
    scanPos = lineStart = headStart = headEnd = lineCount = 0;
    partialLineSet = false;
    sem = Semantics{};
  }

  Result completeMessage(size_t consumed) {
    state = State::Head;
    resetHead();
    p.body_ = {};
    return {Event::MessageComplete, consumed};
  }

  // ---- byte-level head check -------------------------------------------------------------

  static bool checkNoCr(std::string_view line, ErrorInfo& err) {
    if (std::memchr(line.data(), '\r', line.size()) != nullptr) {
      err = {400, "bare CR in head"};
      return false;
    }
    return true;
  }

  // In the order the bytes arrive, as the partial check sees them (so a split read gives the
  // same answer): the eight characters of HTTP/D.D, then whether that version is supported
  // (505, as llhttp decides at the minor digit), then anything after it (400).
  bool checkVersion(std::string_view v, ErrorInfo& err) {
    std::string_view first = v.substr(0, 8);
    if (first.size() != 8 || first.substr(0, 5) != "HTTP/" || !isDigit(first[5]) || first[6] != '.' ||
        !isDigit(first[7])) {
      err = {400, "invalid HTTP version"};
      return false;
    }
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) {
      err = {505, "HTTP version not supported"};
      return false;
    }
    if (v.size() != 8) {
      err = {400, "invalid HTTP version"};
      return false;
    }
    sem.versionMinor = v[7] - '0';
    return true;
  }

  bool checkRequestLine(std::string_view line, ErrorInfo& err) {
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0) {
      err = {400, "invalid request line"};
      return false;
    }
    std::string_view method = line.substr(0, sp1);
    if (!std::all_of(method.begin(), method.end(), isTchar)) {
      err = {400, "invalid method"};
      return false;
    }
    std::string_view rest = line.substr(sp1 + 1);
    size_t sp2 = rest.find(' ');
    if (sp2 == std::string_view::npos) {
      err = {400, "missing HTTP version"};
      return false;
    }
    std::string_view target = rest.substr(0, sp2);
    if (target.empty()) {
      err = {400, "invalid request line"};
      return false;
    }
    for (char ch : target) {
      auto c = static_cast<unsigned char>(ch);
      // No CTL, SP, DEL or non-ASCII.
      if (c <= 0x20 || c >= 0x7f) {
        err = {400, "invalid character in request target"};
        return false;
      }
    }
    if (!checkVersion(rest.substr(sp2 + 1), err)) return false;
    // RFC 9112 3.2: a request target has no fragment. Forwarded, "/status#/../admin" would
    // mean one path here and maybe another to a backend that resolves dot segments first.
    // (After the version check: a request line is refused for the same reason however its
    // bytes arrive.)
    if (target.find('#') != std::string_view::npos) {
      err = {400, "fragment in request target"};
      return false;
    }

    sem.isConnect = method == "CONNECT";
    bool ok;
    if (sem.isConnect) {
      ok = isValidAuthority(target, true);
    } else if (target.front() == '/') {
      ok = true;
    } else if (target == "*") {
      ok = method == "OPTIONS";
    } else {
      std::string_view authority;
      if (startsWithIgnoreCase(target, "http://")) {
        authority = target.substr(7);
      } else if (startsWithIgnoreCase(target, "https://")) {
        authority = target.substr(8);
      }
      authority = authority.substr(0, authority.find_first_of("/?"));
      ok = isValidAuthority(authority, false) && authority.find('@') == std::string_view::npos;
    }
    if (!ok) err = {400, "invalid request target"};
    return ok;
  }

  bool checkStatusLine(std::string_view line, ErrorInfo& err) {
    if (line.size() < 12 || line[8] != ' ' || !isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11])) {
      err = {502, "invalid status line"};
      return false;
    }
    if (!checkVersion(line.substr(0, 8), err)) return false;
    sem.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (sem.status < 100 || sem.status > 599) {
      err = {502, "invalid status code"};
      return false;
    }
    // Missing reason (and its SP) is tolerated: plenty of servers send "HTTP/1.1 200\r\n".
    if (line.size() > 12 && (line[12] != ' ' || !std::all_of(line.begin() + 13, line.end(), isTextChar))) {
      err = {502, "invalid status line"};
      return false;
    }
    return true;
  }

  // Shared by header and trailer field lines.
  static bool splitField(std::string_view line, std::string_view& name, std::string_view& value,
                         ErrorInfo& err, std::string_view* rawValue = nullptr) {
    if (isWs(line.front())) {
      err = {400, "obsolete line folding"};
      return false;
    }
    size_t i = 0;
    while (i < line.size() && isTchar(line[i])) ++i;
    if (i == line.size()) {
      err = {400, "missing colon in header field"};
      return false;
    }
    if (line[i] != ':') {
      if (isWs(line[i])) {
        err = {400, "whitespace before colon in header field"};
      } else if (line[i] == '\r') {
        err = {400, "bare CR in head"};
      } else {
        err = {400, "invalid character in header field name"};
      }
      return false;
    }
    if (i == 0) {
      err = {400, "empty header field name"};
      return false;
    }
    name = line.substr(0, i);
    value = line.substr(i + 1);
    for (char c : value) {
      if (!isTextChar(c)) {
        err = {400, c == '\r' ? "bare CR in head" : "invalid character in header field value"};
        return false;
      }
    }
    if (rawValue != nullptr) *rawValue = value;
    value = trimOws(value);
    return true;
  }

  // "Transfer_Encoding", "Content--Length" and the like: servers that fold '_' into '-' (CGI
  // style) or squeeze separators read them as framing fields. FlowGuard would forward them
  // as ordinary fields next to its own framing, so such a backend would see two framings.
  static bool resemblesFramingField(std::string_view name) {
    // Folding never lengthens a name, and the shorter of the two is 14 long: most names
    // (Host, Accept, User-Agent...) are settled here without a search.
    if (name.size() < 14) return false;
    if (name.find('_') == std::string_view::npos && name.find("--") == std::string_view::npos) return false;
    std::string folded;
    for (char c : name) {
      char d = c == '_' ? '-' : static_cast<char>(c | 0x20);
      if (d == '-' && !folded.empty() && folded.back() == '-') continue;
      folded.push_back(d);
    }
    return folded == "content-length" || folded == "transfer-encoding";
  }

  bool noteTransferEncoding(std::string_view value, ErrorInfo& err) {
    sem.hasTransferEncoding = true;
    if (value.empty()) {
      err = {400, "invalid Transfer-Encoding"};
      return false;
    }
    while (true) {
      size_t comma = value.find(',');
      std::string_view coding = trimOws(value.substr(0, comma));
      if (coding.empty() || !std::all_of(coding.begin(), coding.end(), isTchar)) {
        err = {400, "invalid Transfer-Encoding"};
        return false;
      }
      if (equalsIgnoreCase(coding, "chunked")) {
        if (sem.chunkedSeen) {
          err = {400, "chunked applied more than once"};
          return false;
        }
        sem.chunkedSeen = true;
        sem.chunkedLast = true;
      } else {
        sem.chunkedLast = false;
        sem.unsupportedCoding = true;
      }
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
    return true;
  }

  bool noteField(std::string_view name, std::string_view value, std::string_view rawValue, ErrorInfo& err) {
    if (resemblesFramingField(name)) {
      err = {400, "header name resembles Content-Length or Transfer-Encoding"};
      return false;
    }
    switch (name.size()) {
      case 14:
        if (equalsIgnoreCase(name, "content-length")) {
          if (++sem.contentLengthCount > 1) {
            err = {400, "multiple Content-Length fields"};
            return false;
          }
          if (value.empty()) {
            err = {400, "invalid Content-Length"};
            return false;
          }
          uint64_t v = 0;
          for (char c : value) {
            if (!isDigit(c) || v > (std::numeric_limits<uint64_t>::max() - 9) / 10) {
              err = {400, "invalid Content-Length"};
              return false;
            }
            v = v * 10 + static_cast<uint64_t>(c - '0');
          }
          sem.contentLength = v;
          sem.contentLengthTrailingTab = rawValue.find('\t') != std::string_view::npos;
        }
        break;
      case 17:
        if (equalsIgnoreCase(name, "transfer-encoding")) return noteTransferEncoding(value, err);
        break;
      case 4:
        if (isRequest() && equalsIgnoreCase(name, "host")) {
          if (++sem.hostCount > 1) {
            err = {400, "multiple Host fields"};
            return false;
          }
          if (!value.empty() && !isValidAuthority(value, false)) {
            err = {400, "invalid Host"};
            return false;
          }
        }
        break;
      case 10:
        if (equalsIgnoreCase(name, "connection")) {
          while (!value.empty()) {
            size_t comma = value.find(',');
            std::string_view token = trimOws(value.substr(0, comma));
            if (equalsIgnoreCase(token, "close")) sem.connectionClose = true;
            if (equalsIgnoreCase(token, "keep-alive")) sem.connectionKeepAlive = true;
            if (comma == std::string_view::npos) break;
            value.remove_prefix(comma + 1);
          }
        }
        break;
      case 6:
        if (isRequest() && equalsIgnoreCase(name, "expect") && equalsIgnoreCase(value, "100-continue")) {
          sem.expectContinue = true;
        }
        break;
      default:
        break;
    }
    return true;
  }

  enum class ScanOutcome { NeedMore, Complete, Error };

  // Checks the bytes of a line whose end has not arrived yet, so a broken head is refused
  // at once instead of after a header timeout. Each byte is looked at once; the verdicts are
  // those the whole-line checks give, whatever the read boundaries.
  enum class Partial : uint8_t { Method, Target, Version, StatusLine, Name, Value };
  Partial partial = Partial::Method;
  size_t partialPos = 0;   // next byte to check
  size_t partialMark = 0;  // where the target or version started
  bool partialLineSet = false;

  bool checkPartial(const char* base, size_t end, ErrorInfo& err) {
    if (end <= lineStart) return true;
    if (base[end - 1] == '\r') --end;  // may still be followed by its LF
    if (!partialLineSet || partialPos < lineStart) {
      partialLineSet = true;
      partialPos = lineStart;
      partial = lineCount > 0 ? Partial::Name : (isRequest() ? Partial::Method : Partial::StatusLine);
    }
    for (; partialPos < end; ++partialPos) {
      char c = base[partialPos];
      if (c == '\r') {
        err = {400, "bare CR in head"};
        return false;
      }
      bool first = partialPos == lineStart;
      switch (partial) {
        case Partial::Method:
          if (c == ' ') {
            if (first) {
              err = {400, "invalid request line"};
              return false;
            }
            partial = Partial::Target;
            partialMark = partialPos + 1;
          } else if (!isTchar(c)) {
            err = {400, "invalid method"};
            return false;
          }
          break;
        case Partial::Target:
          if (c == ' ') {
            if (partialPos == partialMark) {
              err = {400, "invalid request line"};
              return false;
            }
            partial = Partial::Version;
            partialMark = partialPos + 1;
          } else if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
            err = {400, "invalid character in request target"};
            return false;
          }
          break;
        case Partial::Version: {
          size_t i = partialPos - partialMark;
          bool ok = i < 5 ? c == "HTTP/"[i] : (i == 5 || i == 7) ? isDigit(c) : i == 6 && c == '.';
          if (!ok) {
            err = {400, "invalid HTTP version"};
            return false;
          }
          if (i == 7 && !checkVersion(std::string_view(base + partialMark, 8), err)) return false;
          break;
        }
        case Partial::StatusLine:
          break;  // upstream status lines are checked whole
        case Partial::Name:
          if (first && isWs(c)) {
            err = {400, "obsolete line folding"};
            return false;
          }
          if (c == ':') {
            if (first) {
              err = {400, "empty header field name"};
              return false;
            }
            partial = Partial::Value;
          } else if (!isTchar(c)) {
            err = {400, isWs(c) ? "whitespace before colon in header field"
                                : "invalid character in header field name"};
            return false;
          }
          break;
        case Partial::Value:
          if (!isTextChar(c)) {
            err = {400, "invalid character in header field value"};
            return false;
          }
          break;
      }
    }
    return true;
  }

  // Validates every complete line in base[scanPos, avail) and looks for the empty line that
  // ends the head. Resumes where it stopped, so a head arriving in pieces is scanned once.
  ScanOutcome scanHead(const char* base, size_t avail, ErrorInfo& err) {
    const size_t limit = p.limits_.maxHeaderBytes;
    while (scanPos < avail) {
      const void* found = std::memchr(base + scanPos, '\n', avail - scanPos);
      if (found == nullptr) {
        scanPos = avail;
        break;
      }
      size_t lf = static_cast<size_t>(static_cast<const char*>(found) - base);
      if (lf == lineStart || base[lf - 1] != '\r') {
        // As for a bare CR below: an earlier error in the line wins, as it would when split.
        if (!checkPartial(base, lf, err)) return ScanOutcome::Error;
        err = {400, "bare LF in head"};
        return ScanOutcome::Error;
      }
      if (lf + 1 > limit) {
        // Report what a reader seeing this line in pieces would have found first.
        if (!checkPartial(base, limit, err)) return ScanOutcome::Error;
        err = {431, "request header fields too large"};
        return ScanOutcome::Error;
      }
      std::string_view line(base + lineStart, lf - 1 - lineStart);
      if (const void* cr = std::memchr(line.data(), '\r', line.size())) {
        // A bare CR: report what a reader seeing this line in pieces would have found first
        // (an earlier error in the line, else the CR itself).
        const size_t at = static_cast<size_t>(static_cast<const char*>(cr) - base);
        if (!checkPartial(base, at + 2, err)) return ScanOutcome::Error;
        err = {400, "bare CR in head"};
        return ScanOutcome::Error;
      }
      scanPos = lineStart = lf + 1;
      if (line.empty()) {
        if (lineCount == 0) {  // RFC 9112 2.2: ignore empty lines before the start line
          headStart = scanPos;
          continue;
        }
        headEnd = scanPos;
        return finishScan(err) ? ScanOutcome::Complete : ScanOutcome::Error;
      }
      if (!checkNoCr(line, err)) return ScanOutcome::Error;
      if (lineCount == 0) {
        if (!(isRequest() ? checkRequestLine(line, err) : checkStatusLine(line, err)))
          return ScanOutcome::Error;
      } else {
        std::string_view name, value, rawValue;
        if (!splitField(line, name, value, err, &rawValue)) return ScanOutcome::Error;
        if (lineCount > p.limits_.maxHeaders) {
          err = {431, "too many header fields"};
          return ScanOutcome::Error;
        }
        if (!noteField(name, value, rawValue, err)) return ScanOutcome::Error;
      }
      ++lineCount;
    }
    if (!checkPartial(base, std::min(avail, limit), err)) return ScanOutcome::Error;
    if (avail >= limit) {
      err = {431, "request header fields too large"};
      return ScanOutcome::Error;
    }
    return ScanOutcome::NeedMore;
  }

  // Framing rules that need the whole head (RFC 9112 6.1-6.3).
  bool finishScan(ErrorInfo& err) {
    if (sem.hasTransferEncoding) {
      if (sem.contentLengthCount > 0) {
        err = {400, "Content-Length with Transfer-Encoding"};
        return false;
      }
      if (sem.versionMinor == 0) {
        err = {400, "Transfer-Encoding in HTTP/1.0"};
        return false;
      }
      if (!sem.chunkedLast) {
        err = {400, "last transfer coding is not chunked"};
        return false;
      }
      if (sem.unsupportedCoding) {
        err = {501, "unsupported transfer coding"};
        return false;
      }
    }
    if (isRequest() && sem.versionMinor == 1 && sem.hostCount == 0) {
      err = {400, "missing Host"};
      return false;
    }
    return true;
  }

  // ---- llhttp: start line and fields into the head ------------------------------------------

  static Impl& self(llhttp_t* parser) { return *static_cast<Impl*>(parser->data); }

  static int onMethod(llhttp_t* parser, const char* at, size_t len) {
    self(parser).p.request_.method.append(at, len);
    return 0;
  }
  static int onUrl(llhttp_t* parser, const char* at, size_t len) {
    self(parser).p.request_.target.append(at, len);
    return 0;
  }
  static int onStatus(llhttp_t* parser, const char* at, size_t len) {
    self(parser).p.response_.reason.append(at, len);
    return 0;
  }
  static int onHeaderField(llhttp_t* parser, const char* at, size_t len) {
    Impl& s = self(parser);
    if (s.inFieldName) {
      s.llHeaders->back().name.append(at, len);
      return 0;
    }
    // The previous message's fields were cleared, not freed (see HeaderMap): their strings
    // are reused, no allocation in steady state.
    s.llHeaders->append().name.assign(at, len);
    ++s.fieldCount;
    s.inFieldName = true;
    return 0;
  }
  static int onHeaderValue(llhttp_t* parser, const char* at, size_t len) {
    Impl& s = self(parser);
    s.inFieldName = false;
    s.llHeaders->back().value.append(at, len);
    return 0;
  }
  static int onHeadersComplete(llhttp_t*) { return HPE_PAUSED; }

  bool runLlhttp(const char* head, size_t len, ErrorInfo& err) {
    if (isRequest()) {
      p.request_.method.clear();
      p.request_.target.clear();
      llHeaders = &p.request_.headers;
    } else {
      p.response_.reason.clear();
      llHeaders = &p.response_.headers;
    }
    llHeaders->clear();
    fieldCount = 0;
    inFieldName = false;
    llhttp_reset(&llp);
    llp.data = this;
    llhttp_errno_t rc = llhttp_execute(&llp, head, len);
    HeaderMap& fields = *llHeaders;
    if (rc != HPE_PAUSED || llhttp_get_error_pos(&llp) != head + len) {
      err = {rc == HPE_INVALID_METHOD ? 501 : 400,
             rc == HPE_INVALID_METHOD ? "unknown method" : "malformed head"};
      return false;
    }
    // Both parsers must agree on the field count, or one of them saw a different message.
    if (fieldCount + 1 != lineCount) {
      err = {400, "malformed head"};
      return false;
    }
    for (Header& h : fields) {
      size_t end = h.value.size();
      while (end > 0 && isWs(h.value[end - 1])) --end;
      size_t begin = 0;
      while (begin < end && isWs(h.value[begin])) ++begin;
      if (end != h.value.size()) h.value.resize(end);
      if (begin != 0) h.value.erase(0, begin);
    }
    return true;
  }

  // Fills the head after a complete, checked head; returns false on error.
  bool buildHead(const char* base, ErrorInfo& err) {
    const char* head = base + headStart;
    size_t headLen = headEnd - headStart;
    if (sem.contentLengthTrailingTab) {
      // llhttp 8.1 refuses "Content-Length: 42<HTAB>" although HTAB is OWS; hand it a copy
      // with that OWS turned into SP (the value is trimmed either way). Rare, so a copy is fine.
      scratch.assign(head, headLen);
      size_t pos = 0;
      while (pos < scratch.size()) {
        size_t eol = scratch.find("\r\n", pos);
        std::string_view line(scratch.data() + pos, eol - pos);
        size_t colon = line.find(':');
        if (colon != std::string_view::npos && equalsIgnoreCase(line.substr(0, colon), "content-length")) {
          std::replace(scratch.begin() + static_cast<std::ptrdiff_t>(pos + colon),
                       scratch.begin() + static_cast<std::ptrdiff_t>(eol), '\t', ' ');
        }
        pos = eol + 2;
      }
      head = scratch.data();
    }
    if (!runLlhttp(head, headLen, err)) return false;
    p.trailers_.clear();
    bodyTotal = 0;
    if (isRequest()) {
      RequestHead& r = p.request_;
      r.versionMinor = llp.http_minor;
      r.contentLength = sem.contentLength;
      if (sem.hasTransferEncoding) {
        r.framing = BodyFraming::Chunked;
      } else if (sem.contentLengthCount > 0) {
        r.framing = BodyFraming::ContentLength;
      } else {
        r.framing = BodyFraming::None;
      }
      r.keepAlive =
          r.versionMinor == 1 ? !sem.connectionClose : (sem.connectionKeepAlive && !sem.connectionClose);
      r.expectContinue = sem.expectContinue;
      if (!sem.isConnect && r.target.front() != '/' && r.target != "*") toOriginForm(r);
    } else {
      ResponseHead& r = p.response_;
      r.status = llp.status_code;
      r.versionMinor = llp.http_minor;
      r.contentLength = sem.contentLength;
      if (p.requestWasHead_ || r.status < 200 || r.status == 204 || r.status == 304) {
        r.framing = BodyFraming::None;
      } else if (sem.hasTransferEncoding) {
        r.framing = BodyFraming::Chunked;
      } else if (sem.contentLengthCount > 0) {
        r.framing = BodyFraming::ContentLength;
      } else {
        r.framing = BodyFraming::UntilClose;
      }
      r.keepAlive =
          r.framing != BodyFraming::UntilClose &&
          (r.versionMinor == 1 ? !sem.connectionClose : (sem.connectionKeepAlive && !sem.connectionClose));
    }
    BodyFraming framing = isRequest() ? p.request_.framing : p.response_.framing;
    if (framing == BodyFraming::ContentLength && sem.contentLength > p.limits_.maxBodyBytes) {
      err = {413, "body too large"};
      return false;
    }
    return true;
  }

  // An absolute-form target ("http://internal.example/status") becomes origin form
  // ("/status") and its authority the Host (RFC 9112 3.2.2: the target's host wins over the
  // Host field), as nginx and HAProxy do: routing, auth and the upstream then all see the
  // same path and host. checkRequestLine already made sure it is http(s)://authority[/?...].
  static void toOriginForm(RequestHead& r) {
    const size_t authorityStart = r.target.find("://") + 3;
    const size_t authorityEnd = std::min(r.target.find_first_of("/?", authorityStart), r.target.size());
    r.headers.set("host", std::string_view(r.target).substr(authorityStart, authorityEnd - authorityStart));
    std::string_view rest = std::string_view(r.target).substr(authorityEnd);
    std::string origin;
    origin.reserve(rest.size() + 1);
    if (!rest.starts_with('/')) origin.push_back('/');
    origin.append(rest);
    r.target = std::move(origin);
  }

  // Consumes head bytes from data; on Complete, `consumed` ends right after the head.
  ScanOutcome stepHead(const char* data, size_t len, size_t& consumed, ErrorInfo& err) {
    const size_t cap = p.limits_.maxHeaderBytes + 1;  // enough to prove the limit was crossed
    if (headBuf.empty()) {
      // Fast path: the whole head is usually in one read; check and parse it in place.
      size_t avail = std::min(len, cap);
      ScanOutcome o = scanHead(data, avail, err);
      if (o == ScanOutcome::Complete) {
        consumed = headEnd;
        if (!buildHead(data, err)) return ScanOutcome::Error;
      } else if (o == ScanOutcome::NeedMore) {
        headBuf.assign(data, avail);
        consumed = avail;
      }
      return o;
    }
    size_t old = headBuf.size();
    size_t take = std::min(len, cap - old);
    headBuf.append(data, take);
    ScanOutcome o = scanHead(headBuf.data(), headBuf.size(), err);
    if (o == ScanOutcome::Complete) {
      consumed = headEnd - old;
      if (!buildHead(headBuf.data(), err)) return ScanOutcome::Error;
    } else if (o == ScanOutcome::NeedMore) {
      consumed = take;
    }
    return o;
  }

  // ---- chunked body ---------------------------------------------------------------------

  void startChunkLine() {
    chunkLine = ChunkLineState::Size;
    chunkLineLen = 0;
    chunkSize = 0;
    chunkSizeDigits = false;
  }

  enum class LineOutcome { NeedMore, Complete, Error };

  // Strict chunk-size line: 1*HEXDIG *( BWS ";" BWS name [ BWS "=" BWS value ] ) CRLF, with no
  // whitespace directly after the size and none before the CRLF.
  LineOutcome stepChunkLine(const char* data, size_t len, size_t& off, ErrorInfo& err) {
    using S = ChunkLineState;
    while (off < len) {
      char c = data[off++];
      if (++chunkLineLen > kMaxChunkLine) {
        err = {400, "chunk line too long"};
        return LineOutcome::Error;
      }
      bool ok = true;
      switch (chunkLine) {
        case S::Size: {
          int h = hexValue(c);
          if (h >= 0) {
            if (chunkSize > (kMaxChunkSize - static_cast<uint64_t>(h)) / 16) {
              err = {400, "chunk size too large"};
              return LineOutcome::Error;
            }
            chunkSize = chunkSize * 16 + static_cast<uint64_t>(h);
            chunkSizeDigits = true;
          } else if (chunkSizeDigits && c == '\r') {
            chunkLine = S::AwaitLf;
          } else if (chunkSizeDigits && c == ';') {
            chunkLine = S::ExtSemi;
          } else {
            err = {400, "invalid chunk size"};
            return LineOutcome::Error;
          }
          break;
        }
        case S::ExtSemi:
          if (isTchar(c)) {
            chunkLine = S::ExtName;
          } else {
            ok = isWs(c);
          }
          break;
        case S::ExtName:
          if (isWs(c)) {
            chunkLine = S::ExtAfterName;
          } else if (c == '=') {
            chunkLine = S::ExtEquals;
          } else if (c == ';') {
            chunkLine = S::ExtSemi;
          } else if (c == '\r') {
            chunkLine = S::AwaitLf;
          } else {
            ok = isTchar(c);
          }
          break;
        case S::ExtAfterName:
          if (c == '=') {
            chunkLine = S::ExtEquals;
          } else if (c == ';') {
            chunkLine = S::ExtSemi;
          } else {
            ok = isWs(c);
          }
          break;
        case S::ExtEquals:
          if (c == '"') {
            chunkLine = S::ExtQuoted;
          } else if (isTchar(c)) {
            chunkLine = S::ExtToken;
          } else {
            ok = isWs(c);
          }
          break;
        case S::ExtToken:
          if (isWs(c)) {
            chunkLine = S::ExtAfterValueWs;
          } else if (c == ';') {
            chunkLine = S::ExtSemi;
          } else if (c == '\r') {
            chunkLine = S::AwaitLf;
          } else {
            ok = isTchar(c);
          }
          break;
        case S::ExtQuoted:
          if (c == '"') {
            chunkLine = S::ExtAfterQuoted;
          } else if (c == '\\') {
            chunkLine = S::ExtQuotedPair;
          } else {
            ok = isTextChar(c);  // qdtext: HTAB, SP, VCHAR except '"' and '\', obs-text
          }
          break;
        case S::ExtQuotedPair:
          ok = isTextChar(c);
          chunkLine = S::ExtQuoted;
          break;
        case S::ExtAfterQuoted:
          if (isWs(c)) {
            chunkLine = S::ExtAfterValueWs;
          } else if (c == ';') {
            chunkLine = S::ExtSemi;
          } else if (c == '\r') {
            chunkLine = S::AwaitLf;
          } else {
            ok = false;
          }
          break;
        case S::ExtAfterValueWs:
          if (c == ';') {
            chunkLine = S::ExtSemi;
          } else {
            ok = isWs(c);
          }
          break;
        case S::AwaitLf:
          if (c != '\n') {
            err = {400, "bare CR in chunk line"};
            return LineOutcome::Error;
          }
          return LineOutcome::Complete;
      }
      if (!ok) {
        err = {400, "invalid chunk extension"};
        return LineOutcome::Error;
      }
    }
    return LineOutcome::NeedMore;
  }

  // Trailer section after the last chunk; lines are copied (they are rare and small).
  LineOutcome stepTrailers(const char* data, size_t len, size_t& off, ErrorInfo& err) {
    while (off < len) {
      const void* found = std::memchr(data + off, '\n', len - off);
      size_t end = found ? static_cast<size_t>(static_cast<const char*>(found) - data) + 1 : len;
      trailerBytes += end - off;
      if (trailerBytes > p.limits_.maxHeaderBytes) {
        err = {431, "trailer section too large"};
        return LineOutcome::Error;
      }
      trailerLine.append(data + off, end - off);
      off = end;
      if (found == nullptr) break;
      if (trailerLine.size() < 2 || trailerLine[trailerLine.size() - 2] != '\r') {
        err = {400, "bare LF in trailers"};
        return LineOutcome::Error;
      }
      std::string_view line(trailerLine.data(), trailerLine.size() - 2);
      if (line.empty()) return LineOutcome::Complete;
      std::string_view name, value;
      if (!checkNoCr(line, err) || !splitField(line, name, value, err)) return LineOutcome::Error;
      if (p.trailers_.size() >= p.limits_.maxHeaders) {
        err = {431, "too many trailer fields"};
        return LineOutcome::Error;
      }
      p.trailers_.add(name, value);
      trailerLine.clear();
    }
    return LineOutcome::NeedMore;
  }

  Result bodyEvent(const char* data, size_t off, size_t n) {
    p.body_ = std::string_view(data + off, n);
    return {Event::Body, off + n};
  }

  // ---- driver ---------------------------------------------------------------------------

  Result parse(const char* data, size_t len) {
    if (data == nullptr) len = 0;
    size_t off = 0;
    ErrorInfo err{400, ""};
    while (true) {
      switch (state) {
        case State::Failed:
          return {Event::Error, 0};

        case State::Head: {
          if (off == len) return {Event::NeedMore, off};
          size_t used = 0;
          ScanOutcome o = stepHead(data + off, len - off, used, err);
          if (o == ScanOutcome::Error) return fail(err);
          off += used;
          if (o == ScanOutcome::NeedMore) return {Event::NeedMore, off};
          resetHead();
          if (!isRequest() && p.response_.status < 200 && p.response_.status != 101) {
            continue;  // interim response: the real one follows
          }
          state = State::HeadDone;
          p.body_ = {};
          return {Event::HeadComplete, off};
        }

        case State::HeadDone: {
          BodyFraming framing = isRequest() ? p.request_.framing : p.response_.framing;
          switch (framing) {
            case BodyFraming::None:
              return completeMessage(off);
            case BodyFraming::ContentLength:
              remaining = isRequest() ? p.request_.contentLength : p.response_.contentLength;
              state = State::BodyLength;
              break;
            case BodyFraming::Chunked:
              startChunkLine();
              state = State::ChunkLine;
              break;
            case BodyFraming::UntilClose:
              state = State::BodyUntilClose;
              break;
          }
          break;
        }

        case State::BodyLength: {
          if (remaining == 0) return completeMessage(off);
          if (off == len) return {Event::NeedMore, off};
          size_t n = static_cast<size_t>(std::min<uint64_t>(remaining, len - off));
          remaining -= n;
          return bodyEvent(data, off, n);
        }

        case State::BodyUntilClose: {
          if (off == len) return {Event::NeedMore, off};
          size_t n = len - off;
          if (n > p.limits_.maxBodyBytes - bodyTotal) {
            // Up to the limit first, then the error with the byte beyond it: the same events
            // whether the body came in one read or in many.
            if (bodyTotal == p.limits_.maxBodyBytes) return fail(413, "body too large");
            n = static_cast<size_t>(p.limits_.maxBodyBytes - bodyTotal);
          }
          bodyTotal += n;
          return bodyEvent(data, off, n);
        }

        case State::ChunkLine: {
          LineOutcome o = stepChunkLine(data, len, off, err);
          if (o == LineOutcome::Error) return fail(err);
          if (o == LineOutcome::NeedMore) return {Event::NeedMore, off};
          if (chunkSize == 0) {
            trailerLine.clear();
            trailerBytes = 0;
            state = State::Trailers;
          } else {
            if (chunkSize > p.limits_.maxBodyBytes || bodyTotal > p.limits_.maxBodyBytes - chunkSize) {
              return fail(413, "body too large");
            }
            bodyTotal += chunkSize;
            remaining = chunkSize;
            state = State::ChunkData;
          }
          break;
        }

        case State::ChunkData: {
          if (off == len) return {Event::NeedMore, off};
          size_t n = static_cast<size_t>(std::min<uint64_t>(remaining, len - off));
          remaining -= n;
          if (remaining == 0) state = State::ChunkDataCR;
          return bodyEvent(data, off, n);
        }

        case State::ChunkDataCR:
        case State::ChunkDataLF: {
          if (off == len) return {Event::NeedMore, off};
          char want = state == State::ChunkDataCR ? '\r' : '\n';
          if (data[off] != want) return fail(400, "missing CRLF after chunk data");
          ++off;
          if (state == State::ChunkDataCR) {
            state = State::ChunkDataLF;
          } else {
            startChunkLine();
            state = State::ChunkLine;
          }
          break;
        }

        case State::Trailers: {
          LineOutcome o = stepTrailers(data, len, off, err);
          if (o == LineOutcome::Error) return fail(err);
          if (o == LineOutcome::NeedMore) return {Event::NeedMore, off};
          trailerLine.clear();
          return completeMessage(off);
        }
      }
    }
  }

  Result finish() {
    switch (state) {
      case State::Failed:
        return {Event::Error, 0};
      case State::Head:
        if (scanPos == headStart) {
          resetHead();
          return {Event::NeedMore, 0};
        }
        return fail(400, "connection closed inside the head");
      case State::HeadDone: {
        BodyFraming framing = isRequest() ? p.request_.framing : p.response_.framing;
        uint64_t cl = isRequest() ? p.request_.contentLength : p.response_.contentLength;
        if (framing == BodyFraming::None || framing == BodyFraming::UntilClose ||
            (framing == BodyFraming::ContentLength && cl == 0)) {
          return completeMessage(0);
        }
        return fail(400, "connection closed inside the body");
      }
      case State::BodyLength:
        if (remaining == 0) return completeMessage(0);
        return fail(400, "connection closed inside the body");
      case State::BodyUntilClose:
        return completeMessage(0);
      default:
        return fail(400, "connection closed inside the chunked body");
    }
  }
};

Http1Parser::Http1Parser(Kind kind, Limits limits) : kind_(kind), limits_(limits) {
  impl_ = std::make_unique<Impl>(*this);
}

Http1Parser::~Http1Parser() = default;

Http1Parser::Result Http1Parser::parse(const char* data, size_t len) {
  return impl_->parse(data, len);
}

Http1Parser::Result Http1Parser::finish() {
  return impl_->finish();
}

bool Http1Parser::inBody() const {
  using S = Impl::State;
  S s = impl_->state;
  return s != S::Head && s != S::Failed;
}

bool Http1Parser::betweenMessages() const {
  return impl_->state == Impl::State::Head && impl_->scanPos == impl_->headStart;
}

}  // namespace flowguard::core
