// A filter in a folder of its own: how it registers itself, and what it gets from the
// gateway. filters/README.md walks through writing one (filters/server_timing/ is the
// example). Every folder under filters/ is found by filters/CMakeLists.txt, which compiles
// its .cc files and generates registerPluggedFilters(), the call of each folder's
// registration function.
// Nothing in core/, config/, admin/ or gateway/ names a plugged filter: the config loader
// parses it through the parser it registered, the workers make its factory, reload carries
// its counters over, and the admin listener dumps its settings and reports its counters,
// all through the record registered here.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "config/config.h"
#include "config/filter_parsers.h"
#include "core/filter.h"
#include "core/stat_set.h"
#include "filters/worker_resources.h"

namespace flowguard::filters {

// What one filter entry keeps for every worker besides its declared counters (the metrics
// filter's series, say): a filter's state type derives from it. Made on the main thread
// before the workers start, and carried over to the next config generation while the
// filter stays in its listener (FilterRegistration::keepsState).
class FilterState {
 public:
  virtual ~FilterState() = default;
};

// What a plugged filter's factory is made with, on the worker thread that will use it.
struct FilterContext {
  std::string_view name;                   // the filter's name (its folder's)
  const config::ListenerConfig& listener;  // the listener whose chain the filter is in
  WorkerResources& resources;              // the worker's loop, clusters, stores...
  core::StatSet& stats;                    // this entry's counters: every worker's, kept across reloads
  std::shared_ptr<FilterState> state;      // what the filter's createState made; null without one

  // The state as the type the filter registered (FilterRegistration's State).
  template <class State>
  std::shared_ptr<State> stateAs() const {
    return std::static_pointer_cast<State>(state);
  }
};

// A listener's routes that have `per_filter` settings for one filter. The route is matched
// as the router will match it, from the request head the filter sees.
class PerRouteLookup {
 public:
  PerRouteLookup(std::string_view filter, const config::ListenerConfig& listener);
  bool empty() const { return router_ == nullptr; }  // no route has settings for the filter
  // The matched route's entry for the filter, or null (no route matched, or it has none).
  const config::RoutePerFilter* find(const core::RequestHead& head, core::StreamInfo& info) const;

 private:
  std::string filter_;
  const config::RouterConfig* router_ = nullptr;
};

// A filter whose routes may turn it off or give it other settings: the route is looked up
// when the filter is first needed (its request phase, or the response phase of an answer
// an earlier filter gave), and the filter is made then, in place, with the route's settings,
// or not at all when the route turns it off.
template <class FilterType, class Settings>
class RouteAwareFilter : public core::Filter {
 public:
  RouteAwareFilter(const Settings& settings, core::StatSet& stats, const PerRouteLookup& lookup)
      : settings_(settings), stats_(stats), lookup_(lookup) {}

  core::FilterStatus onRequest() override {
    FilterType* filter = resolve();
    return filter != nullptr ? filter->onRequest() : core::FilterStatus::Continue;
  }
  // Whether the filter wants bodies is known only once the route is: the chain asks for
  // both, and the calls go on only to a filter that wants them (no copy is made for them).
  uint8_t bodyPhases() const override { return core::kRequestBody | core::kResponseBody; }
  core::DataStatus onRequestData(core::BodyChunk& data, bool endStream) override {
    return wants(core::kRequestBody) ? inner_->onRequestData(data, endStream) : core::DataStatus::Continue;
  }
  core::FilterStatus onRequestTrailers(core::HeaderMap& trailers) override {
    return wants(core::kRequestBody) ? inner_->onRequestTrailers(trailers) : core::FilterStatus::Continue;
  }
  void onRequestBody(std::string_view data, bool endStream, const core::HeaderMap* trailers) override {
    if (inner_) inner_->onRequestBody(data, endStream, trailers);
  }
  core::FilterStatus onResponseHeaders(core::ResponseHead& head, bool endStream) override {
    FilterType* filter = resolve();
    return filter != nullptr ? filter->onResponseHeaders(head, endStream) : core::FilterStatus::Continue;
  }
  core::DataStatus onResponseData(core::BodyChunk& data, bool endStream) override {
    return wants(core::kResponseBody) ? inner_->onResponseData(data, endStream) : core::DataStatus::Continue;
  }
  core::FilterStatus onResponseTrailers(core::HeaderMap& trailers) override {
    return wants(core::kResponseBody) ? inner_->onResponseTrailers(trailers) : core::FilterStatus::Continue;
  }
  void onDownstreamWatermark(bool above) override {
    if (inner_) inner_->onDownstreamWatermark(above);
  }
  void onComplete(const core::StreamInfo& info) override {
    if (inner_) inner_->onComplete(info);
  }

