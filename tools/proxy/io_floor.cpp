// SPDX-License-Identifier: MIT
// io-floor: the kernel's floor under a proxy's CPU per request. An HTTP responder that does
// nothing but one receive and one send per request on io_uring (no parsing, no pool), so its
// CPU per request is what the TCP stack and the ring cost for one request-response on one
// socket. A proxy does that twice per request (client side, upstream side): twice this figure
// is the least any proxy can spend here, whatever its code. tools/proxy/compare.sh runs it
// beside the proxies.
//
//   conpool-io-floor PORT [single|multishot|fixed]
//
// single:    a receive armed after each send (IORING_RECVSEND_POLL_FIRST), as conpool's flow
//            reads a reply;
// multishot: one receive armed for the connection's life, into a provided buffer ring;
// fixed:     multishot, with the socket in the ring's registered file table as well.
// Listens on 127.0.0.1:PORT until killed. Every request must arrive in one segment (wrk's do).
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

constexpr std::string_view response = "HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\nhello from nginx\n";
constexpr unsigned max_fd = 4096;      // sockets above this are refused
constexpr unsigned buffers = 256;      // the provided buffer ring's size
constexpr unsigned buffer_bytes = 4096;
constexpr std::uint16_t group = 1;

enum class mode { single, multishot, fixed };
enum kind : std::uint64_t { accepted = 1, received = 2, sent = 3 };

std::uint64_t tag(kind k, int fd) { return (static_cast<std::uint64_t>(fd) << 8) | k; }

[[noreturn]] void die(const char* what, int err) {
  std::fprintf(stderr, "conpool-io-floor: %s: %s\n", what, std::strerror(err));
  std::exit(1);
}

class responder {
 public:
  responder(int listen_fd, mode m) : listen_fd_(listen_fd), mode_(m), reads_(max_fd) {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN;
    if (const int r = io_uring_queue_init_params(1024, &ring_, &p); r < 0) die("io_uring", -r);
    (void)io_uring_register_ring_fd(&ring_);
    if (mode_ == mode::fixed) {
      if (const int r = io_uring_register_files_sparse(&ring_, max_fd); r < 0) die("files", -r);
    }
    if (mode_ != mode::single) provide_buffers();
  }

