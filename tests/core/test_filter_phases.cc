// Every phase of the filter chain: request and response data and trailers, stop and
// stop-and-buffer, buffer limits, watermarks through a buffering filter, and a local reply
// from each phase. The connection underneath is a FakeDownstream; body bytes are fed with
// deliverBody() as the connection would.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/filter_chain.h"
#include "fake_downstream.h"

using namespace flowguard::core;

namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// A filter whose body phases each test scripts. Records what each phase saw.
class PhaseFilter final : public Filter {
 public:
  explicit PhaseFilter(uint8_t phases) : phases_(phases) {}

  uint8_t bodyPhases() const override { return phases_; }
  FilterStatus onRequest() override {
    ++requestHeads;
    return onRequestFn ? onRequestFn(*this) : FilterStatus::Continue;
  }
  DataStatus onRequestData(BodyChunk& data, bool endStream) override {
    requestChunks.push_back(std::string(data.view()) + (endStream ? "|end" : ""));
    return requestDataFn ? requestDataFn(*this, data, endStream) : DataStatus::Continue;
  }
  FilterStatus onRequestTrailers(HeaderMap& trailers) override {
    ++requestTrailerCalls;
    return requestTrailersFn ? requestTrailersFn(*this, trailers) : FilterStatus::Continue;
  }
  void onRequestBody(std::string_view data, bool endStream, const HeaderMap* trailers) override {
    terminalBody.append(data);
    terminalCalls.push_back(data.data());
    terminalEnded = endStream;
    if (trailers != nullptr) terminalTrailers = *trailers;
  }
  FilterStatus onResponseHeaders(ResponseHead& head, bool endStream) override {
    ++responseHeads;
    return responseHeadersFn ? responseHeadersFn(*this, head, endStream) : FilterStatus::Continue;
  }
  DataStatus onResponseData(BodyChunk& data, bool endStream) override {
    responseChunks.push_back(std::string(data.view()) + (endStream ? "|end" : ""));
    return responseDataFn ? responseDataFn(*this, data, endStream) : DataStatus::Continue;
  }
  FilterStatus onResponseTrailers(HeaderMap& trailers) override {
    ++responseTrailerCalls;
    return responseTrailersFn ? responseTrailersFn(*this, trailers) : FilterStatus::Continue;
  }
  void onDownstreamWatermark(bool above) override { watermarks.push_back(above); }
  void onComplete(const StreamInfo&) override { ++completes; }

  FilterCallbacks& cb() { return callbacks(); }

  std::function<FilterStatus(PhaseFilter&)> onRequestFn;
  std::function<DataStatus(PhaseFilter&, BodyChunk&, bool)> requestDataFn;
  std::function<FilterStatus(PhaseFilter&, HeaderMap&)> requestTrailersFn;
  std::function<FilterStatus(PhaseFilter&, ResponseHead&, bool)> responseHeadersFn;
  std::function<DataStatus(PhaseFilter&, BodyChunk&, bool)> responseDataFn;
  std::function<FilterStatus(PhaseFilter&, HeaderMap&)> responseTrailersFn;

  int requestHeads = 0;
  std::vector<std::string> requestChunks;
  int requestTrailerCalls = 0;
  std::string terminalBody;
  std::vector<const char*> terminalCalls;  // where each onRequestBody's bytes were
  bool terminalEnded = false;
  HeaderMap terminalTrailers;
  int responseHeads = 0;
  std::vector<std::string> responseChunks;
  int responseTrailerCalls = 0;
  std::vector<bool> watermarks;
  int completes = 0;

 private:
  uint8_t phases_;
};

// A chain of filters with the given body phases; the last is the terminal filter, which
// asks for the body in its onRequest unless told otherwise.
struct Harness {
  explicit Harness(std::vector<uint8_t> phases, size_t bufferLimit = 1 << 20) {
    head.method = "POST";
    head.target = "/upload";
    info.requestId = "req-1";
    FilterList list;
    for (uint8_t p : phases) {
      auto filter = std::make_unique<PhaseFilter>(p);
      filters.push_back(filter.get());
      list.push_back(std::move(filter));
    }
    terminal().onRequestFn = [this](PhaseFilter& self) {
      if (terminalAsksAtOnce) self.cb().startRequestBody();
      return FilterStatus::Stop;
    };
    chain =
        std::make_unique<FilterChain>(downstream, head, info, std::move(list), nullptr, nullptr, bufferLimit);
  }

