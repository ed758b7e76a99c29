// Maps a filter entry of flowguard.yaml (already typed by config/) to its factory.
// Adding a filter: its config struct goes into config::FilterSettings, and one line here.
#pragma once

#include <memory>

#include "config/config.h"
#include "core/filter.h"
#include "filters/worker_resources.h"

namespace flowguard::filters {

std::unique_ptr<core::FilterFactory> createFilterFactory(const config::FilterConfig& filter,
                                                         WorkerResources& resources);

}  // namespace flowguard::filters
