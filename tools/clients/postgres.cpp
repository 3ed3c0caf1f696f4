// SPDX-License-Identifier: MIT
#include "postgres.hpp"

#include <cstdint>
#include <utility>

namespace conpool::clients {
namespace {

class pg_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "postgres"; }
  std::string message(int e) const override {
    switch (static_cast<pg_error>(e)) {
      case pg_error::server_error: return "the server returned an error";
      case pg_error::cleartext_password:
        return "the server asked for a cleartext password (AuthenticationCleartextPassword); "
               "this client supports trust authentication only";
      case pg_error::md5_password:
        return "the server asked for an MD5 password (AuthenticationMD5Password); this client "
               "supports trust authentication only";
      case pg_error::sasl:
        return "the server asked for SASL (SCRAM-SHA-256) authentication (AuthenticationSASL); "
               "this client supports trust authentication only";
      case pg_error::other_authentication:
        return "the server asked for Kerberos, GSS or SSPI authentication; this client supports "
               "trust authentication only";
      case pg_error::copy_unsupported:
        return "the query started a COPY, which this client does not support";
    }
    return "unknown postgres error";
  }
};

// PostgreSQL caps a field at 1 GB; a longer frame is not the protocol.
constexpr std::uint32_t max_message = 1u << 30;

// One backend message, whole in the read buffer: its type byte, then its body.
struct message {
  char type = 0;
  std::string_view body;
  [[nodiscard]] std::size_t size() const { return 5 + body.size(); }
};

std::uint32_t read_u32(std::string_view s) {
  const auto b = [&s](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(s[i]));
  };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

void put_u32(std::string& out, std::uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}

// Reads a message body field by field; every read fails (false) past the end.
class cursor {
 public:
  explicit cursor(std::string_view body) : rest_(body) {}
  bool u16(std::uint16_t& v) {
    if (rest_.size() < 2) return false;
    v = static_cast<std::uint16_t>(static_cast<unsigned char>(rest_[0]) << 8 |
                                   static_cast<unsigned char>(rest_[1]));
    rest_.remove_prefix(2);
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (rest_.size() < 4) return false;
    v = read_u32(rest_);
    rest_.remove_prefix(4);
    return true;
  }
  bool cstring(std::string_view& s) {
    const std::size_t nul = rest_.find('\0');
    if (nul == std::string_view::npos) return false;
    s = rest_.substr(0, nul);
    rest_.remove_prefix(nul + 1);
    return true;
  }
  bool bytes(std::size_t n, std::string_view& s) {
    if (rest_.size() < n) return false;
    s = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return true;
  }

 private:
  std::string_view rest_;
};

// Waits until the next message is whole in `in`; the caller consumes its size() when done.
task<result<message>> next_message(flow& f, read_buffer& in) {
  for (;;) {
    const std::string_view d = in.data();
    if (d.size() >= 5) {
      const std::uint32_t length = read_u32(d.substr(1));  // counts itself, not the type byte
      if (length < 4 || length > max_message) co_return protocol_error();
      if (d.size() >= 1 + std::size_t{length}) {
        message m;
        m.type = d[0];
        m.body = d.substr(5, length - 4);
        co_return m;
      }
    }
    if (auto more = co_await in.fill(f); !more) co_return fail(more.error());
  }
}

// "FATAL 28000: role \"x\" does not exist" from an ErrorResponse's fields.
std::string error_text(std::string_view body) {
  std::string_view severity;
  std::string_view code;
  std::string_view text;
  cursor c(body);
  std::string_view kind;
  std::string_view field;
  while (c.bytes(1, kind) && kind[0] != '\0' && c.cstring(field)) {
    if (kind[0] == 'V' || (kind[0] == 'S' && severity.empty())) severity = field;  // V: English
    if (kind[0] == 'C') code = field;
    if (kind[0] == 'M') text = field;
  }
  std::string out(severity.empty() ? "ERROR" : severity);
  if (!code.empty()) out.append(" ").append(code);
  return out.append(": ").append(text);
}

std::error_code authentication_error(std::uint32_t request) {
  switch (request) {
    case 3: return make_error_code(pg_error::cleartext_password);
    case 5: return make_error_code(pg_error::md5_password);
    case 10: return make_error_code(pg_error::sasl);
    default: return make_error_code(pg_error::other_authentication);  // Kerberos, GSS, SSPI
  }
}

std::string startup_message(std::string_view user, std::string_view database) {
  std::string body;
  put_u32(body, 196608);  // protocol 3.0
  body.append("user").append(1, '\0').append(user).append(1, '\0');
  body.append("database").append(1, '\0').append(database).append(1, '\0');
  body.append(1, '\0');
  std::string out;
  put_u32(out, static_cast<std::uint32_t>(body.size() + 4));
  return out.append(body);
}

// A frontend message: type byte, length, body (+ a NUL when `body` is a C string).
std::string frontend_message(char type, std::string_view body, bool nul_terminated) {
  std::string out(1, type);
  put_u32(out, static_cast<std::uint32_t>(4 + body.size() + (nul_terminated ? 1 : 0)));
  out.append(body);
  if (nul_terminated) out.append(1, '\0');
  return out;
}

