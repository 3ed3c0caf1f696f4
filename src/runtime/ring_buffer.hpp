// SPDX-License-Identifier: MIT
#pragma once
// A FIFO on a power-of-two array that grows by doubling: the ready queue and the inbox.
// push/pop are a mask and an index; it only allocates when it grows.

#include <cstddef>
#include <memory>
#include <utility>

namespace conpool::detail {

template <class T>
class ring_buffer {
 public:
  explicit ring_buffer(std::size_t capacity = 64) : cap_(round_up(capacity)), buf_(new T[cap_]) {}

  [[nodiscard]] bool empty() const noexcept { return head_ == tail_; }
  [[nodiscard]] std::size_t size() const noexcept { return tail_ - head_; }

  void push(T v) {
    if (size() == cap_) grow();
    buf_[tail_++ & (cap_ - 1)] = std::move(v);
  }
  T pop() noexcept { return std::move(buf_[head_++ & (cap_ - 1)]); }

 private:
  static std::size_t round_up(std::size_t n) noexcept {
    std::size_t c = 1;
    while (c < n) c <<= 1;
    return c;
  }
  void grow() {
    std::unique_ptr<T[]> bigger(new T[cap_ * 2]);
    const std::size_t n = size();
    for (std::size_t i = 0; i < n; ++i) bigger[i] = std::move(buf_[(head_ + i) & (cap_ - 1)]);
    buf_ = std::move(bigger);
    cap_ *= 2;
    head_ = 0;
    tail_ = n;
  }

  std::size_t cap_;
  std::unique_ptr<T[]> buf_;
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
};

}  // namespace conpool::detail
