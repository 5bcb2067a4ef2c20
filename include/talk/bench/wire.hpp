// What talkbench puts on the wire and how it reads it back, for both protocols.
//
// A benchmark message is one payload of exactly --size bytes:
//
//     b <sender> <seq> <ns> xxxxxxxx...        fanout: a message
//     e <conn> <seq> <ns> xxxxxxxx...          echo, idle: a request
//
// <ns> is CLOCK_MONOTONIC in nanoseconds when it was written (generator and server
// share the machine, so the receiver's clock is the same clock). Each field has a
// fixed width for the run, zero-padded: <sender> as wide as the largest sender
// number, <seq> as the largest sequence number, <ns> 20 digits. The reader then
// knows where every field is and converts 8 digits at a time (SWAR) instead of
// scanning digit by digit: the parse is on the per-delivery path. Everything is
// ASCII without blanks in the fields, so talkd relays it unchanged and a human
// reading a trace sees what is what.
//
//   talk    the payload is a line: "<payload>\n"; talkd delivers it to the others
//           as "From <ip:port>, <payload>\n", or echoes it back as it was.
//   redis   PUBLISH talkbench <payload> as a RESP array; subscribers receive
//           *3 $7 message $9 talkbench $<size> <payload>. ECHO <payload> comes back
//           as one bulk string.
//
// Nothing here allocates: formatting writes into the caller's buffer and parsing
// returns views into it. The clock is read by the caller (now_ns), once per read().
#pragma once

#include <time.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace talk::bench {

enum class protocol { talk, redis };

// CLOCK_MONOTONIC in nanoseconds: what steady_clock reads on Linux, through the vDSO.
inline std::uint64_t now_ns() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::uint64_t(ts.tv_sec) * 1'000'000'000u + std::uint64_t(ts.tv_nsec);
}

inline constexpr std::string_view channel = "talkbench";

// The fields of a benchmark payload.
struct stamp {
    std::uint32_t from = 0;  // sender index (fanout) or connection index (echo)
    std::uint32_t seq = 0;
    std::uint64_t ns = 0;
};

// Where the fields of a payload are, fixed for a run.
struct layout {
    static constexpr std::size_t ns_width = 20;  // any 64-bit value
    std::size_t from_width = 1;
    std::size_t seq_width = 1;

    // Room for the largest `from` and `seq` of a run.
    static layout for_counts(std::uint64_t max_from, std::uint64_t max_seq);
    // The shortest payload that holds the fields: "b F Q T".
    std::size_t header() const { return 2 + from_width + 1 + seq_width + 1 + ns_width; }
};

// Writes the payload "<kind> from seq ns", padded with " xxx" to exactly `size`
// bytes (size >= l.header()). Returns out + size.
char* format_payload(char* out, std::size_t size, char kind, const layout& l, const stamp& s);

// Parses a payload written by format_payload with the same layout. False when it
// is not one (wrong kind letter, a field out of place or not all digits). Inline:
// it runs once per delivery.
inline bool parse_payload(std::string_view p, char kind, const layout& l, stamp& s);

// The bytes around each payload, computed once per run.
//   talk         "" and "\n"
//   redis fanout "*3\r\n$7\r\nPUBLISH\r\n$9\r\ntalkbench\r\n$<size>\r\n" and "\r\n"
//   redis echo   "*2\r\n$4\r\nECHO\r\n$<size>\r\n" and "\r\n"
class framing {
public:
    static framing publish(protocol p, std::size_t size);
    static framing echo(protocol p, std::size_t size);
    std::string_view before() const { return {before_, before_len_}; }
    std::string_view after() const { return {after_, after_len_}; }
    std::size_t overhead() const { return before_len_ + after_len_; }

private:
    char before_[64] = {};
    char after_[4] = {};
    std::size_t before_len_ = 0, after_len_ = 0;
};

// ---- reading ----

// talk: the payload of a relayed line "From <who>, <payload>", or an empty view
// with ok = false when the line is something else (a notice, an error).
struct relayed {
    bool ok = false;
    std::string_view payload;
};
relayed parse_relayed(std::string_view line);

