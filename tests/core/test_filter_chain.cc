#include "core/filter_chain.h"

#include "fake_downstream.h"

#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

using namespace flowguard::core;

namespace {

using Log = std::vector<std::string>;

// A filter whose behaviour each test scripts through the std::function hooks. It logs
// "<name>.req", "<name>.hdr" and "<name>.done" into a log shared by all filters.
class FakeFilter final : public Filter {
 public:
  FakeFilter(std::string name, Log& log) : name_(std::move(name)), log_(log) {}

  FilterStatus onRequest() override {
    log_.push_back(name_ + ".req");
    return onRequestFn ? onRequestFn(*this) : FilterStatus::Continue;
  }
  void onRequestBody(std::string_view data, bool endStream, const HeaderMap* trailers) override {
    body.append(data);
    bodyCalls++;
    if (endStream) bodyEnded = true;
    if (trailers != nullptr) sawTrailers = true;
  }
  FilterStatus onResponseHeaders(ResponseHead& head, bool) override {
    log_.push_back(name_ + ".hdr");
    if (onResponseHeadersFn) onResponseHeadersFn(*this, head);
    return FilterStatus::Continue;
  }
  void onDownstreamWatermark(bool above) override { watermarks.push_back(above); }
  void onComplete(const StreamInfo& info) override {
    log_.push_back(name_ + ".done");
    completeCount++;
    sawDownstreamReset = info.downstreamReset;
    completeStatus = info.responseStatus;
    if (onCompleteFn) onCompleteFn(*this);
  }

  FilterCallbacks& cb() { return callbacks(); }

  std::function<FilterStatus(FakeFilter&)> onRequestFn;
  std::function<void(FakeFilter&, ResponseHead&)> onResponseHeadersFn;
  std::function<void(FakeFilter&)> onCompleteFn;

  std::string body;
  int bodyCalls = 0;
  bool bodyEnded = false;
  bool sawTrailers = false;
  std::vector<bool> watermarks;
  int completeCount = 0;
  bool sawDownstreamReset = false;
  int completeStatus = -1;

 private:
  std::string name_;
  Log& log_;
};

// Owns a chain over N fake filters named a, b, c, ...
struct Harness {
  explicit Harness(size_t n) {
    head.method = "GET";
    head.target = "/x";
    info.requestId = "req-1";
    FilterList list;
    for (size_t i = 0; i < n; ++i) {
      auto filter = std::make_unique<FakeFilter>(std::string(1, static_cast<char>('a' + i)), log);
      filters.push_back(filter.get());
      list.push_back(std::move(filter));
    }
    chain = std::make_unique<FilterChain>(downstream, head, info, std::move(list));
  }

  FakeFilter& f(size_t i) { return *filters.at(i); }
  // Makes filter i answer 200 "ok" from its onRequest, as a terminal filter would.
  void replyOk(size_t i) {
    f(i).onRequestFn = [](FakeFilter& self) {
      ResponseHead response;
      response.status = 200;
      response.framing = BodyFraming::ContentLength;
      response.contentLength = 2;
      self.cb().encodeHeaders(response, false);
      self.cb().encodeData("ok", true);
      return FilterStatus::Stop;
    };
  }
  size_t count(std::string_view entry) const {
    size_t n = 0;
    for (const auto& e : log) n += e == entry ? 1 : 0;
    return n;
  }

  FakeDownstream downstream;
  RequestHead head;
  StreamInfo info;
  Log log;
  std::vector<FakeFilter*> filters;
  std::unique_ptr<FilterChain> chain;
};

Log requestsOnly(const Log& log) {
  Log out;
  for (const auto& e : log) {
    if (e.ends_with(".req")) out.push_back(e);
  }
  return out;
}

Log headersOnly(const Log& log) {
  Log out;
  for (const auto& e : log) {
    if (e.ends_with(".hdr")) out.push_back(e);
  }
  return out;
}

}  // namespace

