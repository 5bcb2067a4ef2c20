// Fuzz target: sanitize(), utf8_sequence_length() and reverse_utf8() from text.hpp.
//
// The input is the text. sanitize() is compared byte for byte with a reference
// written here from the policy in text.hpp (with a decoder of its own), and its
// output is checked for what matters to a terminal: valid UTF-8, no control byte
// but TAB, no C1 control, no line separator, no bidirectional override or isolate.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "talk/text.hpp"

using fuzz::check;

namespace {

FUZZ_CHECKER unsigned char at(std::string_view s, std::size_t i) { return static_cast<unsigned char>(s[i]); }

// The reference decoder: the length from the lead byte, the value from the bits,
// then the rules (no overlong form, no surrogate, nothing past U+10FFFF).
// Returns the length (0: invalid) and sets cp.
FUZZ_CHECKER std::size_t decode(std::string_view s, char32_t& cp) {
    if (s.empty()) return 0;
    unsigned char b = at(s, 0);
    std::size_t len;
    if (b < 0x80) {
        cp = b;
        return 1;
    } else if ((b & 0xE0) == 0xC0) {
        len = 2;
        cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
        len = 3;
        cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
        len = 4;
        cp = b & 0x07;
    } else {
        return 0;
    }
    if (s.size() < len) return 0;
    for (std::size_t i = 1; i < len; ++i) {
        if ((at(s, i) & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (at(s, i) & 0x3F);
    }
    static constexpr char32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

FUZZ_CHECKER bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        char32_t cp;
        std::size_t len = decode(s.substr(i), cp);
        if (len == 0) return false;
        i += len;
    }
    return true;
}

FUZZ_CHECKER bool shown_as_code(char32_t cp) {
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

const char hex[] = "0123456789ABCDEF";

// The policy of text.hpp, written plainly.
FUZZ_CHECKER std::string reference_sanitize(std::string_view in) {
    std::string out;
    for (std::size_t i = 0; i < in.size();) {
        unsigned char c = at(in, i);
        char32_t cp = 0;
        std::size_t len = decode(in.substr(i), cp);
        if (c == '\t' || (c >= 0x20 && c < 0x7F)) {
            out += static_cast<char>(c);
            ++i;
        } else if (c < 0x20 || c == 0x7F) {
            out += '^';
            out += c == 0x7F ? '?' : static_cast<char>(c + 0x40);
            ++i;
        } else if (len == 0) {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
            ++i;
        } else if (shown_as_code(cp)) {
            out += "<U+";
            for (int shift = 12; shift >= 0; shift -= 4) out += hex[(cp >> shift) & 15];
            out += '>';
            i += len;
        } else {
            out.append(in.substr(i, len));
            i += len;
        }
    }
    return out;
}

FUZZ_CHECKER void check_terminal_safe(std::string_view out, std::string_view in) {
    for (std::size_t i = 0; i < out.size();) {
        unsigned char c = at(out, i);
        check(c == '\t' || (c >= 0x20 && c != 0x7F), "no control byte but TAB in sanitize()'s output", in);
        std::size_t len = talk::utf8_sequence_length(out.substr(i));
        check(len > 0, "sanitize()'s output is valid UTF-8", in);
        char32_t cp = 0;
        check(decode(out.substr(i), cp) == len, "both decoders agree on the output", in);
        check(!shown_as_code(cp), "no C1 control, line separator or bidi control in the output", in);
        i += len;
    }
}

void check_sanitize(std::string_view in) {
    // The buffer form, into exactly the room promised: AddressSanitizer sees any overrun.
    const std::size_t room = talk::max_sanitized_size(in.size());
    std::unique_ptr<char[]> buf(new char[room == 0 ? 1 : room]);
    std::size_t n = talk::sanitize(in, buf.get());
    check(n <= room, "sanitize() writes at most max_sanitized_size()", in);
    std::string_view out(buf.get(), n);
    check(talk::sanitize(in) == out, "both forms of sanitize() agree", in);
    check(out == reference_sanitize(in), "sanitize() follows the policy of text.hpp", in);
    check_terminal_safe(out, in);
    check(talk::sanitize(out) == out, "sanitize() twice is sanitize()", in);
}

void check_reverse(std::string_view in) {
    std::string r = talk::reverse_utf8(in);
    check(r.size() == in.size(), "reverse_utf8() keeps the length", in);
    std::string a(in), b(r);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    check(a == b, "reverse_utf8() keeps the bytes", in);
    if (!valid_utf8(in)) return;
    check(valid_utf8(r), "valid UTF-8 reversed is valid UTF-8", in);
    check(talk::reverse_utf8(r) == in, "valid UTF-8 reversed twice is itself", in);
    // Code point by code point: the last of the input comes first.
    std::vector<char32_t> fwd, back;
    for (std::size_t i = 0; i < in.size();) {
        char32_t cp;
        i += decode(in.substr(i), cp);
        fwd.push_back(cp);
    }
    for (std::size_t i = 0; i < r.size();) {
        char32_t cp;
        i += decode(std::string_view(r).substr(i), cp);
        back.push_back(cp);
    }
    std::reverse(back.begin(), back.end());
    check(fwd == back, "reverse_utf8() reverses code points", in);
}

FUZZ_CHECKER void check_lengths(std::string_view in) {
    for (std::size_t i = 0; i <= in.size(); ++i) {
        char32_t cp;
        check(talk::utf8_sequence_length(in.substr(i)) == decode(in.substr(i), cp),
              "utf8_sequence_length() agrees with the reference decoder", in.substr(i));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    check_lengths(in);
    check_sanitize(in);
    check_reverse(in);
    return 0;
}
