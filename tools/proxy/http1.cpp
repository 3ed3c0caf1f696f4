// SPDX-License-Identifier: MIT
#include "http1.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace conpool::proxy {

namespace {

constexpr bool is_tchar(unsigned char c) noexcept {
  // RFC 9110 §5.6.2: token characters.
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f(token) for each element of a comma-separated list (empty elements skipped).
template <class F>
void for_each_element(std::string_view list, F&& f) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view element = trim(list.substr(0, comma));
    if (!element.empty()) f(element);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

bool list_has(std::string_view list, std::string_view token) {
  bool found = false;
  for_each_element(list, [&](std::string_view e) { found = found || iequals(e, token); });
  return found;
}

// The head's extent: up to and including the empty line. Leading empty lines (a client's CRLF
// after a body) are skipped when `skip_empty` (RFC 9112 §2.2); they count in `lead`.
parse_status find_head(std::string_view bytes, std::size_t limit, bool skip_empty,
                       std::size_t& lead, std::size_t& end, std::string& why) {
  lead = 0;
  if (skip_empty) {
    // A few (a client's CRLF after a body); more are not a request and fail as one.
    while (lead < 8 && bytes.size() >= lead + 2 && bytes[lead] == '\r' && bytes[lead + 1] == '\n') {
      lead += 2;
    }
  }
  const std::string_view window = bytes.substr(0, std::min(bytes.size(), lead + limit));
  const std::size_t at = window.find("\r\n\r\n", lead);
  const std::string_view head = window.substr(0, at == std::string_view::npos ? window.size() : at + 4);
  // A bare LF or CR anywhere in the head is refused (no line-ending games).
  for (std::size_t i = lead; i < head.size(); ++i) {
    const char c = head[i];
    if (c == '\n' && (i == 0 || head[i - 1] != '\r')) {
      why = "a bare LF in the head";
      return parse_status::bad;
    }
    if (c == '\r' && i + 1 < head.size() && head[i + 1] != '\n') {
      why = "a bare CR in the head";
      return parse_status::bad;
    }
  }
  if (at == std::string_view::npos) {
    return window.size() >= lead + limit ? parse_status::too_large : parse_status::incomplete;
  }
  end = at + 4;
  return parse_status::done;
}

// The field lines between the start line and the empty line.
bool parse_fields(std::string_view lines, std::vector<field>& out, std::string& why) {
  out.clear();
  while (!lines.empty()) {
    const std::size_t eol = lines.find("\r\n");
    const std::string_view line = lines.substr(0, eol);
    lines.remove_prefix(eol + 2);
    if (line.front() == ' ' || line.front() == '\t') {
      why = "obs-fold (a field line starting with whitespace)";
      return false;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
      why = "a malformed field line: " + std::string(line.substr(0, 64));
      return false;
    }
    const std::string_view value = trim(line.substr(colon + 1));
    for (char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) {
        why = "a control byte in the value of " + std::string(line.substr(0, colon));
        return false;
      }
    }
    out.push_back({line.substr(0, colon), value});
  }
  return true;
}

bool parse_version(std::string_view v, int& minor) noexcept {
  if (v == "HTTP/1.1") {
    minor = 1;
    return true;
  }
  if (v == "HTTP/1.0") {
    minor = 0;
    return true;
  }
  return false;
}

// Content-Length fields (one or several, each a list): all equal, or refused.
bool content_length(const std::vector<field>& fields, bool& present, std::uint64_t& n,
                    std::string& why) {
  present = false;
  bool ok = true;
  for (const field& f : fields) {
    if (!iequals(f.name, "content-length")) continue;
    int elements = 0;
    for_each_element(f.value, [&](std::string_view e) {
      ++elements;
      std::uint64_t v = 0;
      const auto [p, ec] = std::from_chars(e.data(), e.data() + e.size(), v);
      if (ec != std::errc{} || p != e.data() + e.size() || e.front() == '+' || e.front() == '-') {
        why = "Content-Length is not a number: " + std::string(e.substr(0, 32));
        ok = false;
      } else if (present && v != n) {
        why = "Content-Length given twice with different values";
        ok = false;
      }
      present = true;
      n = v;
    });
    if (elements == 0) {
      why = "an empty Content-Length";
      ok = false;
    }
  }
  return ok;
}

// The transfer codings, in order, of every Transfer-Encoding field.
std::vector<std::string_view> codings(const std::vector<field>& fields) {
  std::vector<std::string_view> out;
  for (const field& f : fields) {
    if (iequals(f.name, "transfer-encoding")) {
      for_each_element(f.value, [&](std::string_view e) { out.push_back(e); });
    }
  }
  return out;
}

bool connection_has(const std::vector<field>& fields, std::string_view token) {
  for (const field& f : fields) {
    if (iequals(f.name, "connection") && list_has(f.value, token)) return true;
  }
  return false;
}

// Hop-by-hop (RFC 9110 §7.6.1), or named by the message's Connection fields. The framing
// fields are the proxy's to write (never copied), and Host is never dropped: a Connection
// field naming them must not change how the next hop frames the message.
bool hop_by_hop(const std::vector<field>& fields, std::string_view name) {
  static constexpr std::array<std::string_view, 9> always = {
      "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
      "trailer", "proxy-authorization", "content-length"};
  for (std::string_view h : always) {
    if (iequals(name, h)) return true;
  }
  return !iequals(name, "host") && connection_has(fields, name);
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

// The message's fields but hop-by-hop ones and `skip`; Via extended with this proxy. Written
// straight into `out` (no string of its own: a request costs no allocation here).
void copy_fields(const std::vector<field>& fields, int minor,
                 std::initializer_list<std::string_view> skip, std::string& out) {
  for (const field& f : fields) {
    if (hop_by_hop(fields, f.name) || iequals(f.name, "via")) continue;
    if (std::any_of(skip.begin(), skip.end(), [&](std::string_view s) { return iequals(f.name, s); })) {
      continue;
    }
    append_field(out, f.name, f.value);
  }
  out.append("Via: ");
  for (const field& f : fields) {
    if (iequals(f.name, "via")) out.append(f.value).append(", ");
  }
  out.append(minor == 0 ? "1.0" : "1.1").append(" conpool-proxy\r\n");
}

}  // namespace

bool request_head::idempotent() const noexcept {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

std::string_view find_field(const std::vector<field>& fields, std::string_view name) noexcept {
  for (const field& f : fields) {
    if (iequals(f.name, name)) return f.value;
  }
  return {};
}

parse_status parse_request(std::string_view bytes, std::size_t limit, request_head& out) {
  std::size_t lead = 0;
  std::size_t end = 0;
  const parse_status found = find_head(bytes, limit, true, lead, end, out.why);
  if (found != parse_status::done) return found;
  const std::string_view head = bytes.substr(lead, end - lead - 2);  // the lines, each with CRLF
  const std::size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    out.why = "a malformed request line";
    return parse_status::bad;
  }
  out.method = line.substr(0, sp1);
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!is_token(out.method)) {
    out.why = "a malformed method";
    return parse_status::bad;
  }
  if (out.target.empty() || std::any_of(out.target.begin(), out.target.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f;
      })) {
    out.why = "a malformed request target";
    return parse_status::bad;
  }
  if (!parse_version(line.substr(sp2 + 1), out.minor)) {
    out.why = "not HTTP/1.0 or HTTP/1.1: " + std::string(line.substr(sp2 + 1, 16));
    return parse_status::bad;
  }
  if (!parse_fields(head.substr(eol + 2), out.fields, out.why)) return parse_status::bad;

  int hosts = 0;
  for (const field& f : out.fields) {
    if (iequals(f.name, "host")) {
      ++hosts;
      out.host = f.value;
    }
  }
  out.host_given = hosts > 0;
  if (hosts > 1 || (out.minor == 1 && hosts == 0)) {
    out.why = hosts > 1 ? "Host given twice" : "no Host (HTTP/1.1 requires it)";
    return parse_status::bad;
  }
  bool has_length = false;
  if (!content_length(out.fields, has_length, out.length, out.why)) return parse_status::bad;
  out.length_given = has_length;
  const std::vector<std::string_view> te = codings(out.fields);
  out.body = framing::none;
  if (!te.empty() || !find_field(out.fields, "transfer-encoding").empty()) {
    if (has_length) {
      out.why = "both Content-Length and Transfer-Encoding";
      return parse_status::bad;
    }
    if (out.minor == 0 || te.size() != 1 || !iequals(te.back(), "chunked")) {
      out.why = "a transfer coding other than chunked";
      return parse_status::bad;
    }
    out.body = framing::chunked;
  } else if (has_length && out.length > 0) {
    out.body = framing::length;
  }
  out.keep_alive = out.minor == 1 ? !connection_has(out.fields, "close")
                                  : connection_has(out.fields, "keep-alive");
  out.head_size = end;
  return parse_status::done;
}