TEST_CASE("onRequest runs in config order and the terminal filter's response reaches downstream") {
  Harness h(3);
  h.replyOk(2);
  h.chain->start();
  CHECK(requestsOnly(h.log) == Log{"a.req", "b.req", "c.req"});
  CHECK(h.downstream.events == std::vector<std::string>{"headers", "data+end"});
  REQUIRE(h.downstream.heads.size() == 1);
  CHECK(h.downstream.heads[0].status == 200);
  CHECK(h.downstream.body == "ok");
  CHECK(h.info.responseStatus == 200);
  CHECK(h.info.responseBodyBytes == 2);
  CHECK(h.info.localReplyReason.empty());
  CHECK(h.chain->responseStarted());
  CHECK(h.chain->responseComplete());
  CHECK_FALSE(h.chain->completed());
  CHECK(h.chain->loop() == nullptr);
}

TEST_CASE("Stop halts the chain; a later continueChain() resumes with the next filter") {
  Harness h(3);
  h.f(0).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };
  h.replyOk(2);
  h.chain->start();
  CHECK(requestsOnly(h.log) == Log{"a.req"});
  CHECK(h.downstream.events.empty());

  h.f(0).cb().continueChain();
  CHECK(requestsOnly(h.log) == Log{"a.req", "b.req", "c.req"});
  CHECK(h.downstream.heads.size() == 1);
  CHECK(h.downstream.body == "ok");
}

TEST_CASE("two filters stopping in turn are each resumed by their own continueChain()") {
  Harness h(3);
  h.f(0).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };
  h.f(1).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };
  h.replyOk(2);
  h.chain->start();
  h.f(0).cb().continueChain();
  CHECK(requestsOnly(h.log) == Log{"a.req", "b.req"});
  CHECK(h.downstream.events.empty());
  h.f(1).cb().continueChain();
  CHECK(requestsOnly(h.log) == Log{"a.req", "b.req", "c.req"});
  CHECK(h.downstream.body == "ok");
}

TEST_CASE("continueChain() inside onRequest followed by Stop goes on at once, exactly once") {
  Harness h(3);
  h.f(0).onRequestFn = [](FakeFilter& self) {
    self.cb().continueChain();  // e.g. a cache answered synchronously
    return FilterStatus::Stop;
  };
  h.replyOk(2);
  h.chain->start();
  CHECK(requestsOnly(h.log) == Log{"a.req", "b.req", "c.req"});
  CHECK(h.downstream.heads.size() == 1);

  SUBCASE("a late duplicate after the response is ignored") {
    h.f(0).cb().continueChain();
    CHECK(requestsOnly(h.log) == Log{"a.req", "b.req", "c.req"});
    CHECK(h.downstream.heads.size() == 1);
  }
}

TEST_CASE("continueChain() inside onRequest followed by Continue runs the next filter once") {
  Harness h(3);
  h.f(0).onRequestFn = [](FakeFilter& self) {
    self.cb().continueChain();
    return FilterStatus::Continue;
  };
  h.replyOk(2);
  h.chain->start();
  CHECK(requestsOnly(h.log) == Log{"a.req", "b.req", "c.req"});
  CHECK(h.downstream.heads.size() == 1);
}

TEST_CASE("continueChain() when nothing is stopped is ignored") {
  Harness h(3);
  h.replyOk(2);

  SUBCASE("after the chain answered") {
    h.chain->start();
    h.f(0).cb().continueChain();
    h.f(2).cb().continueChain();
    CHECK(requestsOnly(h.log) == Log{"a.req", "b.req", "c.req"});
    CHECK(h.downstream.heads.size() == 1);
    CHECK(h.downstream.resetReasons.empty());
  }
  SUBCASE("before start()") {
    h.f(0).cb().continueChain();
    CHECK(h.log.empty());
    CHECK(h.downstream.events.empty());
    h.chain->start();
    CHECK(requestsOnly(h.log) == Log{"a.req", "b.req", "c.req"});
    CHECK(h.downstream.heads.size() == 1);
  }
}

// The chain hands the same FilterCallbacks to every filter, so these cases check that it
// still tells a stray caller apart from the filter that is actually waiting.
TEST_CASE("a second continueChain() from an already resumed filter is ignored") {
  Harness h(3);
  h.f(0).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };
  h.f(1).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };  // e.g. waiting on Redis
  h.replyOk(2);
  h.chain->start();
  h.f(0).cb().continueChain();
  REQUIRE(requestsOnly(h.log) == Log{"a.req", "b.req"});

  h.f(0).cb().continueChain();  // duplicate: b is still waiting
  CHECK(requestsOnly(h.log) == Log{"a.req", "b.req"});
  CHECK(h.downstream.events.empty());
}

