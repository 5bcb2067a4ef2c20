// Text that goes to people's terminals. Pure functions, no I/O.
//
// Lines are text for humans, and a terminal obeys control bytes: ESC starts escape
// sequences that can move the cursor, recolour or retitle a window; a bare CR lets the
// rest of a line overwrite its start, so a client could fake a line from someone
// else. sanitize() makes every such byte visible instead:
//
//   C0 controls except TAB, DEL     ^@ .. ^_, ^?           (ESC is ^[, CR is ^M)
//   C1 controls U+0080..U+009F      <U+009B>               (CSI is U+009B)
//   line/paragraph separators and
//   bidirectional overrides         <U+2028>, <U+202E> ...
//   bytes that are not UTF-8        \xNN                   (one per bad byte)
//
// Valid UTF-8 passes through unchanged, so any language can be typed. The policy is
// deterministic and byte-exact: the same input always gives the same output.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace talk {

// The most bytes sanitize() can write for n input bytes.
constexpr std::size_t max_sanitized_size(std::size_t n) { return 4 * n; }

// Writes the visible form of `in` to `out`, which must have room for
// max_sanitized_size(in.size()) bytes. Returns the bytes written.
std::size_t sanitize(std::string_view in, char* out);
std::string sanitize(std::string_view in);

// Length in bytes of the UTF-8 sequence at the start of s, or 0 when s does not
// start with a valid, shortest-form sequence of a scalar value (no surrogates, at
// most U+10FFFF).
std::size_t utf8_sequence_length(std::string_view s);

// `in` reversed by code point; a byte that is not part of valid UTF-8 is reversed
// as a unit of its own. The section 2.1 server of the lecture, done for Unicode.
std::string reverse_utf8(std::string_view in);

// "1 client", "3 clients": a count and its noun, singular only for 1; the plural is
// the noun and an s unless given ("1 loop pass", "2 loop passes").
std::string counted(std::size_t n, std::string_view noun, std::string_view plural = {});

}  // namespace talk
