// SPDX-License-Identifier: MIT
#include <ostream>
#include <sstream>
#include <stdexcept>

#include <conpool/config.hpp>
#include <conpool/stats.hpp>

namespace conpool {
namespace {

template <class V>
[[noreturn]] void out_of_range(const char* field, const V& value, const char* rule) {
  std::ostringstream msg;
  msg << "conpool::config::" << field << ": " << value << " " << rule;
  throw std::invalid_argument(msg.str());
}

}  // namespace

void config::validate() const {
  if (max_connections_per_endpoint < 1) {
    out_of_range("max_connections_per_endpoint", max_connections_per_endpoint,
                 "must be at least 1");
  }
  if (!(max_idle_time.count() > 0)) {
    out_of_range("max_idle_time", max_idle_time.count(), "seconds must be more than 0");
  }
  if (!(max_connection_lifetime.count() > 0)) {
    out_of_range("max_connection_lifetime", max_connection_lifetime.count(),
                 "seconds must be more than 0");
  }
  if (max_connection_uses && *max_connection_uses < 1) {
    out_of_range("max_connection_uses", *max_connection_uses, "must be at least 1");
  }
  if (connect_timeout && !(connect_timeout->count() > 0)) {
    out_of_range("connect_timeout", connect_timeout->count(), "seconds must be more than 0");
  }
  if (acquire_timeout && !(acquire_timeout->count() >= 0)) {
    out_of_range("acquire_timeout", acquire_timeout->count(), "seconds must not be negative");
  }
  if (!(dns_ttl.count() >= 0)) {
    out_of_range("dns_ttl", dns_ttl.count(), "seconds must not be negative");
  }
}

config default_config() { return config{}; }

std::ostream& operator<<(std::ostream& os, const endpoint_stats& s) {
  return os << "active=" << s.active << " idle=" << s.idle << " created=" << s.total_created
            << " reused=" << s.total_reused << " closed=" << s.total_closed
            << " errors=" << s.errors;
}

}  // namespace conpool