TEST_CASE("continueChain() from a filter that returned Continue does not resume a stopped one") {
  Harness h(3);
  h.f(1).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };
  h.replyOk(2);
  h.chain->start();
  REQUIRE(requestsOnly(h.log) == Log{"a.req", "b.req"});

  h.f(0).cb().continueChain();  // a never stopped
  CHECK(requestsOnly(h.log) == Log{"a.req", "b.req"});
  CHECK(h.downstream.events.empty());
}

TEST_CASE("a duplicate continueChain() while the terminal filter waits does not answer 500") {
  Harness h(2);
  h.f(0).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };
  h.f(1).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };  // router: upstream pending
  h.chain->start();
  h.f(0).cb().continueChain();
  REQUIRE(requestsOnly(h.log) == Log{"a.req", "b.req"});

  h.f(0).cb().continueChain();
  CHECK(h.downstream.events.empty());
  CHECK_FALSE(h.chain->responseStarted());
}

TEST_CASE("sendLocalReply inside onRequest short-circuits with a JSON body") {
  Harness h(3);
  FilterStatus returned = FilterStatus::Stop;
  SUBCASE("and returns Stop") {
    returned = FilterStatus::Stop;
  }
  SUBCASE("and returns Continue") {
    returned = FilterStatus::Continue;
  }
  h.f(1).onRequestFn = [returned](FakeFilter& self) {
    self.cb().sendLocalReply(403, "forbidden");
    return returned;
  };
  h.replyOk(2);
  h.chain->start();

  CHECK(requestsOnly(h.log) == Log{"a.req", "b.req"});
  CHECK(h.downstream.events == std::vector<std::string>{"headers", "data+end"});
  REQUIRE(h.downstream.heads.size() == 1);
  const ResponseHead& head = h.downstream.heads[0];
  CHECK(head.status == 403);
  CHECK(head.headers.get("content-type") == "application/json");
  CHECK(head.headers.get("content-length") == std::to_string(h.downstream.body.size()));
  CHECK(head.framing == BodyFraming::ContentLength);
  CHECK(head.contentLength == h.downstream.body.size());

  nlohmann::json body = nlohmann::json::parse(h.downstream.body);
  CHECK(body.size() == 3);
  CHECK(body.at("error") == "forbidden");
  CHECK(body.at("status") == 403);
  CHECK(body.at("request_id") == "req-1");

  CHECK(h.info.responseStatus == 403);
  CHECK(h.info.localReplyReason == "forbidden");
  CHECK(h.chain->responseComplete());
}

TEST_CASE("sendLocalReply after Stop answers asynchronously; a later continueChain() is ignored") {
  Harness h(3);
  h.f(0).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };
  h.replyOk(2);
  h.chain->start();
  h.f(0).cb().sendLocalReply(429, "rate limited");
  h.f(0).cb().continueChain();
  CHECK(requestsOnly(h.log) == Log{"a.req"});
  REQUIRE(h.downstream.heads.size() == 1);
  CHECK(h.downstream.heads[0].status == 429);
  CHECK(nlohmann::json::parse(h.downstream.body).at("error") == "rate limited");
}