parse_status parse_response(std::string_view bytes, std::size_t limit, bool to_head,
                            response_head& out) {
  std::size_t lead = 0;
  std::size_t end = 0;
  const parse_status found = find_head(bytes, limit, false, lead, end, out.why);
  if (found != parse_status::done) return found;
  const std::string_view head = bytes.substr(0, end - 2);
  const std::size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  // HTTP/1.x SP 3DIGIT SP reason
  if (line.size() < 12 || !parse_version(line.substr(0, 8), out.minor) || line[8] != ' ' ||
      (line.size() > 12 && line[12] != ' ')) {
    out.why = "a malformed status line: " + std::string(line.substr(0, 64));
    return parse_status::bad;
  }
  const std::string_view code = line.substr(9, 3);
  if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      code[0] < '1' || code[0] > '5') {
    out.why = "a malformed status code";
    return parse_status::bad;
  }
  out.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
  out.reason = line.size() > 13 ? line.substr(13) : std::string_view{};
  if (!parse_fields(head.substr(eol + 2), out.fields, out.why)) return parse_status::bad;

  bool has_length = false;
  if (!content_length(out.fields, has_length, out.length, out.why)) return parse_status::bad;
  out.length_given = has_length;
  out.codings = find_field(out.fields, "transfer-encoding");
  const std::vector<std::string_view> te = codings(out.fields);
  out.keep_alive = out.minor == 1 ? !connection_has(out.fields, "close")
                                  : connection_has(out.fields, "keep-alive");
  if (to_head || out.status < 200 || out.status == 204 || out.status == 304) {
    out.body = framing::none;
  } else if (!te.empty()) {
    // A final chunked: chunked (RFC 9112 §6.3: Transfer-Encoding overrides Content-Length);
    // any other coding: the body runs until the server closes.
    out.body = iequals(te.back(), "chunked") ? framing::chunked : framing::until_close;
  } else if (has_length) {
    out.body = out.length > 0 ? framing::length : framing::none;
  } else {
    out.body = framing::until_close;
  }
  if (out.body == framing::until_close) out.keep_alive = false;
  if (!te.empty() && has_length) out.keep_alive = false;  // §6.3: close after it
  out.head_size = end;
  return parse_status::done;
}

