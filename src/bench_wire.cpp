#include "talk/bench/wire.hpp"

#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace talk::bench {

namespace {

std::size_t digits(std::uint64_t v) {
    std::size_t n = 1;
    while (v >= 10) {
        v /= 10;
        ++n;
    }
    return n;
}

// v as exactly `width` digits, zero-padded; the caller has made width wide enough.
char* put_fixed(char* p, std::size_t width, std::uint64_t v) {
    for (std::size_t i = width; i-- > 0;) {
        p[i] = static_cast<char>('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

// A RESP header line at p ("*3", "$42", ":1", "+OK"): its text without the type
// byte and CRLF, and where the next byte is. False when the CRLF has not arrived.
bool header_line(const char*& p, const char* end, std::string_view& text) {
    const char* cr = static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(end - p)));
    if (!cr || cr + 1 >= end) return false;
    text = {p + 1, static_cast<std::size_t>(cr - p - 1)};
    p = cr + 2;
    return true;
}

bool signed_number(std::string_view s, long& v) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && ptr == s.data() + s.size();
}

// One non-array value at p. Returns 1 when parsed, 0 when incomplete, -1 on an error.
int scalar(const char*& p, const char* end, std::string_view& out) {
    if (p >= end) return 0;
    char type = *p;
    std::string_view text;
    const char* q = p;
    if (type != '$' && type != ':' && type != '+' && type != '-') return -1;
    if (!header_line(q, end, text)) return 0;
    if (type != '$') {
        out = text;
        p = q;
        return 1;
    }
    long len = 0;
    if (!signed_number(text, len) || len < -1) return -1;
    if (len == -1) {  // the null bulk string
        out = {};
        p = q;
        return 1;
    }
    if (end - q < len + 2) return 0;
    if (q[len] != '\r' || q[len + 1] != '\n') return -1;
    out = {q, static_cast<std::size_t>(len)};
    p = q + len + 2;
    return 1;
}

}  // namespace

layout layout::for_counts(std::uint64_t max_from, std::uint64_t max_seq) {
    layout l;
    l.from_width = digits(max_from);
    l.seq_width = digits(max_seq);
    return l;
}

char* format_payload(char* out, std::size_t size, char kind, const layout& l, const stamp& s) {
    char* p = out;
    char* end = out + size;
    *p++ = kind;
    *p++ = ' ';
    p = put_fixed(p, l.from_width, s.from);
    *p++ = ' ';
    p = put_fixed(p, l.seq_width, s.seq);
    *p++ = ' ';
    p = put_fixed(p, layout::ns_width, s.ns);
    if (p < end) {
        *p++ = ' ';
        std::memset(p, 'x', static_cast<std::size_t>(end - p));
    }
    return end;
}

framing framing::publish(protocol p, std::size_t size) {
    framing f;
    if (p == protocol::talk) {
        f.after_[0] = '\n';
        f.after_len_ = 1;
        return f;
    }
    auto r = fmt::format_to_n(f.before_, sizeof f.before_, "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{}\r\n${}\r\n",
                              channel.size(), channel, size);
    f.before_len_ = r.size;
    std::memcpy(f.after_, "\r\n", 2);
    f.after_len_ = 2;
    return f;
}

framing framing::echo(protocol p, std::size_t size) {
    framing f;
    if (p == protocol::talk) {
        f.after_[0] = '\n';
        f.after_len_ = 1;
        return f;
    }
    auto r = fmt::format_to_n(f.before_, sizeof f.before_, "*2\r\n$4\r\nECHO\r\n${}\r\n", size);
    f.before_len_ = r.size;
    std::memcpy(f.after_, "\r\n", 2);
    f.after_len_ = 2;
    return f;
}

relayed parse_relayed(std::string_view line) {
    // <who> is an address or a nick: neither holds ", ", so the first comma ends it.
    if (line.size() < 7 || std::memcmp(line.data(), "From ", 5) != 0) return {};
    const char* comma = static_cast<const char*>(std::memchr(line.data() + 5, ',', line.size() - 5));
    if (!comma || comma + 1 >= line.data() + line.size() || comma[1] != ' ') return {};
    std::size_t start = static_cast<std::size_t>(comma + 2 - line.data());
    return {true, line.substr(start)};
}

long parse_resp(std::string_view in, resp_value& v) {
    const char* p = in.data();
    const char* end = p + in.size();
    if (p == end) return 0;
    v.type = *p;
    v.items = 0;
    if (v.type != '*') {
        int r = scalar(p, end, v.item[0]);
        if (r <= 0) return r;
        return p - in.data();
    }
    std::string_view text;
    if (!header_line(p, end, text)) return 0;
    long n = 0;
    if (!signed_number(text, n) || n < -1) return -1;
    for (long i = 0; i < n; ++i) {
        std::string_view item;
        int r = scalar(p, end, item);
        if (r <= 0) return r;
        if (i < resp_value::max_items) v.item[i] = item;
    }
    v.items = n < 0 ? 0 : static_cast<int>(n);
    return p - in.data();
}

}  // namespace talk::bench
