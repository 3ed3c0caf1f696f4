// SPDX-License-Identifier: MIT
#pragma once
// Bytes read from a connection and not yet parsed. One per worker, reused across requests: the
// protocol readers below parse in place and never allocate on the steady path.

#include <cstddef>
#include <string_view>
#include <vector>

#include <conpool/error.hpp>
#include <conpool/flow.hpp>
#include <conpool/task.hpp>

namespace conpool::clients {

class read_buffer {
 public:
  explicit read_buffer(std::size_t capacity = 16 * 1024) : bytes_(capacity) {}

  /// The bytes read and not consumed yet.
  [[nodiscard]] std::string_view data() const noexcept {
    return {bytes_.data() + begin_, end_ - begin_};
  }
  /// Drops the first `n` unparsed bytes.
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  /// Forgets everything (a connection changes hands).
  void clear() noexcept { begin_ = end_ = 0; }
  /// Reads what the peer sends next, after the unparsed bytes (compacting, or growing when
  /// full). Errors: the read's; errc::end_of_stream when the peer closed.
  task<result<void>> fill(flow& f);

 private:
  std::vector<char> bytes_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

/// std::errc::bad_message: what a reader returns for bytes that break the protocol.
inline std::unexpected<std::error_code> protocol_error() {
  return fail(std::make_error_code(std::errc::bad_message));
}

}  // namespace conpool::clients
