// text: sanitize(), utf8_sequence_length() and reverse_utf8().
#include "talk/text.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <string_view>

using namespace talk;
using namespace std::string_literals;

namespace {

// Checks the two promises every output of sanitize() keeps, and returns the output.
std::string checked_sanitize(std::string_view in) {
    std::string out = sanitize(in);
    INFO("input of " << in.size() << " bytes");
    REQUIRE(out.size() <= max_sanitized_size(in.size()));
    for (unsigned char c : out) {
        REQUIRE((c >= 0x20 || c == '\t'));
        REQUIRE(c != 0x7F);
    }
    return out;
}

std::string utf8(char32_t cp) {
    std::string s;
    if (cp < 0x80) {
        s += static_cast<char>(cp);
    } else if (cp < 0x800) {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        s += static_cast<char>(0xE0 | (cp >> 12));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        s += static_cast<char>(0xF0 | (cp >> 18));
        s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
}

}  // namespace

// ---- sanitize ----

TEST_CASE("sanitize: printable ASCII and TAB pass unchanged", "[text][sanitize]") {
    std::string all;
    for (int c = 0x20; c < 0x7F; ++c) all += static_cast<char>(c);
    all += '\t';
    CHECK(checked_sanitize(all) == all);
    CHECK(checked_sanitize("") == "");
    CHECK(checked_sanitize("hello\tworld") == "hello\tworld");
}

TEST_CASE("sanitize: C0 controls and DEL in caret form", "[text][sanitize]") {
    CHECK(sanitize("\x1b") == "^[");
    CHECK(sanitize("\0"s) == "^@");
    CHECK(sanitize("\r") == "^M");
    CHECK(sanitize("\n") == "^J");
    CHECK(sanitize("\a") == "^G");
    CHECK(sanitize("\x1f") == "^_");
    CHECK(sanitize("\x7f") == "^?");
    CHECK(sanitize("a\x1b[31mred\x1b[0m") == "a^[[31mred^[[0m");
    CHECK(sanitize("fake\rFrom admin, hi") == "fake^MFrom admin, hi");

    for (int c = 0; c < 0x20; ++c) {
        if (c == '\t') continue;
        CAPTURE(c);
        std::string expected = {'^', static_cast<char>(c + 0x40)};
        CHECK(checked_sanitize(std::string(1, static_cast<char>(c))) == expected);
    }
}

TEST_CASE("sanitize: C1 controls shown as code points", "[text][sanitize]") {
    CHECK(sanitize("\xC2\x9B") == "<U+009B>");  // CSI
    CHECK(sanitize("\xC2\x80") == "<U+0080>");
    CHECK(sanitize("\xC2\x85") == "<U+0085>");  // NEL
    CHECK(sanitize("\xC2\x9F") == "<U+009F>");
    CHECK(sanitize("a\xC2\x9B" "31mb") == "a<U+009B>31mb");
    // U+00A0 is the first one after C1: printable, unchanged.
    CHECK(sanitize("\xC2\xA0") == "\xC2\xA0");
}

TEST_CASE("sanitize: separators and bidi controls shown as code points", "[text][sanitize]") {
    CHECK(sanitize(utf8(0x2028)) == "<U+2028>");
    CHECK(sanitize(utf8(0x2029)) == "<U+2029>");
    for (char32_t cp = 0x202A; cp <= 0x202E; ++cp) {
        CAPTURE(static_cast<std::uint32_t>(cp));
        char expected[9];
        std::snprintf(expected, sizeof expected, "<U+%04X>", static_cast<unsigned>(cp));
        CHECK(sanitize(utf8(cp)) == expected);
    }
    for (char32_t cp = 0x2066; cp <= 0x2069; ++cp) {
        CAPTURE(static_cast<std::uint32_t>(cp));
        char expected[9];
        std::snprintf(expected, sizeof expected, "<U+%04X>", static_cast<unsigned>(cp));
        CHECK(sanitize(utf8(cp)) == expected);
    }
    CHECK(sanitize("abc\xE2\x80\xAE" "cba") == "abc<U+202E>cba");
    // Neighbours of the ranges are ordinary characters.
    for (char32_t cp : {0x2027u, 0x202Fu, 0x2065u, 0x206Au}) {
        CAPTURE(static_cast<std::uint32_t>(cp));
        CHECK(sanitize(utf8(cp)) == utf8(cp));
    }
}

TEST_CASE("sanitize: valid UTF-8 passes unchanged", "[text][sanitize]") {
    const char* samples[] = {
        "caf\xC3\xA9",                 // café
        "\xED\x95\x9C\xEA\xB8\x80",    // 한글
        "\xF0\x9F\x98\x80",            // 😀, 4 bytes
        "\xF4\x8F\xBF\xBF",            // U+10FFFF, the last scalar value
        "\xEF\xBF\xBD",                // U+FFFD
        "\xED\x9F\xBF",                // U+D7FF, just below the surrogates
        "\xEE\x80\x80",                // U+E000, just above them
        "\xDF\xBF",                    // U+07FF
        "\xE0\xA0\x80",                // U+0800, shortest 3-byte
        "\xF0\x90\x80\x80",            // U+10000, shortest 4-byte
        "mixed: \xC3\xA9 \xED\x95\x9C \xF0\x9F\x98\x80 done",
    };
    for (const char* s : samples) {
        CAPTURE(s);
        CHECK(checked_sanitize(s) == s);
    }
}

TEST_CASE("sanitize: bytes that are not UTF-8 become \\xNN, one per byte", "[text][sanitize]") {
    CHECK(sanitize("\x80") == "\\x80");                                  // stray continuation
    CHECK(sanitize("\xFF") == "\\xFF");                                  // never in UTF-8
    CHECK(sanitize("\xFE") == "\\xFE");
    CHECK(sanitize("\xC0\xAF") == "\\xC0\\xAF");                          // overlong '/'
    CHECK(sanitize("\xC1\xBF") == "\\xC1\\xBF");                          // overlong
    CHECK(sanitize("\xE0\x80\xAF") == "\\xE0\\x80\\xAF");                 // overlong 3-byte
    CHECK(sanitize("\xF0\x80\x80\xAF") == "\\xF0\\x80\\x80\\xAF");        // overlong 4-byte
    CHECK(sanitize("\xED\xA0\x80") == "\\xED\\xA0\\x80");                 // surrogate D800
    CHECK(sanitize("\xED\xBF\xBF") == "\\xED\\xBF\\xBF");                 // surrogate DFFF
    CHECK(sanitize("\xF4\x90\x80\x80") == "\\xF4\\x90\\x80\\x80");        // above U+10FFFF
    CHECK(sanitize("\xF5\x80\x80\x80") == "\\xF5\\x80\\x80\\x80");
    CHECK(sanitize("\xE2\x82") == "\\xE2\\x82");                          // truncated at end
    CHECK(sanitize("ab\xE2\x82" "cd") == "ab\\xE2\\x82cd");               // truncated inside
    CHECK(sanitize("\xC3") == "\\xC3");
    CHECK(sanitize("\xF0\x9F\x98") == "\\xF0\\x9F\\x98");
    // Hex digits are uppercase.
    CHECK(sanitize("\xAB\xCD\xEF") == "\\xAB\\xCD\\xEF");
    // A bad byte does not swallow the valid sequence after it.
    CHECK(sanitize("\x80\xC3\xA9") == "\\x80\xC3\xA9");
    CHECK(sanitize("\xE2\xC3\xA9") == "\\xE2\xC3\xA9");
}

TEST_CASE("sanitize: the caller's-buffer form agrees with the string form", "[text][sanitize]") {
    std::string in = "a\x1b\xC2\x9B\xFF\xE2\x80\xAE\xF0\x9F\x98\x80z";
    std::string buf(max_sanitized_size(in.size()), '#');
    std::size_t n = sanitize(in, buf.data());
    REQUIRE(n <= buf.size());
    CHECK(buf.substr(0, n) == sanitize(in));
    CHECK(buf.substr(0, n) == "a^[<U+009B>\\xFF<U+202E>\xF0\x9F\x98\x80z");
}

TEST_CASE("sanitize: output within max_sanitized_size for every 1- and 2-byte input",
          "[text][sanitize]") {
    // Exhaustive and quiet: count violations instead of asserting 65,000 times.
    std::size_t too_big = 0, bad_byte = 0;
    std::string first_bad;
    std::string out(max_sanitized_size(2) + 64, '\0');
    auto check = [&](const std::string& in) {
        std::size_t n = sanitize(in, out.data());
        bool bad = false;
        if (n > max_sanitized_size(in.size())) {
            ++too_big;
            bad = true;
        }
        for (std::size_t i = 0; i < n; ++i) {
            unsigned char c = static_cast<unsigned char>(out[i]);
            if ((c < 0x20 && c != '\t') || c == 0x7F) {
                ++bad_byte;
                bad = true;
                break;
            }
        }
        if (bad && first_bad.empty()) first_bad = sanitize(in);
    };
    std::string in;
    for (int a = 0; a < 256; ++a) {
        in.assign(1, static_cast<char>(a));
        check(in);
        for (int b = 0; b < 256; ++b) {
            in.assign({static_cast<char>(a), static_cast<char>(b)});
            check(in);
        }
    }
    INFO("first offending output: " << first_bad);
    CHECK(too_big == 0);
    CHECK(bad_byte == 0);
}

TEST_CASE("sanitize: random inputs stay within bounds", "[text][sanitize]") {
    std::mt19937 rng(20240521);
    std::uniform_int_distribution<int> len_dist(0, 64);
    // Bias towards the interesting bytes: controls, leads, continuations, ASCII.
    const unsigned char pool[] = {0x00, 0x09, 0x0A, 0x0D, 0x1B, 0x7F, 0x80, 0x9B, 0xA0,
                                  0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE2, 0xED, 0xEF, 0xF0,
                                  0xF4, 0xF5, 0xFF, 'a',  ' ',  0x80, 0x8F, 0xAE, 0xA8};
    std::uniform_int_distribution<int> byte_dist(0, 255);
    std::uniform_int_distribution<int> pool_dist(0, sizeof pool - 1);
    std::size_t failures = 0;
    for (int round = 0; round < 20000; ++round) {
        std::string in(static_cast<std::size_t>(len_dist(rng)), '\0');
        for (char& c : in)
            c = static_cast<char>(round % 2 ? byte_dist(rng) : pool[pool_dist(rng)]);
        std::string out = sanitize(in);
        bool ok = out.size() <= max_sanitized_size(in.size());
        for (unsigned char c : out)
            if ((c < 0x20 && c != '\t') || c == 0x7F) ok = false;
        // Deterministic: the same input gives the same output.
        if (sanitize(in) != out) ok = false;
        if (!ok) ++failures;
    }
    CHECK(failures == 0);
}

TEST_CASE("sanitize: worst cases reach but do not pass the bound", "[text][sanitize]") {
    // Four bytes out per byte in: invalid bytes, and C1 controls (2 bytes -> 8).
    std::string bad(100, '\xFF');
    CHECK(sanitize(bad).size() == max_sanitized_size(bad.size()));
    std::string c1;
    for (int i = 0; i < 50; ++i) c1 += "\xC2\x9B";
    CHECK(sanitize(c1).size() == max_sanitized_size(c1.size()));
}

// ---- utf8_sequence_length ----

TEST_CASE("utf8_sequence_length", "[text][utf8]") {
    struct row {
        std::string in;
        std::size_t len;
    };
    const row rows[] = {
        {"", 0},
        {"a", 1},
        {"\0"s, 1},
        {"\x7F", 1},
        {"abc", 1},                       // only the first sequence counts
        {"\x80", 0},                      // continuation byte
        {"\xBF", 0},
        {"\xC0\x80", 0},                  // overlong leads
        {"\xC1\xBF", 0},
        {"\xC2\x80", 2},
        {"\xDF\xBF", 2},
        {"\xC3\xA9xyz", 2},
        {"\xC2", 0},                      // truncated
        {"\xC2\x41", 0},                  // second byte not a continuation
        {"\xC2\xC0", 0},
        {"\xE0\x9F\xBF", 0},              // overlong 3-byte
        {"\xE0\xA0\x80", 3},
        {"\xE2\x82\xAC", 3},              // €
        {"\xE2\x82", 0},                  // truncated
        {"\xE2\x82\x41", 0},              // third byte not a continuation
        {"\xED\x9F\xBF", 3},              // U+D7FF
        {"\xED\xA0\x80", 0},              // U+D800
        {"\xED\xBF\xBF", 0},              // U+DFFF
        {"\xEE\x80\x80", 3},              // U+E000
        {"\xEF\xBF\xBF", 3},              // U+FFFF
        {"\xF0\x8F\xBF\xBF", 0},          // overlong 4-byte
        {"\xF0\x90\x80\x80", 4},          // U+10000
        {"\xF0\x9F\x98\x80", 4},          // 😀
        {"\xF4\x8F\xBF\xBF", 4},          // U+10FFFF
        {"\xF4\x90\x80\x80", 0},          // U+110000
        {"\xF0\x9F\x98", 0},              // truncated
        {"\xF0\x9F\x41\x80", 0},
        {"\xF0\x9F\x98\x41", 0},
        {"\xF5\x80\x80\x80", 0},
        {"\xF8\x88\x80\x80\x80", 0},
        {"\xFE", 0},
        {"\xFF", 0},
    };
    for (const row& r : rows) {
        CAPTURE(r.in);
        CHECK(utf8_sequence_length(r.in) == r.len);
    }
}

TEST_CASE("utf8_sequence_length accepts exactly the encodings of scalar values",
          "[text][utf8]") {
    // Every scalar value encodes to a sequence of the expected length.
    std::size_t wrong = 0;
    for (char32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x3000 ? 1 : 97)) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        std::string s = utf8(cp);
        if (utf8_sequence_length(s) != s.size()) ++wrong;
    }
    CHECK(wrong == 0);
    // Every surrogate is refused.
    for (char32_t cp = 0xD800; cp <= 0xDFFF; ++cp) {
        if (utf8_sequence_length(utf8(cp)) != 0) ++wrong;
    }
    CHECK(wrong == 0);
}