  PhaseFilter& f(size_t i) { return *filters.at(i); }
  PhaseFilter& terminal() { return *filters.back(); }
  // What went downstream of the response (the body read requests left out).
  std::vector<std::string> responseEvents() const {
    std::vector<std::string> out;
    for (const auto& e : downstream.events) {
      if (e != "startRequestBody" && e != "pause" && e != "resume") out.push_back(e);
    }
    return out;
  }

  // The terminal filter answers with `head` and streams the body pieces.
  void respond(ResponseHead response, const std::vector<std::string>& pieces,
               const HeaderMap* trailers = nullptr) {
    FilterCallbacks& cb = terminal().cb();
    cb.encodeHeaders(response, pieces.empty() && trailers == nullptr);
    for (size_t i = 0; i < pieces.size(); ++i) {
      cb.encodeData(pieces[i], i + 1 == pieces.size() && trailers == nullptr);
    }
    if (trailers != nullptr) cb.encodeTrailers(*trailers);
  }

  bool terminalAsksAtOnce = true;
  FakeDownstream downstream;
  RequestHead head;
  StreamInfo info;
  std::vector<PhaseFilter*> filters;
  std::unique_ptr<FilterChain> chain;
};

ResponseHead okHead(BodyFraming framing, uint64_t length = 0) {
  ResponseHead head;
  head.status = 200;
  head.framing = framing;
  head.contentLength = length;
  if (framing == BodyFraming::ContentLength) head.headers.add("content-length", std::to_string(length));
  return head;
}

DataStatus bufferUntilEnd(PhaseFilter&, BodyChunk&, bool endStream) {
  return endStream ? DataStatus::Continue : DataStatus::StopAndBuffer;
}

}  // namespace

TEST_CASE("filters without body phases are never called on body bytes, and nothing is copied for them") {
  Harness h({kNoBody, kNoBody, kNoBody});
  h.chain->start();
  std::string wire = "hello world";
  h.chain->deliverBody(std::string_view(wire).substr(0, 5), false, nullptr);
  h.chain->deliverBody(std::string_view(wire).substr(5), true, nullptr);
  CHECK(h.f(0).requestChunks.empty());
  CHECK(h.f(1).requestChunks.empty());
  CHECK(h.terminal().terminalBody == "hello world");
  CHECK(h.terminal().terminalEnded);
  REQUIRE(h.terminal().terminalCalls.size() == 2);
  CHECK(h.terminal().terminalCalls[0] == wire.data());  // the connection's own bytes
  CHECK(h.terminal().terminalCalls[1] == wire.data() + 5);

  h.respond(okHead(BodyFraming::Chunked), {"a", "b"});
  CHECK(h.f(0).responseChunks.empty());
  CHECK(h.downstream.body == "ab");
}

TEST_CASE("a filter that only reads the body costs no copy; one that changes it gets its own bytes") {
  Harness h({kRequestBody, kRequestBody, kNoBody});
  h.f(1).requestDataFn = [](PhaseFilter&, BodyChunk& data, bool) {
    if (data.view().starts_with("x")) data.bytes() = upper(data.view());
    return DataStatus::Continue;
  };
  h.chain->start();
  std::string first = "abc";
  std::string second = "xyz";
  h.chain->deliverBody(first, false, nullptr);
  h.chain->deliverBody(second, true, nullptr);
  CHECK(h.f(0).requestChunks == std::vector<std::string>{"abc", "xyz|end"});
  CHECK(h.f(1).requestChunks == std::vector<std::string>{"abc", "xyz|end"});
  CHECK(h.terminal().terminalBody == "abcXYZ");
  REQUIRE(h.terminal().terminalCalls.size() == 2);
  CHECK(h.terminal().terminalCalls[0] == first.data());   // looked at, passed as is
  CHECK(h.terminal().terminalCalls[1] != second.data());  // changed: the chain's copy
  CHECK(second == "xyz");                                 // the connection's bytes untouched
}

