#include "core/http1_encoder.h"

#include <doctest/doctest.h>

#include "core/http1_parser.h"

using namespace flowguard::core;
using Event = Http1Parser::Event;

namespace {

// Parses one complete message from `wire`; returns the decoded body.
std::string parseOne(Http1Parser& p, const std::string& wire) {
  std::string body;
  const char* d = wire.data();
  size_t n = wire.size();
  for (int guard = 0; guard < 1000; ++guard) {
    auto r = p.parse(d, n);
    d += r.consumed;
    n -= r.consumed;
    if (r.event == Event::Body) body += p.body();
    if (r.event == Event::Error) FAIL("parse error: " << p.errorReason());
    if (r.event == Event::MessageComplete) {
      CHECK(n == 0);
      return body;
    }
    if (r.event == Event::NeedMore) FAIL("message incomplete");
  }
  FAIL("no progress");
  return body;
}

}  // namespace

TEST_CASE("encodeRequestHead") {
  RequestHead h;
  h.method = "POST";
  h.target = "/p?q=1";
  h.versionMinor = 0;  // always HTTP/1.1 on the wire
  h.headers.add("Host", "example.com");
  h.headers.add("Content-Length", "3");
  std::string out = "prefix|";
  encodeRequestHead(h, out);
  CHECK(out == "prefix|POST /p?q=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\n");
}

TEST_CASE("encodeResponseHead") {
  ResponseHead h;
  h.status = 404;
  h.headers.add("Content-Length", "0");
  std::string out;
  encodeResponseHead(h, out);
  CHECK(out == "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  out.clear();
  h.status = 299;
  h.reason = "Custom Thing";
  h.headers.clear();
  encodeResponseHead(h, out);
  CHECK(out == "HTTP/1.1 299 Custom Thing\r\n\r\n");
  out.clear();
  h.reason.clear();
  encodeResponseHead(h, out);
  CHECK(out == "HTTP/1.1 299 Unknown\r\n\r\n");
}

TEST_CASE("chunk framing uses lower-case hex") {
  std::string out;
  encodeChunkHeader(1, out);
  encodeChunkHeader(255, out);
  encodeChunkHeader(0xABCDEF, out);
  CHECK(out == "1\r\nff\r\nabcdef\r\n");
  CHECK(kChunkEnd == "\r\n");
  out.clear();
  encodeLastChunk(nullptr, out);
  CHECK(out == "0\r\n\r\n");
  out.clear();
  HeaderMap t;
  t.add("X-Sum", "abc");
  t.add("X-N", "1");
  encodeLastChunk(&t, out);
  CHECK(out == "0\r\nX-Sum: abc\r\nX-N: 1\r\n\r\n");
}

TEST_CASE("request round trip through the parser") {
  RequestHead h;
  h.method = "PUT";
  h.target = "/objects/1?v=2";
  h.headers.add("Host", "backend:8080");
  h.headers.add("Transfer-Encoding", "chunked");
  h.headers.add("X-Empty", "");
  std::string wire;
  encodeRequestHead(h, wire);
  std::string payload(300, 'z');
  for (std::string_view piece : {std::string_view("hello "), std::string_view(payload)}) {
    encodeChunkHeader(piece.size(), wire);
    wire += piece;
    wire += kChunkEnd;
  }
  HeaderMap trailers;
  trailers.add("X-Digest", "sha-256=abc");
  encodeLastChunk(&trailers, wire);

  Http1Parser p(Http1Parser::Kind::Request, {});
  std::string body = parseOne(p, wire);
  CHECK(body == "hello " + payload);
  const RequestHead& r = p.request();
  CHECK(r.method == "PUT");
  CHECK(r.target == "/objects/1?v=2");
  CHECK(r.versionMinor == 1);
  CHECK(r.framing == BodyFraming::Chunked);
  REQUIRE(r.headers.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(r.headers[i].name == h.headers[i].name);
    CHECK(r.headers[i].value == h.headers[i].value);
  }
  REQUIRE(p.trailers().size() == 1);
  CHECK(p.trailers().get("x-digest") == "sha-256=abc");
}

TEST_CASE("response round trip through the parser") {
  ResponseHead h;
  h.status = 503;
  h.headers.add("Content-Length", "4");
  h.headers.add("Retry-After", "1");
  std::string wire;
  encodeResponseHead(h, wire);
  wire += "busy";
  Http1Parser p(Http1Parser::Kind::Response, {});
  CHECK(parseOne(p, wire) == "busy");
  CHECK(p.response().status == 503);
  CHECK(p.response().reason == "Service Unavailable");
  CHECK(p.response().framing == BodyFraming::ContentLength);
  CHECK(p.response().contentLength == 4);
  CHECK(p.response().headers.get("retry-after") == "1");
}