// ---- reverse_utf8 ----

TEST_CASE("reverse_utf8", "[text][reverse]") {
    CHECK(reverse_utf8("") == "");
    CHECK(reverse_utf8("a") == "a");
    CHECK(reverse_utf8("hello") == "olleh");
    CHECK(reverse_utf8("\xED\x95\x9C\xEA\xB8\x80") == "\xEA\xB8\x80\xED\x95\x9C");  // 한글 -> 글한
    CHECK(reverse_utf8("caf\xC3\xA9") == "\xC3\xA9" "fac");
    CHECK(reverse_utf8("a\xF0\x9F\x98\x80z") == "z\xF0\x9F\x98\x80" "a");
    // Invalid bytes are units of their own and come back reversed, not dropped.
    CHECK(reverse_utf8("a\xFF" "b") == "b\xFF" "a");
    CHECK(reverse_utf8("\xE2\x82") == "\x82\xE2");
    CHECK(reverse_utf8("x\xC3\xA9\x80y") == "y\x80\xC3\xA9x");
    CHECK(reverse_utf8("\xED\xA0\x80") == "\x80\xA0\xED");  // a surrogate is three bad bytes
}

TEST_CASE("reverse_utf8: same length, and twice is the identity on valid UTF-8",
          "[text][reverse]") {
    const char* samples[] = {
        "",
        "hello, world",
        "\xED\x95\x9C\xEA\xB8\x80 \xEC\x95\x88\xEB\x85\x95",
        "mixed: \xC3\xA9 \xED\x95\x9C \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF done",
    };
    for (const char* s : samples) {
        CAPTURE(s);
        std::string once = reverse_utf8(s);
        CHECK(once.size() == std::strlen(s));
        CHECK(reverse_utf8(once) == s);
    }
}

TEST_CASE("reverse_utf8: random bytes never crash and keep the byte multiset",
          "[text][reverse]") {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> byte_dist(0, 255);
    std::size_t failures = 0;
    for (int round = 0; round < 5000; ++round) {
        std::string in(static_cast<std::size_t>(round % 40), '\0');
        for (char& c : in) c = static_cast<char>(byte_dist(rng));
        std::string out = reverse_utf8(in);
        std::string a = in, b = out;
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        if (a != b) ++failures;
    }
    CHECK(failures == 0);
}

TEST_CASE("counted: a count and its noun, singular only for 1", "[text]") {
    CHECK(counted(0, "client") == "0 clients");
    CHECK(counted(1, "client") == "1 client");
    CHECK(counted(2, "second") == "2 seconds");
    CHECK(counted(992, "client") == "992 clients");
    CHECK(counted(1, "loop pass", "loop passes") == "1 loop pass");
    CHECK(counted(8, "loop pass", "loop passes") == "8 loop passes");
}