TEST_CASE("a filter that stops on request data holds the body until it resumes") {
  Harness h({kRequestBody, kNoBody, kNoBody});
  h.f(0).requestDataFn = [](PhaseFilter&, BodyChunk&, bool) { return DataStatus::StopAndBuffer; };
  h.chain->start();
  h.chain->deliverBody("one,", false, nullptr);
  h.chain->deliverBody("two,", false, nullptr);
  h.chain->deliverBody("three", true, nullptr);
  // Each call sees everything kept so far.
  CHECK(h.f(0).requestChunks == std::vector<std::string>{"one,", "one,two,", "one,two,three|end"});
  CHECK(h.terminal().terminalBody.empty());
  CHECK_FALSE(h.terminal().terminalEnded);

  SUBCASE("resumed later, as after an asynchronous check") {
    h.f(0).cb().continueChain();
    CHECK(h.terminal().terminalBody == "one,two,three");
    CHECK(h.terminal().terminalEnded);
    CHECK(h.terminal().terminalCalls.size() == 1);  // kept bytes go on together
  }
  SUBCASE("a duplicate or foreign continueChain() does not resume it twice") {
    h.f(1).cb().continueChain();  // not stopped on anything
    CHECK(h.terminal().terminalBody.empty());
    h.f(0).cb().continueChain();
    h.f(0).cb().continueChain();
    CHECK(h.terminal().terminalBody == "one,two,three");
    CHECK(h.terminal().terminalCalls.size() == 1);
  }
}

TEST_CASE("a buffering filter that answers Continue mid-body lets everything kept go on, then streams") {
  Harness h({kRequestBody, kNoBody});
  h.f(0).requestDataFn = [](PhaseFilter&, BodyChunk& data, bool) {
    return data.size() < 6 ? DataStatus::StopAndBuffer : DataStatus::Continue;  // wants 6 bytes to judge
  };
  h.chain->start();
  h.chain->deliverBody("abc", false, nullptr);
  CHECK(h.terminal().terminalBody.empty());
  h.chain->deliverBody("def", false, nullptr);
  CHECK(h.terminal().terminalBody == "abcdef");
  h.chain->deliverBody("ghijkl", true, nullptr);
  CHECK(h.f(0).requestChunks == std::vector<std::string>{"abc", "abcdef", "ghijkl|end"});
  CHECK(h.terminal().terminalBody == "abcdefghijkl");
  CHECK(h.terminal().terminalEnded);
}

TEST_CASE("stop-and-buffer beyond the buffer limit answers 413, and the upstream side gets nothing") {
  Harness h({kNoBody, kRequestBody, kNoBody});
  h.f(1).onRequestFn = [](PhaseFilter& self) {
    self.cb().setBufferLimit(10);
    return FilterStatus::Continue;
  };
  h.f(1).requestDataFn = bufferUntilEnd;
  h.chain->start();
  h.chain->deliverBody("123456", false, nullptr);
  CHECK(h.downstream.heads.empty());
  h.chain->deliverBody("7890", false, nullptr);  // exactly the limit: still fine
  CHECK(h.downstream.heads.empty());
  h.chain->deliverBody("X", false, nullptr);
  REQUIRE(h.downstream.heads.size() == 1);
  CHECK(h.downstream.heads[0].status == 413);
  CHECK(h.downstream.body.find("10-byte filter buffer limit") != std::string::npos);
  CHECK(h.info.localReplyReason == "request body larger than the 10-byte filter buffer limit");
  CHECK(h.terminal().terminalBody.empty());
  CHECK(h.chain->responseComplete());
  // Every filter saw the local reply's head.
  CHECK(h.f(0).responseHeads == 1);
  CHECK(h.terminal().responseHeads == 1);
  h.chain->deliverBody("more", true, nullptr);  // the connection drains the rest: ignored
  CHECK(h.f(1).requestChunks.size() == 3);
}

TEST_CASE("the listener's buffer limit applies to a filter that sets none") {
  Harness h({kRequestBody, kNoBody}, 8);
  h.f(0).requestDataFn = bufferUntilEnd;
  h.chain->start();
  h.chain->deliverBody("12345678", false, nullptr);
  CHECK(h.downstream.heads.empty());
  h.chain->deliverBody("9", false, nullptr);
  REQUIRE(h.downstream.heads.size() == 1);
  CHECK(h.downstream.heads[0].status == 413);
}