TEST_CASE("sendLocalReply with a caller-chosen body") {
  Harness h(1);
  SUBCASE("non-empty body") {
    h.f(0).onRequestFn = [](FakeFilter& self) {
      self.cb().sendLocalReply(201, "text/plain", "created\n");
      return FilterStatus::Stop;
    };
    h.chain->start();
    CHECK(h.downstream.events == std::vector<std::string>{"headers", "data+end"});
    REQUIRE(h.downstream.heads.size() == 1);
    CHECK(h.downstream.heads[0].status == 201);
    CHECK(h.downstream.heads[0].headers.get("content-type") == "text/plain");
    CHECK(h.downstream.heads[0].headers.get("content-length") == "8");
    CHECK(h.downstream.body == "created\n");
    CHECK(h.info.localReplyReason == "status 201");
  }
  SUBCASE("empty body ends the stream with the head") {
    h.f(0).onRequestFn = [](FakeFilter& self) {
      self.cb().sendLocalReply(200, "text/plain", "");
      return FilterStatus::Stop;
    };
    h.chain->start();
    CHECK(h.downstream.events == std::vector<std::string>{"headers+end"});
    REQUIRE(h.downstream.heads.size() == 1);
    CHECK(h.downstream.heads[0].headers.get("content-length") == "0");
    CHECK(h.downstream.heads[0].framing == BodyFraming::None);
    CHECK(h.chain->responseComplete());
  }
  SUBCASE("a 204 has neither Content-Length nor Content-Type (RFC 9110 8.6)") {
    h.f(0).onRequestFn = [](FakeFilter& self) {
      self.cb().sendLocalReply(204, "text/plain", "");
      return FilterStatus::Stop;
    };
    h.chain->start();
    CHECK(h.downstream.events == std::vector<std::string>{"headers+end"});
    REQUIRE(h.downstream.heads.size() == 1);
    CHECK(h.downstream.heads[0].status == 204);
    CHECK_FALSE(h.downstream.heads[0].headers.has("content-length"));
    CHECK_FALSE(h.downstream.heads[0].headers.has("content-type"));
    CHECK(h.downstream.heads[0].framing == BodyFraming::None);
  }
}

TEST_CASE("onResponseHeaders runs in reverse order and its edits reach downstream") {
  Harness h(3);
  h.f(0).onResponseHeadersFn = [](FakeFilter&, ResponseHead& head) {
    head.headers.add("x-ratelimit-remaining", "4");
  };
  h.f(1).onResponseHeadersFn = [](FakeFilter&, ResponseHead& head) {
    // b runs before a: a must see what b did.
    head.headers.add("x-seen-by", "b");
  };

  SUBCASE("proxied response") {
    h.replyOk(2);
    h.chain->start();
    CHECK(headersOnly(h.log) == Log{"c.hdr", "b.hdr", "a.hdr"});
    REQUIRE(h.downstream.heads.size() == 1);
    CHECK(h.downstream.heads[0].status == 200);
  }
  SUBCASE("local reply") {
    h.f(2).onRequestFn = [](FakeFilter& self) {
      self.cb().sendLocalReply(404, "no route");
      return FilterStatus::Stop;
    };
    h.chain->start();
    CHECK(headersOnly(h.log) == Log{"c.hdr", "b.hdr", "a.hdr"});
    REQUIRE(h.downstream.heads.size() == 1);
    CHECK(h.downstream.heads[0].status == 404);
  }
  const HeaderMap& sent = h.downstream.heads.at(0).headers;
  CHECK(sent.get("x-ratelimit-remaining") == "4");
  CHECK(sent.get("x-seen-by") == "b");
  // every onResponseHeaders ran before the head was written
  CHECK(h.downstream.events.at(0).starts_with("headers"));
}

TEST_CASE("onResponseHeaders can change the status before it is recorded") {
  Harness h(2);
  h.f(0).onResponseHeadersFn = [](FakeFilter&, ResponseHead& head) { head.status = 203; };
  h.replyOk(1);
  h.chain->start();
  REQUIRE(h.downstream.heads.size() == 1);
  CHECK(h.downstream.heads[0].status == 203);
  CHECK(h.info.responseStatus == 203);
}

