// The filter-chain engine: runs one request's filters through the phases documented in
// core/filter.h. It knows nothing about sockets: the connection underneath implements
// DownstreamStream, so the engine can be unit-tested with a fake.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/dispatcher.h"
#include "core/filter.h"
#include "core/recycler.h"

namespace flowguard::core {

// What the chain needs from the downstream connection. Called on the worker thread.
class DownstreamStream {
 public:
  virtual ~DownstreamStream() = default;
  virtual uv_loop_t* loop() = 0;
  virtual void startRequestBody() = 0;
  virtual void pauseRequestBody() = 0;
  virtual void resumeRequestBody() = 0;
  // The head has already been through every filter's onResponseHeaders.
  virtual void writeHeaders(ResponseHead& head, bool endStream) = 0;
  virtual void writeData(std::string_view data, bool endStream) = 0;
  virtual void writeTrailers(const HeaderMap& trailers) = 0;
  virtual size_t queuedBytes() const = 0;
  virtual void reset(std::string_view reason) = 0;
};

// Hears of every request a chain finished, whichever filter answered it and however far
// the chain got (the request log). Called on the worker thread after the filters' onComplete.
class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  virtual void onRequestComplete(const RequestHead& head, const StreamInfo& info) = 0;
};

// One request's filters, in config order; the list's storage is recycled (core/recycler.h).
using FilterList = std::vector<std::unique_ptr<Filter>, RecyclingAllocator<std::unique_ptr<Filter>>>;

// The filter factories of one listener on one worker, in config order.
class FilterChainFactory {
 public:
  void add(std::unique_ptr<FilterFactory> factory) { factories_.push_back(std::move(factory)); }
  FilterList createFilters() const;
  size_t size() const { return factories_.size(); }
  // Not owned; must outlive every chain made from this factory. Null: none.
  void setObserver(RequestObserver* observer) { observer_ = observer; }
  RequestObserver* observer() const { return observer_; }

 private:
  std::vector<std::unique_ptr<FilterFactory>> factories_;
  RequestObserver* observer_ = nullptr;
};

class FilterChain final : public FilterCallbacks, public DeferredDeletable, public Recycled {
 public:
  // `factory`, when given, is kept alive until the chain is destroyed: filters point into
  // it and into what it owns (a reload may drop every other reference meanwhile).
  // `bufferLimit` is each filter's buffer limit until it sets its own.
  FilterChain(DownstreamStream& downstream, RequestHead& head, StreamInfo& info, FilterList filters,
              RequestObserver* observer = nullptr,
              std::shared_ptr<const FilterChainFactory> factory = nullptr, size_t bufferLimit = 1 << 20);
  ~FilterChain() override;

  // Runs onRequest from the first filter. Call once.
  void start();
  // Request body bytes, as the connection reads them (after startRequestBody()).
  void deliverBody(std::string_view data, bool endStream, const HeaderMap* trailers);
  void downstreamWatermark(bool above);
  // The response is fully written, or the client went away (info.downstreamReset): runs
  // every filter's onComplete once; afterwards the chain ignores all callbacks.
  void complete();

  // A response head went downstream: from now on a local reply can only reset the stream.
  bool responseStarted() const { return headWritten_; }
  bool responseComplete() const { return responseComplete_; }
  bool completed() const { return completed_; }

  // FilterCallbacks, as the connection and tests use them. continueChain() here resumes
  // whichever filter is stopped on the request head; filters themselves get a FilterSlot.
  RequestHead& requestHead() override { return head_; }
  StreamInfo& streamInfo() override { return info_; }
  uv_loop_t* loop() override { return downstream_.loop(); }
  void continueChain() override;
  void sendLocalReply(int status, std::string_view reason) override;
  void sendLocalReply(int status, std::string_view contentType, std::string body) override;
  void setBufferLimit(size_t bytes) override;  // every filter's
  ResponseHead* heldResponseHead() override { return nullptr; }
  void startRequestBody() override;
  void pauseRequestBody() override;
  void resumeRequestBody() override;
  void encodeHeaders(ResponseHead& head, bool endStream) override;
  void encodeData(std::string_view data, bool endStream) override;
  void encodeTrailers(const HeaderMap& trailers) override;
  size_t downstreamQueuedBytes() const override { return downstream_.queuedBytes(); }
  void resetStream(std::string_view reason) override;

