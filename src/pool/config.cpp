// SPDX-License-Identifier: MIT
#include <ostream>
#include <sstream>
#include <stdexcept>

#include <conpool/config.hpp>

namespace conpool {
namespace {

template <class V>
[[noreturn]] void out_of_range(const char* field, const V& value, const char* rule) {
  std::ostringstream msg;
  msg << "conpool::config::" << field << ": " << value << " " << rule;
  throw std::invalid_argument(msg.str());
}

// The longest duration the pool takes (~31.7 years): it adds durations to its clock in
// nanoseconds, which overflow past ~292 years; infinity and NaN are refused with it.
constexpr double longest = 1e9;

void within_reach(const char* field, std::chrono::duration<double> d) {
  if (!(d.count() <= longest)) {
    out_of_range(field, d.count(),
                 "seconds is more than the pool can count (at most 1e+09, ~31 years; leave "
                 "the option unset for no bound where it has one)");
  }
}

}  // namespace

void config::validate() const {
  within_reach("max_idle_time", max_idle_time);
  within_reach("max_connection_lifetime", max_connection_lifetime);
  if (connect_timeout) within_reach("connect_timeout", *connect_timeout);
  if (acquire_timeout) within_reach("acquire_timeout", *acquire_timeout);
  within_reach("dns_ttl", dns_ttl);
  if (endpoint_idle_timeout) within_reach("endpoint_idle_timeout", *endpoint_idle_timeout);
  if (leak_threshold) within_reach("leak_threshold", *leak_threshold);
  if (leak_threshold && !(leak_threshold->count() > 0)) {
    out_of_range("leak_threshold", leak_threshold->count(), "seconds must be more than 0");
  }
  if (on_lease_leak && !leak_threshold) {
    throw std::invalid_argument(
        "conpool::config::on_lease_leak: set, but there is no leak_threshold to report leases "
        "held past");
  }
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
  if (max_idle_connections && *max_idle_connections < 0) {
    out_of_range("max_idle_connections", *max_idle_connections, "must not be negative");
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
  if (endpoint_idle_timeout && !(endpoint_idle_timeout->count() > 0)) {
    out_of_range("endpoint_idle_timeout", endpoint_idle_timeout->count(),
                 "seconds must be more than 0 (leave it unset to keep endpoints)");
  }
  if (!(dns_ttl.count() >= 0)) {
    out_of_range("dns_ttl", dns_ttl.count(), "seconds must not be negative");
  }
  if (!(connection_attempt_delay.count() >= 0.01 && connection_attempt_delay.count() <= 2)) {
    out_of_range("connection_attempt_delay", connection_attempt_delay.count(),
                 "seconds must be from 0.01 to 2 (RFC 8305)");
  }
  if (!(lifetime_jitter >= 0 && lifetime_jitter <= 0.5)) {
    out_of_range("lifetime_jitter", lifetime_jitter, "must be from 0 to 0.5");
  }
  if (health_check_interval) {
    if (!(health_check_interval->count() > 0 && health_check_interval->count() <= 1e9)) {
      out_of_range("health_check_interval", health_check_interval->count(),
                   "seconds must be more than 0 (and at most 1e9)");
    }
    if (!health_check) {
      throw std::invalid_argument(
          "conpool::config::health_check_interval: set, but there is no health_check to run");
    }
  }
  if (min_idle_per_endpoint < 0 || min_idle_per_endpoint > max_connections_per_endpoint) {
    out_of_range("min_idle_per_endpoint", min_idle_per_endpoint,
                 "must be from 0 to max_connections_per_endpoint");
  }
  if (tcp_keepalive) {
    auto whole = [](const char* field, std::chrono::duration<double> d) {
      const double v = d.count();
      if (!(v >= 1 && v <= 32767 && v == static_cast<double>(static_cast<int>(v)))) {
        out_of_range(field, v, "seconds must be a whole number from 1 to 32767");
      }
    };
    whole("tcp_keepalive.idle", tcp_keepalive->idle);
    whole("tcp_keepalive.interval", tcp_keepalive->interval);
    if (tcp_keepalive->probes < 1 || tcp_keepalive->probes > 127) {
      out_of_range("tcp_keepalive.probes", tcp_keepalive->probes, "must be from 1 to 127");
    }
  }
  if (tcp_user_timeout &&
      !(tcp_user_timeout->count() >= 0.001 && tcp_user_timeout->count() <= 2147483.647)) {
    out_of_range("tcp_user_timeout", tcp_user_timeout->count(),
                 "seconds must be from 0.001 to 2147483.647 (the kernel takes int milliseconds)");
  }
  if (connect_backoff) {
    const connect_backoff_settings& b = *connect_backoff;
    if (!(b.base.count() > 0 && b.base.count() <= 1e6)) {
      out_of_range("connect_backoff.base", b.base.count(), "seconds must be more than 0");
    }
    if (!(b.factor >= 1 && b.factor <= 1e3)) {
      out_of_range("connect_backoff.factor", b.factor, "must be from 1 to 1000");
    }
    if (!(b.cap >= b.base && b.cap.count() <= 1e6)) {
      out_of_range("connect_backoff.cap", b.cap.count(),
                   "seconds must be at least connect_backoff.base");
    }
    if (!(b.jitter >= 0 && b.jitter <= 1)) {
      out_of_range("connect_backoff.jitter", b.jitter, "must be from 0 to 1");
    }
  }
}

config default_config() { return config{}; }

}  // namespace conpool