TEST_CASE("onComplete runs exactly once per filter") {
  Harness h(3);

  SUBCASE("after a local reply") {
    h.f(0).onRequestFn = [](FakeFilter& self) {
      self.cb().sendLocalReply(401, "unauthorized");
      return FilterStatus::Stop;
    };
    h.chain->start();
    h.chain->complete();
    CHECK(h.f(0).completeStatus == 401);
  }
  SUBCASE("after encodeData(end)") {
    h.f(2).onRequestFn = [](FakeFilter& self) {
      ResponseHead response;
      self.cb().encodeHeaders(response, false);
      return FilterStatus::Stop;
    };
    h.chain->start();
    h.f(2).cb().encodeData("part", false);
    CHECK_FALSE(h.chain->responseComplete());
    h.f(2).cb().encodeData("end", true);
    CHECK(h.chain->responseComplete());
    h.chain->complete();
    CHECK(h.downstream.body == "partend");
    CHECK(h.info.responseBodyBytes == 7);
  }
  SUBCASE("after encodeTrailers") {
    h.f(2).onRequestFn = [](FakeFilter& self) {
      ResponseHead response;
      response.framing = BodyFraming::Chunked;
      self.cb().encodeHeaders(response, false);
      self.cb().encodeData("chunk", false);
      HeaderMap trailers;
      trailers.add("x-checksum", "abc");
      self.cb().encodeTrailers(trailers);
      return FilterStatus::Stop;
    };
    h.chain->start();
    CHECK(h.chain->responseComplete());
    CHECK(h.downstream.events == std::vector<std::string>{"headers", "data", "trailers"});
    CHECK(h.downstream.lastTrailers.get("x-checksum") == "abc");
    h.chain->complete();
  }
  SUBCASE("after complete() for a client reset while a filter waits") {
    h.f(1).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };
    h.chain->start();
    h.info.downstreamReset = true;
    h.chain->complete();
    CHECK(h.f(0).sawDownstreamReset);
    CHECK(h.f(2).sawDownstreamReset);
    // a late answer from the waiting filter goes nowhere
    h.f(1).cb().continueChain();
    CHECK(h.count("c.req") == 0);
    CHECK(h.downstream.events.empty());
  }
  SUBCASE("when the chain is destroyed without complete()") {
    h.f(0).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };
    h.chain->start();
    CHECK(h.log == Log{"a.req"});
  }
  SUBCASE("when complete() is called twice") {
    h.replyOk(2);
    h.chain->start();
    h.chain->complete();
    h.chain->complete();
  }

  if (h.chain->completed()) {
    // complete() itself ran them, not only the destructor
    CHECK(h.count("a.done") == 1);
    CHECK(h.count("b.done") == 1);
    CHECK(h.count("c.done") == 1);
  }
  // The filters die with the chain; the shared log outlives it.
  h.chain.reset();
  CHECK(h.count("a.done") == 1);
  CHECK(h.count("b.done") == 1);
  CHECK(h.count("c.done") == 1);
}

TEST_CASE("callbacks made from inside onComplete are ignored") {
  Harness h(2);
  h.f(1).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };
  h.f(1).onCompleteFn = [](FakeFilter& self) {
    self.cb().sendLocalReply(500, "too late");
    self.cb().continueChain();
  };
  h.chain->start();
  h.info.downstreamReset = true;
  h.chain->complete();
  CHECK(h.downstream.events.empty());
  CHECK(h.count("b.done") == 1);
}

TEST_CASE("nothing has any effect after complete()") {
  Harness h(3);
  h.f(1).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };
  h.chain->start();
  h.chain->complete();
  REQUIRE(h.chain->completed());
  const Log before = h.log;

  h.f(1).cb().continueChain();
  h.f(1).cb().sendLocalReply(503, "late");
  h.f(1).cb().sendLocalReply(200, "text/plain", "late");
  ResponseHead response;
  h.f(1).cb().encodeHeaders(response, false);
  h.f(1).cb().encodeData("late", true);
  HeaderMap trailers;
  h.f(1).cb().encodeTrailers(trailers);
  h.f(1).cb().startRequestBody();
  h.f(1).cb().pauseRequestBody();
  h.f(1).cb().resumeRequestBody();
  h.f(1).cb().resetStream("late");
  h.chain->deliverBody("abc", true, nullptr);
  h.chain->downstreamWatermark(true);
  h.chain->complete();

  CHECK(h.log == before);
  CHECK(h.downstream.events.empty());
  CHECK(h.info.responseStatus == 0);
  CHECK(h.info.requestBodyBytes == 0);
  CHECK(h.f(2).body.empty());
  CHECK(h.f(0).watermarks.empty());
  CHECK_FALSE(h.chain->responseStarted());
}

