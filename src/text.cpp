#include "talk/text.hpp"

#include <cstring>

#include <fmt/format.h>

namespace talk {

namespace {

unsigned char byte(std::string_view s, std::size_t i) { return static_cast<unsigned char>(s[i]); }

bool is_cont(unsigned char b) { return (b & 0xC0) == 0x80; }

// Decodes the code point of a sequence already checked by utf8_sequence_length.
char32_t decode(std::string_view s, std::size_t len) {
    unsigned char b0 = byte(s, 0);
    if (len == 1) return b0;
    char32_t cp = b0 & (0xFF >> (len + 1));
    for (std::size_t i = 1; i < len; ++i) cp = (cp << 6) | (byte(s, i) & 0x3F);
    return cp;
}

// Code points that would let one line rearrange or break how others display.
bool shown_as_code(char32_t cp) {
    return (cp >= 0x80 && cp <= 0x9F)                    // C1 controls (CSI, NEL, ...)
           || cp == 0x2028 || cp == 0x2029               // line and paragraph separators
           || (cp >= 0x202A && cp <= 0x202E)             // bidi embeddings and overrides
           || (cp >= 0x2066 && cp <= 0x2069);            // bidi isolates
}

const char hex[] = "0123456789ABCDEF";

}  // namespace

std::size_t utf8_sequence_length(std::string_view s) {
    if (s.empty()) return 0;
    unsigned char b0 = byte(s, 0);
    if (b0 < 0x80) return 1;
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        if (b0 == 0xE0) lo = 0xA0;  // overlong
        if (b0 == 0xED) hi = 0x9F;  // surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        if (b0 == 0xF0) lo = 0x90;  // overlong
        if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
        return 0;  // continuation byte, C0/C1 overlong lead, or F5..FF
    }
    if (s.size() < len) return 0;
    if (byte(s, 1) < lo || byte(s, 1) > hi) return 0;
    for (std::size_t i = 2; i < len; ++i)
        if (!is_cont(byte(s, i))) return 0;
    return len;
}

std::size_t sanitize(std::string_view in, char* out) {
    char* o = out;
    std::size_t i = 0;
    while (i < in.size()) {
        unsigned char c = byte(in, i);
        if ((c >= 0x20 && c < 0x7F) || c == '\t') {
            *o++ = static_cast<char>(c);
            ++i;
        } else if (c < 0x20 || c == 0x7F) {
            *o++ = '^';
            *o++ = c == 0x7F ? '?' : static_cast<char>(c + 0x40);
            ++i;
        } else if (std::size_t len = utf8_sequence_length(in.substr(i)); len == 0) {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 0xF];
            ++i;
        } else if (char32_t cp = decode(in.substr(i), len); shown_as_code(cp)) {
            // "<U+XXXX>": 8 bytes for a 2- or 3-byte sequence, within the 4x bound.
            const char form[] = {'<', 'U', '+', hex[(cp >> 12) & 0xF], hex[(cp >> 8) & 0xF],
                                 hex[(cp >> 4) & 0xF], hex[cp & 0xF], '>'};
            std::memcpy(o, form, sizeof form);
            o += sizeof form;
            i += len;
        } else {
            std::memcpy(o, in.data() + i, len);
            o += len;
            i += len;
        }
    }
    return static_cast<std::size_t>(o - out);
}

std::string sanitize(std::string_view in) {
    std::string out(max_sanitized_size(in.size()), '\0');
    out.resize(sanitize(in, out.data()));
    return out;
}

std::string reverse_utf8(std::string_view in) {
    std::string out(in.size(), '\0');
    std::size_t i = 0, o = in.size();
    while (i < in.size()) {
        std::size_t len = utf8_sequence_length(in.substr(i));
        if (len == 0) len = 1;  // a stray byte is its own unit
        o -= len;
        std::memcpy(out.data() + o, in.data() + i, len);
        i += len;
    }
    return out;
}

std::string counted(std::size_t n, std::string_view noun, std::string_view plural) {
    if (n == 1) return fmt::format("1 {}", noun);
    if (!plural.empty()) return fmt::format("{} {}", n, plural);
    return fmt::format("{} {}s", n, noun);
}

}  // namespace talk
