// How config/ knows a filter that lives in a folder of its own under filters/ (a "plugged"
// filter, filters/README.md): only by name, by the parser it registered, and through the
// settings that parser returned, which config/ keeps without knowing their type. Everything
// else about such a filter (its factory, its stats, its config dump) is registered with
// filters/ in the same registration call.
#pragma once

#include <memory>
#include <typeinfo>

namespace flowguard::config {

// The base of a plugged filter's parsed settings. Settings are immutable once parsed and
// shared by every worker (like the rest of the Config).
class PluginSettings {
 public:
  virtual ~PluginSettings() = default;
  // Same type and same values: a reload that leaves a filter's settings equal keeps it as is.
  virtual bool equals(const PluginSettings& other) const = 0;
};

// A filter's settings struct derives from PluginSettingsOf<Itself> and defines operator==
// (usually `= default`); equals() then compares through it.
template <class Derived>
class PluginSettingsOf : public PluginSettings {
 public:
  bool equals(const PluginSettings& other) const final {
    if (typeid(other) != typeid(Derived)) return false;
    return static_cast<const Derived&>(*this) == static_cast<const Derived&>(other);
  }
  // The base holds no values, so a defaulted operator== of Derived compares only Derived's.
  bool operator==(const PluginSettingsOf&) const { return true; }
};

// The alternative of FilterSettings (config.h) that every plugged filter uses.
struct PluginFilterConfig {
  std::shared_ptr<const PluginSettings> settings;
  bool operator==(const PluginFilterConfig& other) const {
    if (settings == other.settings) return true;
    return settings != nullptr && other.settings != nullptr && settings->equals(*other.settings);
  }
};

}  // namespace flowguard::config