std::size_t chunked_scanner::feed(std::string_view bytes) noexcept {
  std::size_t i = 0;
  while (i < bytes.size() && state_ == state::more) {
    const char c = bytes[i];
    switch (at_) {
      case at::size: {
        int d = -1;
        if (c >= '0' && c <= '9') d = c - '0';
        if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        if (d >= 0) {
          if (++digits_ > 15) {
            state_ = state::bad;  // more than 2^60 bytes: nobody sends that
            return i;
          }
          left_ = left_ * 16 + static_cast<std::uint64_t>(d);
        } else if (digits_ > 0 && c == ';') {
          at_ = at::extension;
        } else if (digits_ > 0 && (c == ' ' || c == '\t')) {
          at_ = at::size_ws;  // BWS before an extension (RFC 9112 §7.1.1)
        } else if (digits_ > 0 && c == '\r') {
          at_ = at::size_lf;
        } else {
          state_ = state::bad;
          return i;
        }
        ++i;
        break;
      }
      case at::size_ws:
        if (c == ';') {
          at_ = at::extension;
        } else if (c == '\r') {
          at_ = at::size_lf;
        } else if (c != ' ' && c != '\t') {
          state_ = state::bad;
          return i;
        }
        ++i;
        break;
      case at::extension:
        if (c == '\r') {
          at_ = at::size_lf;
        } else if (c == '\n') {
          state_ = state::bad;
          return i;
        }
        ++i;
        break;
      case at::size_lf:
        if (c != '\n') {
          state_ = state::bad;
          return i;
        }
        at_ = left_ == 0 ? at::trailer_start : at::data;
        ++i;
        break;
      case at::data: {
        const std::size_t take = static_cast<std::size_t>(
            std::min<std::uint64_t>(left_, bytes.size() - i));
        left_ -= take;
        i += take;
        if (left_ == 0) at_ = at::data_cr;
        break;
      }
      case at::data_cr:
      case at::trailer_lf:
      case at::data_lf:
      case at::last_lf:
        if ((at_ == at::data_cr && c != '\r') || (at_ != at::data_cr && c != '\n')) {
          state_ = state::bad;
          return i;
        }
        ++i;
        if (at_ == at::data_cr) {
          at_ = at::data_lf;
        } else if (at_ == at::data_lf) {
          at_ = at::size;
          digits_ = 0;
        } else if (at_ == at::trailer_lf) {
          at_ = at::trailer_start;
        } else {
          state_ = state::done;
        }
        break;
      case at::trailer_start:
        at_ = c == '\r' ? at::last_lf : at::trailer;
        if (c == '\n') {
          state_ = state::bad;
          return i;
        }
        ++i;
        break;
      case at::trailer:
        if (c == '\r') {
          at_ = at::trailer_lf;
        } else if (c == '\n') {
          state_ = state::bad;
          return i;
        }
        ++i;
        break;
    }
  }
  return i;
}

