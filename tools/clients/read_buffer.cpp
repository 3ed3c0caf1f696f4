// SPDX-License-Identifier: MIT
#include "read_buffer.hpp"

#include <algorithm>
#include <cstring>
#include <span>

namespace conpool::clients {

task<result<void>> read_buffer::fill(flow& f) {
  if (begin_ > 0) {
    std::memmove(bytes_.data(), bytes_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == bytes_.size()) bytes_.resize(std::max<std::size_t>(bytes_.size() * 2, 4096));
  std::span<std::byte> room(reinterpret_cast<std::byte*>(bytes_.data() + end_),
                            bytes_.size() - end_);
  result<std::size_t> n = co_await f.read_some(room);
  if (!n) co_return fail(n.error());
  if (*n == 0) co_return fail(errc::end_of_stream);
  end_ += *n;
  co_return result<void>{};
}

}  // namespace conpool::clients
