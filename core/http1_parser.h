// Strict HTTP/1.1 message parser: llhttp for the start line and header fields, with a
// strict header-block check in front of it, and FlowGuard's own body framing behind it.
//
// Why not let llhttp do it all: Debian's llhttp is 8.1, which accepts inputs that RFC 9112
// says a server must reject (obs-fold, bare LF, CL+TE together, ...). Request smuggling
// lives exactly in those gaps, so the head is checked byte by byte before llhttp sees it,
// and chunked bodies are decoded here with a strict state machine.
//
// Pull style: parse() consumes input up to the next event and tells the caller what
// happened. Body bytes are handed out as a view into the caller's buffer, so they are
// never copied by the parser. One parser per connection; it is not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>

#include "core/http_message.h"

namespace flowguard::core {

class Http1Parser {
 public:
  enum class Kind { Request, Response };

  struct Limits {
    size_t maxHeaderBytes = 16 * 1024;  // request/status line + header fields + final CRLF
    size_t maxHeaders = 100;
    uint64_t maxBodyBytes = std::numeric_limits<uint64_t>::max();  // decoded body bytes
  };

  enum class Event {
    NeedMore,         // everything given was consumed; call again with more bytes
    HeadComplete,     // request() / response() holds the head; body (if any) follows
    Body,             // body() holds decoded body bytes (a view into the input)
    MessageComplete,  // the message is over; trailers() holds chunked trailers if any
    Error,            // errorStatus() / errorReason() say why; the parser stays failed
  };

  struct Result {
    Event event;
    size_t consumed;  // bytes of the input used up to and including this event
  };

  Http1Parser(Kind kind, Limits limits);
  ~Http1Parser();
  Http1Parser(const Http1Parser&) = delete;
  Http1Parser& operator=(const Http1Parser&) = delete;

  // Consumes bytes until the next event. After MessageComplete the next call starts a new
  // message (pipelining): bytes past the end of a message are never consumed with it.
  // After Error every call returns Error with consumed 0.
  Result parse(const char* data, size_t len);

  // End of input (the peer closed). Returns MessageComplete when the message in progress
  // ends at close (a response with BodyFraming::UntilClose), NeedMore when no message is in
  // progress (clean close between messages), or Error for a truncated message.
  Result finish();

  // Response parsing only: the request this response answers was HEAD, so the response
  // has no body whatever its headers say. Set before the response head is parsed.
  void setRequestWasHead(bool wasHead) { requestWasHead_ = wasHead; }

  // Request limits may change between messages (e.g. a route's body limit).
  void setMaxBodyBytes(uint64_t max) { limits_.maxBodyBytes = max; }

  const RequestHead& request() const { return request_; }
  RequestHead& request() { return request_; }
  const ResponseHead& response() const { return response_; }
  ResponseHead& response() { return response_; }
  const HeaderMap& trailers() const { return trailers_; }
  std::string_view body() const { return body_; }

  // True between HeadComplete and MessageComplete.
  bool inBody() const;
  // True when no byte of a new message has been seen (clean point to close).
  bool betweenMessages() const;

  int errorStatus() const { return errorStatus_; }  // 400, 413, 431, 501 or 502
  const std::string& errorReason() const { return errorReason_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Kind kind_;
  Limits limits_;
  bool requestWasHead_ = false;
  RequestHead request_;
  ResponseHead response_;
  HeaderMap trailers_;
  std::string_view body_;
  int errorStatus_ = 0;
  std::string errorReason_;
  friend struct Impl;
};

}  // namespace flowguard::core
