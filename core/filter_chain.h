// The filter-chain engine: runs one request's filters through the phases documented in
// core/filter.h. It knows nothing about sockets: the connection underneath implements
// DownstreamStream, so the engine can be unit-tested with a fake.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dispatcher.h"
#include "core/filter.h"

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

// The filter factories of one listener on one worker, in config order.
class FilterChainFactory {
 public:
  void add(std::unique_ptr<FilterFactory> factory) { factories_.push_back(std::move(factory)); }
  std::vector<std::unique_ptr<Filter>> createFilters() const;
  size_t size() const { return factories_.size(); }
  // Not owned; must outlive every chain made from this factory. Null: none.
  void setObserver(RequestObserver* observer) { observer_ = observer; }
  RequestObserver* observer() const { return observer_; }

 private:
  std::vector<std::unique_ptr<FilterFactory>> factories_;
  RequestObserver* observer_ = nullptr;
};

class FilterChain final : public FilterCallbacks, public DeferredDeletable {
 public:
  // `factory`, when given, is kept alive until the chain is destroyed: filters point into
  // it and into what it owns (a reload may drop every other reference meanwhile).
  FilterChain(DownstreamStream& downstream, RequestHead& head, StreamInfo& info,
              std::vector<std::unique_ptr<Filter>> filters, RequestObserver* observer = nullptr,
              std::shared_ptr<const FilterChainFactory> factory = nullptr);
  ~FilterChain() override;

  // Runs onRequest from the first filter. Call once.
  void start();
  // Request body bytes for the terminal filter (after it called startRequestBody()).
  void deliverBody(std::string_view data, bool endStream, const HeaderMap* trailers);
  void downstreamWatermark(bool above);
  // The response is fully written, or the client went away (info.downstreamReset): runs
  // every filter's onComplete once; afterwards the chain ignores all callbacks.
  void complete();

  bool responseStarted() const { return responseStarted_; }
  bool responseComplete() const { return responseComplete_; }
  bool completed() const { return completed_; }

  // FilterCallbacks, as the connection and tests use them. continueChain() here resumes
  // whichever filter is stopped; filters themselves get a FilterSlot (see below).
  RequestHead& requestHead() override { return head_; }
  StreamInfo& streamInfo() override { return info_; }
  uv_loop_t* loop() override { return downstream_.loop(); }
  void continueChain() override;
  void sendLocalReply(int status, std::string_view reason) override;
  void sendLocalReply(int status, std::string_view contentType, std::string body) override;
  void startRequestBody() override;
  void pauseRequestBody() override;
  void resumeRequestBody() override;
  void encodeHeaders(ResponseHead& head, bool endStream) override;
  void encodeData(std::string_view data, bool endStream) override;
  void encodeTrailers(const HeaderMap& trailers) override;
  size_t downstreamQueuedBytes() const override { return downstream_.queuedBytes(); }
  void resetStream(std::string_view reason) override;

 private:
  // What one filter sees as its callbacks: everything goes to the chain, but
  // continueChain() counts only from the filter the chain is actually waiting on, so a
  // late or duplicate call from another filter cannot skip a filter that is still busy.
  class FilterSlot final : public FilterCallbacks {
   public:
    FilterSlot(FilterChain& chain, size_t index) : chain_(chain), index_(index) {}
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
    void startRequestBody() override { chain_.startRequestBody(); }
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
  };

  void continueFrom(size_t index);
  void iterate(size_t from);
  bool active() const { return !completed_ && !responseComplete_; }

  DownstreamStream& downstream_;
  RequestHead& head_;
  StreamInfo& info_;
  std::shared_ptr<const FilterChainFactory> factory_;  // declared before filters_: outlives them
  std::vector<std::unique_ptr<Filter>> filters_;
  std::vector<FilterSlot> slots_;  // slots_[i] is filters_[i]'s callbacks
  RequestObserver* observer_;
  size_t stoppedAt_ = 0;    // index of the filter that returned Stop
  bool iterating_ = false;  // inside iterate(): a continueChain() now is "sync"
  bool continueRequested_ = false;
  bool stopped_ = false;
  bool responseStarted_ = false;
  bool responseComplete_ = false;
  bool completed_ = false;
};

// The head of every local reply: status, content-type and content-length.
ResponseHead localReplyHead(int status, std::string_view contentType, size_t bodySize);

// The JSON body of every local reply: {"error": reason, "status": N, "request_id": id}.
std::string localReplyBody(int status, std::string_view reason, std::string_view requestId);

}  // namespace flowguard::core
