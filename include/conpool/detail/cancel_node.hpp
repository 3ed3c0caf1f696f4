// SPDX-License-Identifier: MIT
#pragma once
/// Internal: the cancellation tree that structured concurrency stands on.
///
/// Every running fiber (a chain of tasks awaiting one another) has a `cancel_node`. A node's
/// children are the fibers it spawned (through a scope) and the deadlines it runs under
/// (`with_timeout`). Cancelling a node marks it and its whole subtree cancelled and asks the one
/// thing each fiber is waiting on (its parked `cancel_hook`: an io_uring operation, a waiter
/// queue entry) to finish early. A fiber whose node is cancelled gets
/// `std::errc::operation_canceled` from every operation it starts from then on.
///
/// Nodes are shard-local: they are created, linked and cancelled on one thread only.

namespace conpool::detail {

/// Something a fiber waits on that can be asked to finish early (`request` is idempotent and
/// must not resume the waiter inline: it completes through the shard's ready queue).
struct cancel_hook {
  void (*request)(cancel_hook*) noexcept;
};

class cancel_node {
 public:
  /// A node under `parent` (nullptr: a root, which nothing outside can cancel: a shield).
  /// A node created under a cancelled parent starts cancelled.
  explicit cancel_node(cancel_node* parent) noexcept : parent_(parent) {
    if (parent_ == nullptr) return;
    cancelled_ = parent_->cancelled_;
    next_ = parent_->first_child_;
    if (next_ != nullptr) next_->prev_ = this;
    parent_->first_child_ = this;
  }
  cancel_node(const cancel_node&) = delete;
  cancel_node& operator=(const cancel_node&) = delete;
  ~cancel_node() {
    if (parent_ == nullptr) return;
    if (prev_ != nullptr) {
      prev_->next_ = next_;
    } else {
      parent_->first_child_ = next_;
    }
    if (next_ != nullptr) next_->prev_ = prev_;
  }

  /// Cancels this node and its subtree; the parked hooks are asked to finish. Iterative, so a
  /// deep tree cannot overflow the stack; a cancelled node's subtree is cancelled already, so
  /// it is skipped. Hooks never change the tree synchronously.
  void cancel() noexcept {
    if (cancelled_) return;
    cancel_node* n = this;
    for (;;) {
      n->cancelled_ = true;
      if (n->hook_ != nullptr) n->hook_->request(n->hook_);
      if (cancel_node* child = first_live(n->first_child_)) {
        n = child;
        continue;
      }
      for (;;) {  // climb to the next live sibling of n or of an ancestor below this
        if (n == this) return;
        if (cancel_node* sibling = first_live(n->next_)) {
          n = sibling;
          break;
        }
        n = n->parent_;
      }
    }
  }
  [[nodiscard]] bool cancelled() const noexcept { return cancelled_; }

  /// The fiber now waits on `h` (one thing at a time); `unpark` when it no longer does.
  void park(cancel_hook* h) noexcept { hook_ = h; }
  void unpark(cancel_hook* h) noexcept {
    if (hook_ == h) hook_ = nullptr;
  }

 private:
  static cancel_node* first_live(cancel_node* n) noexcept {
    while (n != nullptr && n->cancelled_) n = n->next_;
    return n;
  }

  cancel_node* parent_;
  cancel_node* first_child_ = nullptr;
  cancel_node* prev_ = nullptr;
  cancel_node* next_ = nullptr;
  cancel_hook* hook_ = nullptr;
  bool cancelled_ = false;
};

}  // namespace conpool::detail
