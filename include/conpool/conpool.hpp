// SPDX-License-Identifier: MIT
#pragma once
/// The whole of conpool's public API in one include.
///
/// Example:
///   #include <conpool/conpool.hpp>
///   conpool::shard s;
///   s.run(my_task());

#include <conpool/address.hpp>
#include <conpool/cancel.hpp>
#include <conpool/close_reason.hpp>
#include <conpool/config.hpp>
#include <conpool/connection.hpp>
#include <conpool/endpoint.hpp>
#include <conpool/endpoint_handle.hpp>
#include <conpool/error.hpp>
#include <conpool/error_kind.hpp>
#include <conpool/flow.hpp>
#include <conpool/histogram.hpp>
#include <conpool/io.hpp>
#include <conpool/listener.hpp>
#include <conpool/metrics.hpp>
#include <conpool/pool.hpp>
#include <conpool/proxy.hpp>
#include <conpool/runtime.hpp>
#include <conpool/scope.hpp>
#include <conpool/shard.hpp>
#include <conpool/shard_group.hpp>
#include <conpool/stats.hpp>
#include <conpool/task.hpp>
#include <conpool/tls.hpp>