TEST_CASE("request trailers: a body filter sees and edits them, and they end its buffering") {
  Harness h({kRequestBody, kNoBody});
  h.f(0).requestDataFn = [](PhaseFilter&, BodyChunk&, bool) { return DataStatus::StopAndBuffer; };
  h.f(0).requestTrailersFn = [](PhaseFilter&, HeaderMap& trailers) {
    trailers.add("x-body-checked", "yes");
    return FilterStatus::Continue;
  };
  h.chain->start();
  HeaderMap trailers;
  trailers.add("x-checksum", "abc");
  h.chain->deliverBody("part1", false, nullptr);
  h.chain->deliverBody("", true, &trailers);
  // The last data call says "not the end": trailers follow.
  CHECK(h.f(0).requestChunks == std::vector<std::string>{"part1"});
  CHECK(h.f(0).requestTrailerCalls == 1);
  CHECK(h.terminal().terminalBody == "part1");
  CHECK(h.terminal().terminalEnded);
  CHECK(h.terminal().terminalTrailers.get("x-checksum") == "abc");
  CHECK(h.terminal().terminalTrailers.get("x-body-checked") == "yes");
}

TEST_CASE("a trailers phase that stops holds body and trailers until continueChain()") {
  Harness h({kRequestBody, kNoBody});
  h.f(0).requestTrailersFn = [](PhaseFilter&, HeaderMap&) { return FilterStatus::Stop; };
  h.chain->start();
  HeaderMap trailers;
  trailers.add("x-t", "1");
  h.chain->deliverBody("abc", false, nullptr);
  CHECK(h.terminal().terminalBody == "abc");  // Continue on data: streamed
  h.chain->deliverBody("def", true, &trailers);
  CHECK(h.terminal().terminalBody == "abc");
  CHECK_FALSE(h.terminal().terminalEnded);
  h.f(0).cb().continueChain();
  CHECK(h.terminal().terminalBody == "abcdef");
  CHECK(h.terminal().terminalEnded);
  CHECK(h.terminal().terminalTrailers.get("x-t") == "1");
}

TEST_CASE("a filter reads the whole body before its onRequest decides, then the rest of the chain runs") {
  // As an external authorizer that needs the body: it starts the body read itself.
  Harness h({kRequestBody, kNoBody, kNoBody});
  h.terminalAsksAtOnce = false;
  h.f(0).onRequestFn = [](PhaseFilter& self) {
    self.cb().startRequestBody();
    return FilterStatus::Stop;
  };
  std::string seen;
  h.f(0).requestDataFn = [&](PhaseFilter& self, BodyChunk& data, bool endStream) {
    if (!endStream) return DataStatus::StopAndBuffer;
    seen = std::string(data.view());
    self.cb().continueChain();  // from inside the data phase: lifts the head's stop too
    return DataStatus::StopAndBuffer;
  };
  h.chain->start();
  CHECK(h.downstream.events == std::vector<std::string>{"startRequestBody"});
  h.chain->deliverBody("{\"amount\":", false, nullptr);
  CHECK(h.f(1).requestHeads == 0);
  h.chain->deliverBody("5}", true, nullptr);
  CHECK(seen == "{\"amount\":5}");
  CHECK(h.f(1).requestHeads == 1);
  CHECK(h.terminal().requestHeads == 1);
  // The terminal filter has not asked for the body yet: it waits in the chain.
  CHECK(h.terminal().terminalBody.empty());
  h.terminal().cb().startRequestBody();
  CHECK(h.terminal().terminalBody == "{\"amount\":5}");
  CHECK(h.terminal().terminalEnded);
  CHECK(h.downstream.events == std::vector<std::string>{"startRequestBody"});  // asked once
}

TEST_CASE("body bytes wait for the terminal filter; beyond the limit the client is not read until it asks") {
  Harness h({kNoBody, kNoBody}, 4);
  h.terminalAsksAtOnce = false;
  h.f(0).onRequestFn = [](PhaseFilter& self) {
    self.cb().startRequestBody();
    return FilterStatus::Continue;
  };
  h.chain->start();
  h.chain->deliverBody("abc", false, nullptr);
  CHECK(h.downstream.events == std::vector<std::string>{"startRequestBody"});
  h.chain->deliverBody("def", false, nullptr);
  CHECK(h.downstream.events == std::vector<std::string>{"startRequestBody", "pause"});
  CHECK(h.downstream.heads.empty());  // no 413: the terminal filter will take it
  h.terminal().cb().startRequestBody();
  CHECK(h.terminal().terminalBody == "abcdef");
  CHECK(h.downstream.events == std::vector<std::string>{"startRequestBody", "pause", "resume"});

  SUBCASE("the terminal filter's own pause is kept across the chain's") {
    h.terminal().cb().pauseRequestBody();
    CHECK(h.downstream.events.back() == "pause");
    h.terminal().cb().pauseRequestBody();  // already paused: nothing more
    CHECK(h.downstream.events.size() == 4);
    h.terminal().cb().resumeRequestBody();
    CHECK(h.downstream.events.back() == "resume");
  }
}