bool parse_row_description(std::string_view body, std::vector<std::string>& columns) {
  cursor c(body);
  std::uint16_t n = 0;
  if (!c.u16(n)) return false;
  columns.clear();
  for (std::uint16_t i = 0; i < n; ++i) {
    std::string_view name;
    std::string_view attributes;  // table oid, column, type oid, size, modifier, format
    if (!c.cstring(name) || !c.bytes(18, attributes)) return false;
    columns.emplace_back(name);
  }
  return true;
}

bool parse_data_row(std::string_view body, std::vector<std::optional<std::string>>& row) {
  cursor c(body);
  std::uint16_t n = 0;
  if (!c.u16(n)) return false;
  row.reserve(n);
  for (std::uint16_t i = 0; i < n; ++i) {
    std::uint32_t length = 0;
    if (!c.u32(length)) return false;
    if (length == 0xffffffffu) {  // -1: NULL
      row.emplace_back(std::nullopt);
      continue;
    }
    std::string_view value;
    if (!c.bytes(length, value)) return false;
    row.emplace_back(std::string(value));
  }
  return true;
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

}  // namespace

const std::error_category& pg_category() noexcept {
  static const pg_category_impl category;
  return category;
}

task<result<void>> pg_startup(flow& f, read_buffer& in, std::string_view user,
                              std::string_view database, std::string* server_error) {
  if (server_error != nullptr) server_error->clear();
  if (has_nul(user) || has_nul(database)) co_return fail(std::errc::invalid_argument);
  const std::string hello = startup_message(user, database);
  if (auto w = co_await f.write_all(hello); !w) co_return fail(w.error());
  for (;;) {
    result<message> m = co_await next_message(f, in);
    if (!m) co_return fail(m.error());
    const message msg = *m;
    in.consume(msg.size());  // the body stays readable until the next fill
    switch (msg.type) {
      case 'R': {
        cursor c(msg.body);
        std::uint32_t request = 0;
        if (!c.u32(request)) co_return protocol_error();
        if (request != 0) co_return fail(authentication_error(request));
        break;
      }
      case 'E':  // the server closes the connection after it
        if (server_error != nullptr) *server_error = error_text(msg.body);
        co_return fail(pg_error::server_error);
      case 'Z': co_return result<void>{};
      case 'S':  // ParameterStatus
      case 'K':  // BackendKeyData
      case 'N':  // NoticeResponse
      case 'v':  // NegotiateProtocolVersion
        break;
      default: co_return protocol_error();
    }
  }
}

task<result<pg_rows>> pg_simple_query(flow& f, read_buffer& in, std::string_view sql,
                                      std::string* server_error) {
  if (server_error != nullptr) server_error->clear();
  if (has_nul(sql)) co_return fail(std::errc::invalid_argument);
  const std::string query = frontend_message('Q', sql, true);
  if (auto w = co_await f.write_all(query); !w) co_return fail(w.error());
  pg_rows out;
  std::error_code error;  // the first failure; reading goes on to ReadyForQuery
  for (;;) {
    result<message> m = co_await next_message(f, in);
    if (!m) co_return fail(m.error());
    const message msg = *m;
    in.consume(msg.size());
    switch (msg.type) {
      case 'T':
        if (!parse_row_description(msg.body, out.columns)) co_return protocol_error();
        break;
      case 'D': {
        std::vector<std::optional<std::string>> row;
        if (!parse_data_row(msg.body, row)) co_return protocol_error();
        out.rows.push_back(std::move(row));
        break;
      }
      case 'C': {
        cursor c(msg.body);
        std::string_view tag;
        if (!c.cstring(tag)) co_return protocol_error();
        out.command_tag = std::string(tag);
        break;
      }
      case 'E':
        if (!error) {
          error = make_error_code(pg_error::server_error);
          if (server_error != nullptr) *server_error = error_text(msg.body);
        }
        break;
      case 'G': {  // CopyInResponse: refuse, the server answers with 'E' then 'Z'
        if (!error) error = make_error_code(pg_error::copy_unsupported);
        const std::string refusal =
            frontend_message('f', "COPY FROM STDIN is not supported by this client", true);
        if (auto w = co_await f.write_all(refusal); !w) co_return fail(w.error());
        break;
      }
      case 'H':  // CopyOutResponse: its 'd' and 'c' are skipped
        if (!error) error = make_error_code(pg_error::copy_unsupported);
        break;
      case 'I':  // EmptyQueryResponse
      case 'N':  // NoticeResponse
      case 'S':  // ParameterStatus
      case 'A':  // NotificationResponse
      case 'd':  // CopyData
      case 'c':  // CopyDone
        break;
      case 'Z':
        if (error) co_return fail(error);
        co_return std::move(out);
      default: co_return protocol_error();
    }
  }
}

task<void> pg_terminate(flow& f) {
  const std::string bye = frontend_message('X', {}, false);
  (void)co_await f.write_all(bye);
}

}  // namespace conpool::clients