 private:
  bool wants(uint8_t phase) const { return inner_ && (inner_->bodyPhases() & phase) != 0; }

  FilterType* resolve() {
    if (!resolved_) {
      resolved_ = true;
      const config::RoutePerFilter* entry = lookup_.find(callbacks().requestHead(), callbacks().streamInfo());
      if (entry != nullptr && entry->disabled) return nullptr;
      const Settings& settings =
          entry != nullptr && entry->settings ? static_cast<const Settings&>(*entry->settings) : settings_;
      inner_.emplace(settings, stats_);
      inner_->setCallbacks(callbacks());
    }
    return inner_ ? &*inner_ : nullptr;
  }

  const Settings& settings_;
  core::StatSet& stats_;
  const PerRouteLookup& lookup_;
  bool resolved_ = false;
  std::optional<FilterType> inner_;
};

// The factory most filters need: each request's filter is made from the settings and the
// entry's counters, FilterType(const Settings&, core::StatSet&), and routes' per_filter
// settings apply without the filter doing anything. Settings are owned by the Config, which
// outlives every factory made from it.
template <class FilterType, class Settings>
class FilterFactoryOf : public core::FilterFactory {
 public:
  FilterFactoryOf(const Settings& settings, FilterContext& context)
      : settings_(settings), stats_(context.stats), lookup_(context.name, context.listener) {}
  std::unique_ptr<core::Filter> create() override {
    if (lookup_.empty()) return std::make_unique<FilterType>(settings_, stats_);
    return std::make_unique<RouteAwareFilter<FilterType, Settings>>(settings_, stats_, lookup_);
  }