void write_upstream_request(const request_head& r, std::string_view client,
                            std::string_view upstream, std::string& out) {
  // An HTTP/1.0 client's request goes as HTTP/1.0: the upstream then frames its response by
  // length or by closing, never chunked, which such a client cannot decode (RFC 9112 §6.1).
  // Keep-alive is asked for, so a response with a length leaves the connection pooled.
  out.append(r.method).append(" ").append(r.target);
  out.append(r.minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  if (!r.host_given) append_field(out, "Host", upstream);
  // Expect: 100-continue is answered by the proxy itself; X-Forwarded-For is rewritten below.
  copy_fields(r.fields, r.minor, {"expect", "x-forwarded-for"}, out);
  const std::string_view xff = find_field(r.fields, "x-forwarded-for");
  out.append("X-Forwarded-For: ").append(xff).append(xff.empty() ? "" : ", ").append(client);
  out.append("\r\n");
  if (r.body == framing::chunked) {
    append_field(out, "Transfer-Encoding", "chunked");
  } else if (r.body == framing::length || r.length_given) {
    append_field(out, "Content-Length", std::to_string(r.body == framing::length ? r.length : 0));
  }
  if (r.minor == 0) append_field(out, "Connection", "keep-alive");
  out.append("\r\n");
}

void write_client_response(const response_head& r, bool keep_alive, int client_minor,
                           std::string& out) {
  char code[4] = {static_cast<char>('0' + r.status / 100), static_cast<char>('0' + r.status / 10 % 10),
                  static_cast<char>('0' + r.status % 10), 0};
  out.append("HTTP/1.1 ").append(code).append(" ").append(r.reason).append("\r\n");
  copy_fields(r.fields, r.minor, {}, out);
  if (r.body == framing::chunked) {
    append_field(out, "Transfer-Encoding", "chunked");
  } else if (r.body == framing::until_close && !r.codings.empty()) {
    append_field(out, "Transfer-Encoding", r.codings);  // codings the client decodes; ends at close
  } else if (r.body == framing::length || (r.body == framing::none && r.length_given)) {
    // A HEAD's or a 304's length describes the representation: passed on as it is.
    append_field(out, "Content-Length", std::to_string(r.length));
  }
  if (!keep_alive) {
    append_field(out, "Connection", "close");
  } else if (client_minor == 0) {
    append_field(out, "Connection", "keep-alive");
  }
  out.append("\r\n");
}

std::string error_response(int status, std::string_view detail, bool keep_alive) {
  std::string_view reason = "Error";
  switch (status) {
    case 400: reason = "Bad Request"; break;
    case 408: reason = "Request Timeout"; break;
    case 405: reason = "Method Not Allowed"; break;
    case 413: reason = "Content Too Large"; break;
    case 417: reason = "Expectation Failed"; break;
    case 431: reason = "Request Header Fields Too Large"; break;
    case 500: reason = "Internal Server Error"; break;
    case 501: reason = "Not Implemented"; break;
    case 502: reason = "Bad Gateway"; break;
    case 503: reason = "Service Unavailable"; break;
    case 504: reason = "Gateway Timeout"; break;
    default: break;
  }
  std::string body = std::to_string(status) + " " + std::string(reason);
  if (!detail.empty()) body.append(": ").append(detail);
  body.append("\n");
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
                    "\r\nContent-Type: text/plain\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n";
  if (!keep_alive) out.append("Connection: close\r\n");
  out.append("Via: 1.1 conpool-proxy\r\n\r\n").append(body);
  return out;
}

}  // namespace conpool::proxy