TEST_CASE("a chain that ends without a response answers 500") {
  SUBCASE("every filter returns Continue") {
    Harness h(2);
    h.chain->start();
    CHECK(requestsOnly(h.log) == Log{"a.req", "b.req"});
    REQUIRE(h.downstream.heads.size() == 1);
    CHECK(h.downstream.heads[0].status == 500);
    nlohmann::json body = nlohmann::json::parse(h.downstream.body);
    CHECK(body.at("status") == 500);
    CHECK(body.at("request_id") == "req-1");
    CHECK_FALSE(body.at("error").get<std::string>().empty());
    CHECK(h.info.responseStatus == 500);
    CHECK_FALSE(h.info.localReplyReason.empty());
  }
  SUBCASE("the terminal filter returns Continue after an asynchronous resume") {
    Harness h(2);
    h.f(0).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };
    h.chain->start();
    CHECK(h.downstream.events.empty());
    h.f(0).cb().continueChain();
    REQUIRE(h.downstream.heads.size() == 1);
    CHECK(h.downstream.heads[0].status == 500);
  }
  SUBCASE("no filters at all") {
    Harness h(0);
    h.chain->start();
    REQUIRE(h.downstream.heads.size() == 1);
    CHECK(h.downstream.heads[0].status == 500);
  }
}

TEST_CASE("a filter that started a streamed response and returns Continue ends the chain without 500") {
  Harness h(3);
  h.f(1).onRequestFn = [](FakeFilter& self) {
    ResponseHead response;
    response.framing = BodyFraming::Chunked;
    self.cb().encodeHeaders(response, false);
    return FilterStatus::Continue;
  };
  h.chain->start();
  CHECK(requestsOnly(h.log) == Log{"a.req", "b.req"});
  REQUIRE(h.downstream.heads.size() == 1);
  CHECK(h.downstream.heads[0].status == 200);
  CHECK(h.downstream.events == std::vector<std::string>{"headers"});
}

TEST_CASE("sendLocalReply after the response head was sent resets the stream") {
  Harness h(2);
  h.f(1).onRequestFn = [](FakeFilter& self) {
    ResponseHead response;
    response.framing = BodyFraming::Chunked;
    self.cb().encodeHeaders(response, false);
    self.cb().encodeData("partial", false);
    return FilterStatus::Stop;
  };
  h.chain->start();
  h.f(1).cb().sendLocalReply(502, "upstream reset");

  CHECK(h.downstream.events == std::vector<std::string>{"headers", "data", "reset"});
  CHECK(h.downstream.heads.size() == 1);
  CHECK(h.downstream.body == "partial");
  CHECK(h.downstream.resetReasons == std::vector<std::string>{"upstream reset"});
  CHECK(h.info.responseStatus == 200);
  CHECK(h.info.localReplyReason == "upstream reset");
  CHECK(h.chain->responseComplete());

  // and the stream stays dead
  h.f(1).cb().encodeData("more", true);
  h.f(1).cb().sendLocalReply(503, "again");
  CHECK(h.downstream.events.size() == 3);
}

TEST_CASE("resetStream closes downstream and later writes are dropped") {
  Harness h(2);
  h.f(1).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };
  h.chain->start();
  h.f(1).cb().resetStream("upstream protocol error");
  CHECK(h.downstream.resetReasons == std::vector<std::string>{"upstream protocol error"});
  CHECK(h.info.localReplyReason == "upstream protocol error");
  ResponseHead response;
  h.f(1).cb().encodeHeaders(response, true);
  CHECK(h.downstream.events == std::vector<std::string>{"reset"});
}

TEST_CASE("the request body reaches only the last filter and is counted") {
  Harness h(3);
  h.f(2).onRequestFn = [](FakeFilter& self) {
    self.cb().startRequestBody();
    return FilterStatus::Stop;
  };
  h.chain->start();
  CHECK(h.downstream.events == std::vector<std::string>{"startRequestBody"});

  h.f(2).cb().pauseRequestBody();
  h.f(2).cb().resumeRequestBody();
  CHECK(h.downstream.events == std::vector<std::string>{"startRequestBody", "pause", "resume"});

  HeaderMap trailers;
  trailers.add("x-digest", "d");
  h.chain->deliverBody("hello ", false, nullptr);
  CHECK_FALSE(h.f(2).bodyEnded);
  h.chain->deliverBody("world", true, &trailers);

  CHECK(h.f(2).body == "hello world");
  CHECK(h.f(2).bodyCalls == 2);
  CHECK(h.f(2).bodyEnded);
  CHECK(h.f(2).sawTrailers);
  CHECK(h.f(0).bodyCalls == 0);
  CHECK(h.f(1).bodyCalls == 0);
  CHECK(h.info.requestBodyBytes == 11);
}

