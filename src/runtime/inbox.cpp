// SPDX-License-Identifier: MIT
// The MSG_RING inbox: messages other rings post to this shard, and the tasks waiting for them.
#include <cerrno>

#include <conpool/io.hpp>

#include "shard_core.hpp"

namespace conpool {
namespace io {

struct inbox_access {
  static msg_receive_op*& next(msg_receive_op* r) noexcept { return r->next_; }
  static msg_receive_op*& prev(msg_receive_op* r) noexcept { return r->prev_; }
  static void hand(msg_receive_op* r, message m) noexcept {
    r->msg_ = m;
    if (r->node_ != nullptr) r->node_->unpark(r);
    detail::shard_core::current().schedule(r->waiter_);
  }
};

msg_receive_op::msg_receive_op() noexcept : cancel_hook{&msg_receive_op::on_cancel} {}

bool msg_receive_op::await_ready() noexcept {
  return detail::shard_core::current().take_message(msg_);
}

bool msg_receive_op::park(std::coroutine_handle<> h, detail::cancel_node* node) noexcept {
  if (node != nullptr && node->cancelled()) {
    cancelled_ = true;
    return false;
  }
  waiter_ = h;
  node_ = node;
  detail::shard_core::current().add_receiver(this);
  if (node != nullptr) node->park(this);
  return true;
}

void msg_receive_op::on_cancel(detail::cancel_hook* h) noexcept {
  auto* r = static_cast<msg_receive_op*>(h);
  detail::shard_core& s = detail::shard_core::current();
  s.remove_receiver(r);
  r->cancelled_ = true;
  r->node_->unpark(r);
  s.schedule(r->waiter_);
}

result<message> msg_receive_op::await_resume() const noexcept {
  if (cancelled_) return fail(std::errc::operation_canceled);
  return msg_;
}

}  // namespace io

namespace detail {

void shard_core::add_receiver(io::msg_receive_op* r) noexcept {
  io::inbox_access::next(r) = nullptr;
  io::inbox_access::prev(r) = receivers_tail_;
  if (receivers_tail_ != nullptr) {
    io::inbox_access::next(receivers_tail_) = r;
  } else {
    receivers_head_ = r;
  }
  receivers_tail_ = r;
  ++receivers_;
}

void shard_core::remove_receiver(io::msg_receive_op* r) noexcept {
  io::msg_receive_op* next = io::inbox_access::next(r);
  io::msg_receive_op* prev = io::inbox_access::prev(r);
  (prev != nullptr ? io::inbox_access::next(prev) : receivers_head_) = next;
  (next != nullptr ? io::inbox_access::prev(next) : receivers_tail_) = prev;
  --receivers_;
}

void shard_core::deliver(message m) {
  (void)g_messages_sent.load(std::memory_order_acquire);
  if (receivers_head_ == nullptr) {
    inbox_.push(m);
    return;
  }
  io::msg_receive_op* r = receivers_head_;
  remove_receiver(r);
  io::inbox_access::hand(r, m);
}

}  // namespace detail
}  // namespace conpool