TEST_CASE(
    "response data transformed chunk by chunk: chunked upstream, and a content-length one made chunked") {
  Harness h({kResponseBody, kNoBody});
  h.f(0).responseHeadersFn = [](PhaseFilter&, ResponseHead& head, bool) {
    head.headers.remove("content-length");  // the length changes: the filter fixes the head
    head.framing = BodyFraming::Chunked;
    return FilterStatus::Continue;
  };
  h.f(0).responseDataFn = [](PhaseFilter&, BodyChunk& data, bool) {
    std::string& bytes = data.bytes();
    bytes = "[" + upper(bytes) + "]";
    return DataStatus::Continue;
  };
  h.chain->start();
  h.chain->deliverBody("", true, nullptr);

  SUBCASE("chunked upstream") {
    h.respond(okHead(BodyFraming::Chunked), {"ab", "cd"});
  }
  SUBCASE("content-length upstream") {
    h.respond(okHead(BodyFraming::ContentLength, 4), {"ab", "cd"});
  }
  REQUIRE(h.downstream.heads.size() == 1);
  CHECK_FALSE(h.downstream.heads[0].headers.has("content-length"));
  CHECK(h.downstream.heads[0].framing == BodyFraming::Chunked);
  CHECK(h.downstream.body == "[AB][CD]");
  CHECK(h.f(0).responseChunks == std::vector<std::string>{"ab", "cd|end"});
  CHECK(h.info.responseBodyBytes == 8);
  CHECK(h.chain->responseComplete());
}

TEST_CASE("a filter holds the head, buffers the whole response, rewrites it and sets the new length") {
  Harness h({kNoBody, kResponseBody, kNoBody});
  h.f(1).responseHeadersFn = [](PhaseFilter& self, ResponseHead&, bool) {
    CHECK(self.cb().heldResponseHead() == nullptr);  // not held yet while it decides
    return FilterStatus::Stop;
  };
  h.f(1).responseDataFn = [](PhaseFilter& self, BodyChunk& data, bool endStream) {
    if (!endStream) return DataStatus::StopAndBuffer;
    std::string wrapped = "{\"data\":\"" + std::string(data.view()) + "\"}";
    data.bytes() = wrapped;
    ResponseHead* head = self.cb().heldResponseHead();
    REQUIRE(head != nullptr);
    head->headers.set("content-length", std::to_string(wrapped.size()));
    head->contentLength = wrapped.size();
    head->headers.set("content-type", "application/json");
    self.cb().continueChain();
    return DataStatus::Continue;
  };
  h.chain->start();
  h.chain->deliverBody("", true, nullptr);

  SUBCASE("content-length upstream") {
    h.respond(okHead(BodyFraming::ContentLength, 6), {"abc", "def"});
  }
  SUBCASE("chunked upstream") {
    h.respond(okHead(BodyFraming::Chunked), {"ab", "cd", "ef"});
  }
  REQUIRE(h.downstream.heads.size() == 1);
  CHECK(h.downstream.heads[0].headers.get("content-length") == "17");
  CHECK(h.downstream.heads[0].headers.get("content-type") == "application/json");
  CHECK(h.downstream.body == "{\"data\":\"abcdef\"}");
  CHECK(h.responseEvents() == std::vector<std::string>{"headers", "data+end"});
  // The filter before it saw the head only once it was let go.
  CHECK(h.f(0).responseHeads == 1);
  CHECK(h.chain->responseComplete());
}

TEST_CASE("response bytes behind a held head wait there, and go out after it") {
  Harness h({kNoBody, kNoBody});
  h.f(0).responseHeadersFn = [](PhaseFilter&, ResponseHead&, bool) { return FilterStatus::Stop; };
  h.chain->start();
  h.respond(okHead(BodyFraming::ContentLength, 5), {"hel", "lo"});
  CHECK(h.responseEvents().empty());
  h.f(0).cb().continueChain();
  CHECK(h.responseEvents() == std::vector<std::string>{"headers", "data+end"});
  CHECK(h.downstream.body == "hello");
}