TEST_CASE("downstream watermarks reach every filter; queued bytes come from downstream") {
  Harness h(3);
  h.f(2).onRequestFn = [](FakeFilter&) { return FilterStatus::Stop; };
  h.chain->start();
  h.chain->downstreamWatermark(true);
  h.chain->downstreamWatermark(false);
  for (size_t i = 0; i < 3; ++i) CHECK(h.f(i).watermarks == std::vector<bool>{true, false});

  h.downstream.queued = 12345;
  CHECK(h.f(2).cb().downstreamQueuedBytes() == 12345);
}

TEST_CASE("FilterChainFactory creates one filter per factory, in order") {
  struct NamedFactory final : FilterFactory {
    NamedFactory(std::string name, Log& log) : name(std::move(name)), log(log) {}
    std::unique_ptr<Filter> create() override { return std::make_unique<FakeFilter>(name, log); }
    std::string name;
    Log& log;
  };
  Log log;
  FilterChainFactory factory;
  factory.add(std::make_unique<NamedFactory>("x", log));
  factory.add(std::make_unique<NamedFactory>("y", log));
  CHECK(factory.size() == 2);
  auto filters = factory.createFilters();
  REQUIRE(filters.size() == 2);
  for (auto& filter : filters) filter->onRequest();
  CHECK(log == Log{"x.req", "y.req"});
  CHECK(factory.createFilters().size() == 2);  // a fresh set per request
}

TEST_CASE("localReplyBody builds valid JSON and escapes what must be escaped") {
  CHECK(localReplyBody(404, "no route", "abc") == R"({"error":"no route","status":404,"request_id":"abc"})");
  CHECK(localReplyBody(400, "bad \"quote\" \\ slash", "") ==
        R"({"error":"bad \"quote\" \\ slash","status":400,"request_id":""})");
  CHECK(localReplyBody(400, "a\nb\rc\td", "id") ==
        R"({"error":"a\nb\rc\td","status":400,"request_id":"id"})");
  CHECK(localReplyBody(400, std::string_view("\x01\x1f\0", 3), "id") ==
        R"({"error":"\u0001\u001f\u0000","status":400,"request_id":"id"})");

  // Round trip through a real JSON parser, including bytes above 0x7f (UTF-8) and DEL.
  const std::string reason = std::string("q\"b\\s/\b\f\x7f caf\xc3\xa9 \x02 end");
  const std::string id = "id\"\n\x1b";
  nlohmann::json parsed = nlohmann::json::parse(localReplyBody(503, reason, id));
  CHECK(parsed.at("error").get<std::string>() == reason);
  CHECK(parsed.at("status") == 503);
  CHECK(parsed.at("request_id").get<std::string>() == id);
}

TEST_CASE("localReplyBody turns invalid UTF-8 into U+FFFD and stays valid JSON") {
  // A reason may quote a client's path verbatim; lone continuation bytes, truncated
  // sequences, overlong forms and surrogates must not make the body unparseable.
  const std::string reason = std::string("p\x80q \xc3 \xe0\x80\x80 \xed\xa0\x80 ok\xe2\x82\xac");
  nlohmann::json parsed;
  REQUIRE_NOTHROW(parsed = nlohmann::json::parse(localReplyBody(404, reason, "id")));
  const std::string error = parsed.at("error").get<std::string>();
  CHECK(error.find("p\xef\xbf\xbdq") == 0);  // U+FFFD in place of the lone 0x80
  CHECK(error.ends_with("ok\xe2\x82\xac"));  // valid multi-byte text is kept as is
  // One U+FFFD per byte that starts no valid sequence: 0x80, the truncated 0xc3, the three
  // bytes of the overlong form and the three of the surrogate.
  size_t replacements = 0;
  for (size_t at = error.find("\xef\xbf\xbd"); at != std::string::npos;
       at = error.find("\xef\xbf\xbd", at + 1)) {
    ++replacements;
  }
  CHECK(replacements == 8);
}
