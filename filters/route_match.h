// Matching a request against a route's `match:` (path prefix or exact path, methods,
// Host). Used by the router to pick a route and by auth for its exempt list.
#pragma once

#include <vector>

#include "config/config.h"
#include "core/http_message.h"

namespace flowguard::filters {

bool routeMatches(const config::RouteMatch& match, const core::RequestHead& head);

// The first route that matches, or null.
const config::Route* matchRoute(const config::RouterConfig& config, const core::RequestHead& head);

// True when any of the matches does.
bool anyMatches(const std::vector<config::RouteMatch>& matches, const core::RequestHead& head);

}  // namespace flowguard::filters