 private:
  // Body bytes (and the end of the stream) one filter holds in one direction: because it
  // answered StopAndBuffer, because its head phase has not finished, or (the terminal
  // filter) because it has not asked for the body yet.
  struct Held {
    std::string bytes;
    bool end = false;              // the end of the stream is behind these bytes
    bool trailers = false;         // ...and it carries the direction's trailers
    bool buffering = false;        // the filter answered StopAndBuffer
    bool trailersStopped = false;  // the filter's trailers phase answered Stop
    bool any() const { return !bytes.empty() || end; }
    bool waitingOnFilter() const { return buffering || trailersStopped; }
  };

  // What one filter sees as its callbacks: everything goes to the chain, but
  // continueChain() counts only from the filter the chain is actually waiting on, so a
  // late or duplicate call from another filter cannot skip a filter that is still busy.
  class FilterSlot final : public FilterCallbacks {
   public:
    FilterSlot(FilterChain& chain, size_t index, uint8_t phases, size_t bufferLimit)
        : chain_(chain), index_(index), phases(phases), bufferLimit(bufferLimit) {}
    RequestHead& requestHead() override { return chain_.requestHead(); }
    StreamInfo& streamInfo() override { return chain_.streamInfo(); }
    uv_loop_t* loop() override { return chain_.loop(); }
    void continueChain() override { chain_.continueFrom(index_); }
    void sendLocalReply(int status, std::string_view reason) override {
      chain_.sendLocalReply(status, reason);
    }
    void sendLocalReply(int status, std::string_view contentType, std::string body) override {
      chain_.sendLocalReply(status, contentType, std::move(body));
    }
    void setBufferLimit(size_t bytes) override { bufferLimit = bytes; }
    ResponseHead* heldResponseHead() override { return chain_.heldResponseHeadAt(index_); }
    void startRequestBody() override { chain_.startRequestBodyFrom(index_); }
    void pauseRequestBody() override { chain_.pauseRequestBody(); }
    void resumeRequestBody() override { chain_.resumeRequestBody(); }
    void encodeHeaders(ResponseHead& head, bool endStream) override { chain_.encodeHeaders(head, endStream); }
    void encodeData(std::string_view data, bool endStream) override { chain_.encodeData(data, endStream); }
    void encodeTrailers(const HeaderMap& trailers) override { chain_.encodeTrailers(trailers); }
    size_t downstreamQueuedBytes() const override { return chain_.downstreamQueuedBytes(); }
    void resetStream(std::string_view reason) override { chain_.resetStream(reason); }

   private:
    FilterChain& chain_;
    size_t index_;

   public:
    uint8_t phases;  // the filter's bodyPhases()
    size_t bufferLimit;
  };

  // Body bytes moving through the chain, and where they end.
  struct Flow {
    std::string_view bytes;
    bool owned = false;  // bytes are all of the direction's scratch string
    bool end = false;
    bool trailers = false;
  };

  enum class Direction { Request, Response };

  void continueFrom(size_t index);
  void iterate(size_t from);
  bool active() const { return !completed_ && !responseComplete_; }
  size_t terminal() const { return filters_.size() - 1; }

  // Calls one of filter `index`'s phases; also says whether it called continueChain()
  // from inside (which then counts as Continue).
  template <class Call>
  auto callFilter(size_t index, Call&& call) {
    size_t outerIndex = std::exchange(callingFilter_, index);
    bool outerContinued = std::exchange(continuedDuringCall_, false);
    auto status = call();
    bool continued = std::exchange(continuedDuringCall_, outerContinued);
    callingFilter_ = outerIndex;
    return std::pair{status, continued};
  }

