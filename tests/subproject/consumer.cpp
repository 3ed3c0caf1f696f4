// SPDX-License-Identifier: MIT
// Runs a task on a shard: an echo over loopback through conpool's flow and listener.
#include <conpool/conpool.hpp>

#include <cstdio>
#include <string>

using namespace conpool;

static task<int> round_trip() {
  result<listener> l = listener::open(socket_address::loopback(0));
  if (!l) co_return 1;
  result<flow> client = co_await connect(l->address(), std::chrono::seconds(1));
  result<flow> server = co_await l->accept();
  if (!client || !server) co_return 2;
  if (!co_await client->write_all("hello")) co_return 3;
  char buf[5];
  if (!co_await server->read_exact(std::as_writable_bytes(std::span(buf)))) co_return 4;
  co_return std::string(buf, 5) == "hello" ? 0 : 5;
}

int main() {
  shard s;
  const int rc = s.run(round_trip());
  std::printf("consumer: %s\n", rc == 0 ? "ok" : "failed");
  return rc;
}