  [[noreturn]] void run() {
    arm_accept();
    for (;;) {
      (void)io_uring_submit_and_wait(&ring_, 1);
      io_uring_cqe* cqe = nullptr;
      unsigned head = 0;
      unsigned seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        on_cqe(*cqe);
      }
      io_uring_cq_advance(&ring_, seen);
      if (returned_ > 0) io_uring_buf_ring_advance(ring_of_buffers_, std::exchange(returned_, 0));
    }
  }

 private:
  void provide_buffers() {
    void* mem = ::mmap(nullptr, buffers * sizeof(io_uring_buf), PROT_READ | PROT_WRITE,
                       MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) die("mmap", errno);
    ring_of_buffers_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(mem);
    reg.ring_entries = buffers;
    reg.bgid = group;
    if (const int r = io_uring_register_buf_ring(&ring_, &reg, 0); r < 0) die("buffer ring", -r);
    io_uring_buf_ring_init(ring_of_buffers_);
    storage_.resize(std::size_t{buffers} * buffer_bytes);
    for (unsigned i = 0; i < buffers; ++i) give_back(i);
    io_uring_buf_ring_advance(ring_of_buffers_, std::exchange(returned_, 0));
  }

  void give_back(unsigned id) {
    io_uring_buf_ring_add(ring_of_buffers_, storage_.data() + std::size_t{id} * buffer_bytes,
                          buffer_bytes, static_cast<unsigned short>(id),
                          io_uring_buf_ring_mask(buffers), static_cast<int>(returned_++));
  }

  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (s == nullptr) {
      (void)io_uring_submit(&ring_);
      s = io_uring_get_sqe(&ring_);
    }
    return s;
  }

  void arm_accept() {
    io_uring_sqe* s = sqe();
    io_uring_prep_multishot_accept(s, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, tag(accepted, listen_fd_));
  }

  void arm_receive(int fd, bool after_send) {
    io_uring_sqe* s = sqe();
    if (mode_ == mode::single) {
      io_uring_prep_recv(s, fd, reads_[fd].data(), reads_[fd].size(), 0);
      if (after_send) s->ioprio |= IORING_RECVSEND_POLL_FIRST;
    } else {
      io_uring_prep_recv_multishot(s, fd, nullptr, 0, 0);
      s->flags |= IOSQE_BUFFER_SELECT;
      s->buf_group = group;
    }
    if (mode_ == mode::fixed) s->flags |= IOSQE_FIXED_FILE;  // index = descriptor number
    io_uring_sqe_set_data64(s, tag(received, fd));
  }

  void on_cqe(const io_uring_cqe& c) {
    const auto k = static_cast<kind>(c.user_data & 0xff);
    const int fd = static_cast<int>(c.user_data >> 8);
    if (k == accepted) {
      if ((c.flags & IORING_CQE_F_MORE) == 0) arm_accept();
      if (c.res < 0) return;
      if (static_cast<unsigned>(c.res) >= max_fd) {
        ::close(c.res);
        return;
      }
      const int one = 1;
      (void)::setsockopt(c.res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      reads_[c.res].resize(mode_ == mode::single ? buffer_bytes : 0);
      if (mode_ == mode::fixed) {
        int in = c.res;
        if (io_uring_register_files_update(&ring_, static_cast<unsigned>(c.res), &in, 1) != 1) {
          die("files update", errno);
        }
      }
      arm_receive(c.res, false);
    } else if (k == received) {
      if (c.res == -ENOBUFS) {  // every buffer in use: armed again once some came back
        arm_receive(fd, false);
        return;
      }
      if (c.res <= 0) {
        if (mode_ == mode::fixed) {
          int none = -1;
          (void)io_uring_register_files_update(&ring_, static_cast<unsigned>(fd), &none, 1);
        }
        ::close(fd);
        return;
      }
      if (mode_ != mode::single) {
        // The bytes are copied out, as a proxy's parser would take them, and the buffer goes back.
        const unsigned id = c.flags >> IORING_CQE_BUFFER_SHIFT;
        reads_[fd].assign(storage_.data() + std::size_t{id} * buffer_bytes,
                          storage_.data() + std::size_t{id} * buffer_bytes + c.res);
        give_back(id);
        if ((c.flags & IORING_CQE_F_MORE) == 0) arm_receive(fd, false);
      }
      io_uring_sqe* s = sqe();
      io_uring_prep_send(s, fd, response.data(), response.size(), MSG_NOSIGNAL);
      if (mode_ == mode::fixed) s->flags |= IOSQE_FIXED_FILE;
      io_uring_sqe_set_data64(s, tag(sent, fd));
    } else if (k == sent && c.res >= 0 && mode_ == mode::single) {
      arm_receive(fd, true);
    }
  }

  io_uring ring_{};
  int listen_fd_;
  mode mode_;
  std::vector<std::vector<char>> reads_;  // per socket: its receive buffer (single) or copy
  io_uring_buf_ring* ring_of_buffers_ = nullptr;
  std::vector<char> storage_;
  unsigned returned_ = 0;  // buffers given back since the ring's tail last moved
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: conpool-io-floor PORT [single|multishot|fixed]\n");
    return 2;
  }
  const std::string port_text = argv[1];
  const std::string mode_text = argc == 3 ? argv[2] : "single";
  unsigned long port = 0;
  try {
    port = std::stoul(port_text);
  } catch (...) {
    port = 0;
  }
  if (port == 0 || port > 65535) {
    std::fprintf(stderr, "conpool-io-floor: PORT: '%s' is not a port (1 to 65535)\n", argv[1]);
    return 2;
  }
  mode m = mode::single;
  if (mode_text == "multishot") {
    m = mode::multishot;
  } else if (mode_text == "fixed") {
    m = mode::fixed;
  } else if (mode_text != "single") {
    std::fprintf(stderr, "conpool-io-floor: mode: '%s' is not single, multishot or fixed\n",
                 mode_text.c_str());
    return 2;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(static_cast<std::uint16_t>(port));
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) < 0 || ::listen(fd, 1024) < 0) {
    die(("listen on 127.0.0.1:" + port_text).c_str(), errno);
  }
  responder(fd, m).run();
}