TEST_CASE("response buffering beyond the limit: 500 while the head is held, a reset once it was sent") {
  SUBCASE("head held") {
    Harness h({kResponseBody, kNoBody}, 4);
    h.f(0).responseHeadersFn = [](PhaseFilter&, ResponseHead&, bool) { return FilterStatus::Stop; };
    h.f(0).responseDataFn = bufferUntilEnd;
    h.chain->start();
    h.respond(okHead(BodyFraming::ContentLength, 6), {"abc", "def"});
    REQUIRE(h.downstream.heads.size() == 1);
    CHECK(h.downstream.heads[0].status == 500);
    CHECK(h.downstream.body.find("response body larger than the 4-byte filter buffer limit") !=
          std::string::npos);
    CHECK(h.info.responseStatus == 500);
    CHECK(h.chain->responseComplete());
  }
  SUBCASE("head sent") {
    Harness h({kResponseBody, kNoBody}, 4);
    h.f(0).responseDataFn = [](PhaseFilter&, BodyChunk&, bool) { return DataStatus::StopAndBuffer; };
    h.chain->start();
    h.respond(okHead(BodyFraming::ContentLength, 6), {"abc", "def"});
    CHECK(h.responseEvents() == std::vector<std::string>{"headers", "reset"});
    CHECK(h.downstream.resetReasons.at(0).find("4-byte filter buffer limit") != std::string::npos);
  }
}

TEST_CASE("watermarks reach the filters while a buffering filter lets a large body go at once") {
  Harness h({kResponseBody, kNoBody});
  h.f(0).responseDataFn = bufferUntilEnd;
  h.chain->start();
  ResponseHead head = okHead(BodyFraming::Chunked);
  FilterCallbacks& router = h.terminal().cb();
  router.encodeHeaders(head, false);
  router.encodeData(std::string(1000, 'x'), false);
  router.encodeData(std::string(1000, 'y'), false);
  CHECK(h.downstream.body.empty());
  router.encodeData(std::string(1000, 'z'), true);
  CHECK(h.downstream.body.size() == 3000);
  // The connection reports its queue above the watermark: the terminal filter (which
  // pauses its upstream) and the buffering filter both hear it, and then that it drained.
  h.downstream.queued = 3000;
  CHECK(router.downstreamQueuedBytes() == 3000);
  h.chain->downstreamWatermark(true);
  h.chain->downstreamWatermark(false);
  CHECK(h.terminal().watermarks == std::vector<bool>{true, false});
  CHECK(h.f(0).watermarks == std::vector<bool>{true, false});
}

TEST_CASE("response trailers: a body filter edits them; they end its buffering") {
  Harness h({kResponseBody, kNoBody});
  h.f(0).responseDataFn = [](PhaseFilter&, BodyChunk&, bool) { return DataStatus::StopAndBuffer; };
  h.f(0).responseTrailersFn = [](PhaseFilter&, HeaderMap& trailers) {
    trailers.set("grpc-status", "0");
    trailers.add("x-filtered", "1");
    return FilterStatus::Continue;
  };
  h.chain->start();
  HeaderMap trailers;
  trailers.add("grpc-status", "2");
  h.respond(okHead(BodyFraming::Chunked), {"a", "b"}, &trailers);
  CHECK(h.f(0).responseChunks == std::vector<std::string>{"a", "ab"});
  CHECK(h.f(0).responseTrailerCalls == 1);
  CHECK(h.responseEvents() == std::vector<std::string>{"headers", "data", "trailers"});
  CHECK(h.downstream.body == "ab");
  CHECK(h.downstream.lastTrailers.get("grpc-status") == "0");
  CHECK(h.downstream.lastTrailers.get("x-filtered") == "1");
  CHECK(h.chain->responseComplete());
}

TEST_CASE("response trailers with no body filter go straight through") {
  Harness h({kNoBody, kNoBody});
  h.chain->start();
  HeaderMap trailers;
  trailers.add("x-t", "1");
  h.respond(okHead(BodyFraming::Chunked), {"a"}, &trailers);
  CHECK(h.responseEvents() == std::vector<std::string>{"headers", "data", "trailers"});
  CHECK(h.downstream.lastTrailers.get("x-t") == "1");
}