// One RESP value, as much of it as talkbench needs: a flat array (pub/sub pushes,
// subscribe confirmations) or a single bulk string, integer, simple string or error.
struct resp_value {
    static constexpr int max_items = 4;
    char type = 0;         // '*', '$', ':', '+' or '-'
    int items = 0;         // array elements (all parsed, the first max_items kept)
    std::string_view item[max_items];  // the elements, or item[0] = the value itself
};
// Parses one RESP value at the front of `in`. Returns the bytes it took, 0 when the
// value is not complete yet, or -1 when the bytes are not RESP (or are a nested
// array, which nothing talkbench talks to sends).
long parse_resp(std::string_view in, resp_value& v);

// ---- inline parsing ----

namespace detail {

// 8 ASCII digits at p as a number (SWAR: all eight at once, Lemire's reduction);
// false when one of them is not a digit.
inline bool digits8(const char* p, std::uint64_t& out) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);  // p[0] low
    std::uint64_t d = v - 0x3030303030303030u;
    // Every byte 0x30..0x39: high nibble 3, and low nibble + 6 below 16.
    if (((v & 0xF0F0F0F0F0F0F0F0u) ^ 0x3030303030303030u) | ((d + 0x0606060606060606u) & 0xF0F0F0F0F0F0F0F0u))
        return false;
    d = d * 10 + (d >> 8);  // pairs
    out = ((d & 0x000000FF000000FFu) * (100 + (1000000ull << 32)) +
           ((d >> 16) & 0x000000FF000000FFu) * (1 + (10000ull << 32))) >>
          32;
    return true;
}

// `width` (1 to 8) ASCII digits at p, where at least 8 bytes are readable: the 8
// bytes are loaded, the ones past the field shifted out and replaced by leading '0's.
inline bool digits_upto8(const char* p, std::size_t width, std::uint64_t& out) {
    if (width == 8) return digits8(p, out);
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
    unsigned shift = static_cast<unsigned>(8 - width) * 8;
    v = (v << shift) | (0x3030303030303030u >> (64 - shift));
    char padded[8];
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
    std::memcpy(padded, &v, 8);
    return digits8(padded, out);
}

// `width` ASCII digits at p, 8 at a time where it can.
inline bool fixed_digits(const char* p, std::size_t width, std::uint64_t& out) {
    std::uint64_t x = 0, eight = 0;
    for (; width >= 8; width -= 8, p += 8) {
        if (!digits8(p, eight)) return false;
        x = x * 100000000u + eight;
    }
    for (; width > 0; --width, ++p) {
        unsigned d = static_cast<unsigned char>(*p) - unsigned{'0'};
        if (d > 9) return false;
        x = x * 10 + d;
    }
    out = x;
    return true;
}

// A sender or sequence field: the 20-digit ns field after it makes 8 bytes readable.
inline bool field_digits(const char* p, std::size_t width, std::uint64_t& out) {
    return width <= 8 ? digits_upto8(p, width, out) : fixed_digits(p, width, out);
}

}  // namespace detail

inline bool parse_payload(std::string_view text, char kind, const layout& l, stamp& s) {
    if (text.size() < l.header() || text[0] != kind || text[1] != ' ') return false;
    const char* p = text.data() + 2;
    std::uint64_t from = 0, seq = 0, hi = 0, mid = 0, lo = 0;
    if (!detail::field_digits(p, l.from_width, from) || p[l.from_width] != ' ') return false;
    p += l.from_width + 1;
    if (!detail::field_digits(p, l.seq_width, seq) || p[l.seq_width] != ' ') return false;
    p += l.seq_width + 1;
    // The 20 digits of ns, straight: 8, 8, then the last 4 as the tail of an 8-digit
    // group that overlaps the middle one.
    static_assert(layout::ns_width == 20);
    if (!detail::digits8(p, hi) || !detail::digits8(p + 8, mid) || !detail::digits8(p + 12, lo)) return false;
    p += layout::ns_width;
    if (p != text.data() + text.size() && *p != ' ') return false;
    if (from > UINT32_MAX || seq > UINT32_MAX) return false;
    s = {static_cast<std::uint32_t>(from), static_cast<std::uint32_t>(seq),
         hi * 1000000000000u + mid * 10000u + lo % 10000u};
    return true;
}

}  // namespace talk::bench
