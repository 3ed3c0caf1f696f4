// SPDX-License-Identifier: MIT
#pragma once
// A minimal PostgreSQL client side (frontend/backend protocol v3) over a pooled connection:
// start-up with trust authentication, simple queries with text results, terminate.
//
// Example:
//   read_buffer in;
//   std::string why;  // the server's own words, on pg_error::server_error
//   if (c->use_count() == 1) {  // a fresh connection: start the session first
//     if (auto s = co_await pg_startup(c->flow(), in, "postgres", "postgres", &why); !s) ...
//   }
//   result<pg_rows> r = co_await pg_simple_query(c->flow(), in, "SELECT 1", &why);
//   // r->rows == {{"1"}}, r->command_tag == "SELECT 1"

#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "read_buffer.hpp"

namespace conpool::clients {

/// Errors of the PostgreSQL client side, in the category named "postgres".
enum class pg_error {
  server_error = 1,    ///< an ErrorResponse: the server's text goes to the `server_error` argument
  cleartext_password,  ///< the server asked for a cleartext password (unsupported: trust only)
  md5_password,        ///< the server asked for an MD5 password (unsupported)
  sasl,                ///< the server asked for SASL / SCRAM-SHA-256 (unsupported)
  other_authentication,  ///< the server asked for Kerberos, GSS or SSPI (unsupported)
  copy_unsupported,      ///< the query started a COPY FROM STDIN (refused with CopyFail)
};

/// The category of `pg_error`; its name is "postgres", its messages say what the server asked.
const std::error_category& pg_category() noexcept;

/// Makes `pg_error` usable as a `std::error_code` (found by ADL).
inline std::error_code make_error_code(pg_error e) noexcept {
  return {static_cast<int>(e), pg_category()};
}

/// What a simple query gave back.
struct pg_rows {
  std::vector<std::string> columns;                           ///< of the last RowDescription
  std::vector<std::vector<std::optional<std::string>>> rows;  ///< text values; NULL: nullopt
  std::string command_tag;  ///< of the last CommandComplete ("SELECT 1"); empty for ""
};

/// Starts a session: StartupMessage (protocol 3.0, `user`, `database`), then reads up to
/// ReadyForQuery. Only trust authentication (AuthenticationOk) is accepted.
/// Errors: pg_error::cleartext_password, md5_password, sasl, other_authentication (what the
/// server asked for); pg_error::server_error (the server's "SEVERITY SQLSTATE: message" in
/// `*server_error` when given); std::errc::invalid_argument for a NUL byte in `user` or
/// `database` (nothing is sent); the read's or write's; errc::end_of_stream;
/// std::errc::bad_message for bytes that are not the protocol.
task<result<void>> pg_startup(flow& f, read_buffer& in, std::string_view user,
                              std::string_view database, std::string* server_error = nullptr);

/// Runs `sql` as a simple query ('Q') and reads every result up to ReadyForQuery, so the
/// connection is clean again even after an error. Several statements: the rows of all of them.
/// Errors: pg_error::server_error (text in `*server_error` when given), the connection still
/// usable; pg_error::copy_unsupported; std::errc::invalid_argument for `sql` holding a NUL
/// byte (nothing is sent); the read's or write's; errc::end_of_stream; std::errc::bad_message.
task<result<pg_rows>> pg_simple_query(flow& f, read_buffer& in, std::string_view sql,
                                      std::string* server_error = nullptr);

/// Ends the session politely (Terminate, 'X'); the caller closes the connection after it.
/// A failed write is ignored: the connection is going away anyway.
task<void> pg_terminate(flow& f);

}  // namespace conpool::clients

template <>
struct std::is_error_code_enum<conpool::clients::pg_error> : std::true_type {};