TEST_CASE("a local reply from each phase") {
  auto checkLocal = [](Harness& h, int status) {
    REQUIRE_FALSE(h.downstream.heads.empty());
    CHECK(h.downstream.heads.back().status == status);
    CHECK(h.downstream.body.find("\"status\":" + std::to_string(status)) != std::string::npos);
    CHECK(h.chain->responseComplete());
    CHECK(h.info.responseStatus == status);
  };
  SUBCASE("request data") {
    Harness h({kRequestBody, kNoBody});
    h.f(0).requestDataFn = [](PhaseFilter& self, BodyChunk& data, bool) {
      if (data.view().find("DROP") != std::string_view::npos) self.cb().sendLocalReply(400, "bad body");
      return DataStatus::Continue;
    };
    h.chain->start();
    h.chain->deliverBody("ok ", false, nullptr);
    h.chain->deliverBody("DROP TABLE", false, nullptr);
    checkLocal(h, 400);
    CHECK(h.terminal().terminalBody == "ok ");  // the offending bytes went nowhere
    CHECK(h.downstream.heads.size() == 1);
  }
  SUBCASE("request trailers") {
    Harness h({kRequestBody, kNoBody});
    h.f(0).requestTrailersFn = [](PhaseFilter& self, HeaderMap&) {
      self.cb().sendLocalReply(400, "bad trailer");
      return FilterStatus::Stop;
    };
    h.chain->start();
    HeaderMap trailers;
    trailers.add("x", "y");
    h.chain->deliverBody("abc", true, &trailers);
    checkLocal(h, 400);
    CHECK_FALSE(h.terminal().terminalEnded);
  }
  SUBCASE("response headers: the local reply takes the upstream answer's place") {
    Harness h({kNoBody, kNoBody, kNoBody});
    h.f(1).responseHeadersFn = [](PhaseFilter& self, ResponseHead& head, bool) {
      if (head.status == 200) self.cb().sendLocalReply(502, "upstream answer refused");
      return FilterStatus::Continue;
    };
    h.chain->start();
    h.respond(okHead(BodyFraming::ContentLength, 3), {"abc"});
    checkLocal(h, 502);
    CHECK(h.downstream.heads.size() == 1);
    CHECK(h.downstream.body.find("abc") == std::string::npos);
    CHECK(h.f(0).responseHeads == 0);  // the refused head went no further
  }
  SUBCASE("response data while the head is held") {
    Harness h({kResponseBody, kNoBody});
    h.f(0).responseHeadersFn = [](PhaseFilter&, ResponseHead&, bool) { return FilterStatus::Stop; };
    h.f(0).responseDataFn = [](PhaseFilter& self, BodyChunk&, bool) {
      self.cb().sendLocalReply(503, "body refused");
      return DataStatus::StopAndBuffer;
    };
    h.chain->start();
    h.respond(okHead(BodyFraming::ContentLength, 3), {"abc"});
    checkLocal(h, 503);
    CHECK(h.downstream.heads.size() == 1);
  }
  SUBCASE("response data after the head went out: reset") {
    Harness h({kResponseBody, kNoBody});
    h.f(0).responseDataFn = [](PhaseFilter& self, BodyChunk&, bool) {
      self.cb().sendLocalReply(503, "body refused");
      return DataStatus::Continue;
    };
    h.chain->start();
    h.respond(okHead(BodyFraming::ContentLength, 3), {"abc"});
    CHECK(h.responseEvents() == std::vector<std::string>{"headers", "reset"});
    CHECK(h.info.localReplyReason == "body refused");
  }
  SUBCASE("response trailers: reset") {
    Harness h({kResponseBody, kNoBody});
    h.f(0).responseTrailersFn = [](PhaseFilter& self, HeaderMap&) {
      self.cb().sendLocalReply(500, "trailer refused");
      return FilterStatus::Continue;
    };
    h.chain->start();
    HeaderMap trailers;
    trailers.add("x", "y");
    h.respond(okHead(BodyFraming::Chunked), {"abc"}, &trailers);
    CHECK(h.responseEvents() == std::vector<std::string>{"headers", "data", "reset"});
  }
}

TEST_CASE("every filter's onComplete runs once, whatever phase held bytes when the client left") {
  Harness h({kRequestBody, kResponseBody, kNoBody});
  h.f(0).requestDataFn = [](PhaseFilter&, BodyChunk&, bool) { return DataStatus::StopAndBuffer; };
  h.chain->start();
  h.chain->deliverBody("abc", false, nullptr);
  h.info.downstreamReset = true;
  h.chain->complete();
  for (auto* f : h.filters) CHECK(f->completes == 1);
  h.f(0).cb().continueChain();  // after completion: ignored
  CHECK(h.terminal().terminalBody.empty());
}
