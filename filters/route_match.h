// Matching a request against a route's `match:` (path prefix or exact path, methods,
// Host). Used by the router to pick a route, by auth for its exempt list, and by the filters
// whose settings a route may change.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "config/config.h"
#include "core/filter.h"
#include "core/http_message.h"

namespace flowguard::filters {

bool routeMatches(const config::RouteMatch& match, const core::RequestHead& head);

// The first route that matches, or null.
const config::Route* matchRoute(const config::RouterConfig& config, const core::RequestHead& head);

// The same, matched once per request: the answer is kept on `info` for the filters after.
const config::Route* routeFor(const config::RouterConfig& config, const core::RequestHead& head,
                              core::StreamInfo& info);

// True when any of the matches does.
bool anyMatches(const std::vector<config::RouteMatch>& matches, const core::RequestHead& head);

// A match as /config_dump shows it: only the keys it sets.
nlohmann::json routeMatchJson(const config::RouteMatch& match);

}  // namespace flowguard::filters