 private:
  const Settings& settings_;
  core::StatSet& stats_;
  PerRouteLookup lookup_;
};

// The type-erased record kept per plugged filter.
struct FilterPlugin {
  std::string name;
  std::span<const core::StatDecl> stats;
  std::function<std::unique_ptr<core::FilterFactory>(const config::PluginSettings&, FilterContext&)>
      createFactory;
  std::function<nlohmann::json(const config::PluginSettings&)> dump;
  // Empty when the filter did not register them (FilterRegistration).
  std::function<std::shared_ptr<FilterState>(const config::PluginSettings&)> createState;
  std::function<bool(const config::PluginSettings& before, const config::PluginSettings& after)> keepsState;
  std::function<void(FilterState&, const config::PluginSettings& after)> refreshState;
  std::function<std::string(const FilterState&)> summary;
  std::function<std::vector<std::string>(const config::PluginSettings&)> secretFields;
};

// What a filter's registration function fills in, typed with its settings struct (which
// derives from config::PluginSettingsOf<Settings>) and, for a filter that keeps a state for
// all workers, that state's type (derived from FilterState).
template <class Settings, class State = FilterState>
struct FilterRegistration {
  std::string_view name;  // the `name:` in flowguard.yaml
  // Parses the filter's map (`name:` plus its own keys); null after reporting a problem
  // through ctx.reader.
  std::shared_ptr<const Settings> (*parse)(const YAML::Node& node, config::FilterParseContext& ctx);
  std::unique_ptr<core::FilterFactory> (*createFactory)(const Settings& settings, FilterContext& context);
  // The settings as /config_dump shows them (secrets masked); "name" is added.
  nlohmann::json (*dump)(const Settings& settings);
  std::span<const core::StatDecl> stats = {};
  // The keys a route's `per_filter: { <name>: {...} }` may replace; `disabled: true` is always
  // allowed. FilterFactoryOf applies them.
  std::vector<std::string> perRouteKeys = {};
  // Keys that go together: a route that sets any of them replaces all of them (rate_limit's
  // rate, burst, limit...). The parser sees config::FilterParseContext::routeSetsTogether.
  std::vector<std::string> perRouteTogether = {};
  // The filter's state, made when the filter first appears in a listener; its factories get
  // it as FilterContext::state.
  std::shared_ptr<State> (*createState)(const Settings& settings) = nullptr;
  // Whether a reload from `before` to `after` keeps the state (the counters go on); null:
  // always. Otherwise the new generation gets a new one from createState.
  bool (*keepsState)(const Settings& before, const Settings& after) = nullptr;
  // Brings a kept state up to the reloaded settings (auth publishes the file's new keys).
  void (*refreshState)(State& state, const Settings& after) = nullptr;
  // What the exit line (`flowguard: <filter> <listener>: ...`) says of the state after the
  // declared counters, as ` name=value` pairs.
  std::string (*summary)(const State& state) = nullptr;
  // Checks against the other filters of the listener, once all are parsed (FILE:LINE:COL
  // errors through `reader`).
  void (*checkChain)(const Settings& settings, const std::vector<config::FilterConfig>& chain,
                     config::YamlReader& reader) = nullptr;
  // Why a reload cannot apply the settings to the running gateway ("" when it can): what the
  // filter needs that the gateway only sets up at start (a Redis connection).
  std::string (*restartNeeded)(const Settings& settings, const config::Config& running) = nullptr;
  // Request fields that carry a secret the upstreams must not see (auth: its key header): the
  // filter removes them from heads itself; the listener never forwards them as trailers.
  std::vector<std::string> (*secretFields)(const Settings& settings) = nullptr;
};

// Keeps the record and registers the parser with config/. Called once per filter, from
// registerPluggedFilters().
void registerFilterPlugin(FilterPlugin plugin, config::FilterParser parser);

template <class Settings, class State>
void registerFilter(const FilterRegistration<Settings, State>& r) {
  static_assert(std::is_base_of_v<FilterState, State>, "a filter's state derives from FilterState");
  FilterPlugin plugin;
  plugin.name = std::string(r.name);
  plugin.stats = r.stats;
  plugin.createFactory = [create = r.createFactory](const config::PluginSettings& s, FilterContext& context) {
    return create(static_cast<const Settings&>(s), context);
  };
  plugin.dump = [dump = r.dump](const config::PluginSettings& s) {
    return dump(static_cast<const Settings&>(s));
  };
  if (r.createState != nullptr) {
    plugin.createState = [create = r.createState](const config::PluginSettings& s) {
      return std::shared_ptr<FilterState>(create(static_cast<const Settings&>(s)));
    };
  }
  if (r.keepsState != nullptr) {
    plugin.keepsState = [keeps = r.keepsState](const config::PluginSettings& before,
                                               const config::PluginSettings& after) {
      return keeps(static_cast<const Settings&>(before), static_cast<const Settings&>(after));
    };
  }
  if (r.refreshState != nullptr) {
    plugin.refreshState = [refresh = r.refreshState](FilterState& state,
                                                     const config::PluginSettings& after) {
      refresh(static_cast<State&>(state), static_cast<const Settings&>(after));
    };
  }
  if (r.secretFields != nullptr) {
    plugin.secretFields = [fields = r.secretFields](const config::PluginSettings& s) {
      return fields(static_cast<const Settings&>(s));
    };
  }
  if (r.summary != nullptr) {
    plugin.summary = [summary = r.summary](const FilterState& state) {
      return summary(static_cast<const State&>(state));
    };
  }
  config::FilterParser parser{std::string(r.name), false, config::pluginParser(r.parse), r.perRouteKeys,
                              r.perRouteTogether};
  if (r.checkChain != nullptr) {
    parser.checkChain = [check = r.checkChain](const config::PluginSettings& s,
                                               const std::vector<config::FilterConfig>& chain,
                                               config::YamlReader& reader) {
      check(static_cast<const Settings&>(s), chain, reader);
    };
  }
  if (r.restartNeeded != nullptr) {
    parser.restartNeeded = [why = r.restartNeeded](const config::PluginSettings& s,
                                                   const config::Config& running) {
      return why(static_cast<const Settings&>(s), running);
    };
  }
  registerFilterPlugin(std::move(plugin), std::move(parser));
}

// The record of a plugged filter, or null for the router or an unknown name.
const FilterPlugin* findFilterPlugin(std::string_view name);

// Registers every filter folder under filters/ (generated by filters/CMakeLists.txt). Call
// it before loading a config; calling it again does nothing.
void registerPluggedFilters();

}  // namespace flowguard::filters
