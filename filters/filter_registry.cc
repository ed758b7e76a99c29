#include "filters/filter_registry.h"

#include <type_traits>

#include "filters/router.h"

namespace flowguard::filters {

std::unique_ptr<core::FilterFactory> createFilterFactory(const config::FilterConfig& filter,
                                                         WorkerResources& resources) {
  return std::visit(
      [&](const auto& settings) -> std::unique_ptr<core::FilterFactory> {
        using T = std::decay_t<decltype(settings)>;
        if constexpr (std::is_same_v<T, config::RouterConfig>) {
          return std::make_unique<RouterFilterFactory>(settings, resources);
        }
      },
      filter.settings);
}

}  // namespace flowguard::filters