  // Body bytes: push() moves `flow` on from `position` (request: the index of the next
  // filter; response: how many filters are still ahead, as it runs from the last filter to
  // the first). Bytes that cannot go further wait in the slot that stops them (keep());
  // release() sends on what a slot holds once nothing stops it any more.
  void push(Direction dir, size_t position, Flow flow);
  bool passThrough(Direction dir, size_t i, Flow& flow);  // false: the bytes stay at i
  void keep(Direction dir, size_t i, Flow& flow, bool checkLimit = true);
  void enforceLimit(Direction dir, size_t i);
  void release(Direction dir, size_t i);
  void startRequestBodyFrom(size_t index);
  void updateRequestPause();
  // What filter i holds in a direction; made for every filter the first time any holds
  // anything, so a request whose bytes never wait costs no holding state.
  Held& held(Direction dir, size_t i) {
    if (holds_.empty()) holds_.resize(filters_.size());
    return holds_[i][dir == Direction::Request ? 0 : 1];
  }
  bool holdsAny(Direction dir, size_t i) const {
    return !holds_.empty() && holds_[i][dir == Direction::Request ? 0 : 1].any();
  }
  bool waitsOnFilter(Direction dir, size_t i) const {
    return !holds_.empty() && holds_[i][dir == Direction::Request ? 0 : 1].waitingOnFilter();
  }
  void runResponseHeaders(size_t count, ResponseHead& head, bool endStream);
  void writeResponse(Flow flow);
  ResponseHead* heldResponseHeadAt(size_t index);
  // Answers past the filters: the head of another answer waits in the chain.
  void replaceHeldResponse(int status, std::string_view contentType, std::string body);

  DownstreamStream& downstream_;
  RequestHead& head_;
  StreamInfo& info_;
  std::shared_ptr<const FilterChainFactory> factory_;  // declared before filters_: outlives them
  FilterList filters_;
  std::vector<FilterSlot, RecyclingAllocator<FilterSlot>> slots_;  // slots_[i] is filters_[i]'s callbacks
  // [i][0]: request, [i][1]: response; see held().
  std::vector<std::array<Held, 2>, RecyclingAllocator<std::array<Held, 2>>> holds_;
  RequestObserver* observer_;

  // Request head: filters [0, requestHeadsDone_) have finished onRequest.
  size_t stoppedAt_ = 0;  // index of the filter whose onRequest returned Stop
  size_t requestHeadsDone_ = 0;
  bool iterating_ = false;  // inside iterate(): a continueChain() now is "sync"
  bool continueRequested_ = false;
  bool stopped_ = false;
  // Request body.
  uint8_t bodyFilters_ = 0;         // BodyPhase bits of any non-terminal filter
  bool bodyReading_ = false;        // the connection was asked to read the body
  bool terminalWantsBody_ = false;  // the terminal filter called startRequestBody()
  bool filterPausedBody_ = false;   // a filter paused the body (the router's upstream is full)
  bool holdPausedBody_ = false;     // the terminal's held bytes reached the limit
  bool downstreamPaused_ = false;
  int requestPushDepth_ = 0;  // deliverBody() while a push runs queues behind it
  std::string lateRequestBytes_;
  bool lateRequestEnd_ = false;
  std::string requestScratch_;  // BodyChunk::bytes() storage, request direction
  std::optional<HeaderMap> requestTrailers_;
  // Response: filters [responseHeadsLeft_, size) have finished onResponseHeaders.
  size_t responseHeadsLeft_ = 0;
  bool responseHeadStopped_ = false;  // the head waits at filter responseHeadsLeft_ - 1
  bool responseEndWithHead_ = false;
  std::optional<ResponseHead> heldHead_;
  std::string responseScratch_;
  std::optional<HeaderMap> responseTrailers_;
  // A filter called continueChain() from inside one of its own phases: applied on return.
  size_t callingFilter_ = SIZE_MAX;
  bool continuedDuringCall_ = false;
  bool responseStarted_ = false;  // a head was handed to the chain (it may be held)
  bool headWritten_ = false;      // ...and went downstream
  bool responseComplete_ = false;
  bool completed_ = false;
};

// The head of every local reply: status, content-type and content-length.
ResponseHead localReplyHead(int status, std::string_view contentType, size_t bodySize);

// The JSON body of every local reply: {"error": reason, "status": N, "request_id": id}.
std::string localReplyBody(int status, std::string_view reason, std::string_view requestId);

}  // namespace flowguard::core
