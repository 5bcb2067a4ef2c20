// line_framer: lines in pieces, CR LF, over-long lines and the bound on what is held,
// stopping mid-feed, and finish().
#include "talk/line_framer.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

using namespace talk;

namespace {

// Feeds input to a framer and records what comes out. partial_size() is checked
// against its bound after every feed.
struct harness {
    explicit harness(std::size_t max_line) : f(max_line) {}

    line_framer f;
    std::vector<std::string> lines;
    int too_long = 0;
    std::size_t max_partial = 0;
    std::size_t stop_after = static_cast<std::size_t>(-1);  // on_line returns false at this many

    std::size_t feed(std::string_view in) {
        std::size_t used = f.feed(
            in,
            [&](std::string_view line) {
                lines.emplace_back(line);
                return lines.size() < stop_after;
            },
            [&] { ++too_long; });
        if (f.partial_size() > max_partial) max_partial = f.partial_size();
        return used;
    }

    // Feeds in pieces of `step` bytes; every piece must be consumed.
    void feed_in_pieces(std::string_view in, std::size_t step) {
        for (std::size_t i = 0; i < in.size(); i += step) {
            std::string_view piece = in.substr(i, step);
            REQUIRE(feed(piece) == piece.size());
        }
    }

    void finish() {
        f.finish([&](std::string_view line) { lines.emplace_back(line); return true; },
                 [&] { ++too_long; });
    }
};

using lines_t = std::vector<std::string>;

}  // namespace

TEST_CASE("line_framer: one line in one feed", "[line_framer]") {
    harness h(100);
    CHECK(h.feed("hello\n") == 6);
    CHECK(h.lines == lines_t{"hello"});
    CHECK(h.too_long == 0);
    CHECK(h.f.partial_size() == 0);
    CHECK_FALSE(h.f.in_line());
    CHECK(h.f.max_line() == 100);
}

TEST_CASE("line_framer: a line arriving byte by byte", "[line_framer]") {
    harness h(100);
    std::string in = "hello, world\nsecond line\r\n";
    for (std::size_t i = 0; i < in.size(); ++i) {
        REQUIRE(h.feed(std::string_view(in).substr(i, 1)) == 1);
        if (i < 12) CHECK(h.lines.empty());
    }
    CHECK(h.lines == lines_t{"hello, world", "second line"});
    CHECK(h.too_long == 0);
    CHECK(h.f.partial_size() == 0);
}

TEST_CASE("line_framer: lines split at every possible point", "[line_framer]") {
    std::string in = "alpha\nbe\r\nta\n\ngamma\r\n";
    for (std::size_t cut = 0; cut <= in.size(); ++cut) {
        CAPTURE(cut);
        harness h(100);
        REQUIRE(h.feed(std::string_view(in).substr(0, cut)) == cut);
        REQUIRE(h.feed(std::string_view(in).substr(cut)) == in.size() - cut);
        CHECK(h.lines == lines_t{"alpha", "be", "ta", "", "gamma"});
        CHECK(h.f.partial_size() == 0);
    }
}

TEST_CASE("line_framer: many lines in one feed", "[line_framer]") {
    harness h(100);
    CHECK(h.feed("one\ntwo\r\nthree\nfour") == 19);
    CHECK(h.lines == lines_t{"one", "two", "three"});
    CHECK(h.f.partial_size() == 4);
    CHECK(h.f.in_line());
    CHECK(h.feed("\n") == 1);
    CHECK(h.lines == lines_t{"one", "two", "three", "four"});
    CHECK_FALSE(h.f.in_line());
}

TEST_CASE("line_framer: CR LF split across feeds", "[line_framer]") {
    harness h(100);
    CHECK(h.feed("abc\r") == 4);
    CHECK(h.lines.empty());
    CHECK(h.feed("\n") == 1);
    CHECK(h.lines == lines_t{"abc"});
}

TEST_CASE("line_framer: only one CR before LF is dropped", "[line_framer]") {
    harness h(100);
    h.feed("abc\r\r\n");
    CHECK(h.lines == lines_t{"abc\r"});
}

TEST_CASE("line_framer: a bare CR inside a line is kept", "[line_framer]") {
    harness h(100);
    h.feed("evil\rgood\n");
    h.feed("\rstart\n");
    h.feed("end\r");
    h.feed("x\n");
    CHECK(h.lines == lines_t{"evil\rgood", "\rstart", "end\rx"});
}

TEST_CASE("line_framer: empty lines are delivered as empty", "[line_framer]") {
    harness h(100);
    h.feed("\n\r\n\n");
    CHECK(h.lines == lines_t{"", "", ""});
    h.feed("\r");
    h.feed("\n");
    CHECK(h.lines == lines_t{"", "", "", ""});
    CHECK(h.too_long == 0);
}

TEST_CASE("line_framer: lines handed out carry exactly their bytes", "[line_framer]") {
    harness h(100);
    std::string in("a\0b\n\xff\xfe\n", 7);
    h.feed(in);
    REQUIRE(h.lines.size() == 2);
    CHECK(h.lines[0] == std::string("a\0b", 3));
    CHECK(h.lines[1] == "\xff\xfe");
}

TEST_CASE("line_framer: the max_line bound, exactly at and one past", "[line_framer]") {
    const std::size_t max = 16;
    const std::string exact(max, 'x');
    const std::string over(max + 1, 'y');
    const std::string next = "next line";

    struct variant {
        const char* name;
        const char* eol;
        std::size_t step;  // 0: the whole input in one feed
    };
    const variant variants[] = {
        {"LF, one piece", "\n", 0},        {"CR LF, one piece", "\r\n", 0},
        {"LF, byte by byte", "\n", 1},     {"CR LF, byte by byte", "\r\n", 1},
        {"LF, pieces of 3", "\n", 3},      {"CR LF, pieces of 3", "\r\n", 3},
        {"LF, pieces of 7", "\n", 7},      {"CR LF, pieces of 7", "\r\n", 7},
        {"LF, pieces of 16", "\n", 16},    {"CR LF, pieces of 17", "\r\n", 17},
    };
    for (const variant& v : variants) {
        CAPTURE(v.name);
        auto run = [&](const std::string& line) {
            harness h(max);
            std::string in = line + v.eol + next + v.eol;
            if (v.step == 0)
                REQUIRE(h.feed(in) == in.size());
            else
                h.feed_in_pieces(in, v.step);
            CHECK(h.max_partial <= max + 1);
            return h;
        };

        harness ok = run(exact);
        CHECK(ok.too_long == 0);
        CHECK(ok.lines == lines_t{exact, next});

        harness bad = run(over);
        CHECK(bad.too_long == 1);
        CHECK(bad.lines == lines_t{next});  // the next line is intact
    }
}

TEST_CASE("line_framer: a very long line is reported once and never held", "[line_framer]") {
    const std::size_t max = 64;
    const std::string huge(10000, 'z');
    for (std::size_t step : {std::size_t{1}, std::size_t{5}, std::size_t{63}, std::size_t{64},
                             std::size_t{65}, std::size_t{1000}, std::size_t{20000}}) {
        CAPTURE(step);
        harness h(max);
        h.feed_in_pieces("before\n" + huge + "\nafter\r\n", step);
        CHECK(h.too_long == 1);
        CHECK(h.max_partial <= max + 1);
        CHECK(h.lines == lines_t{"before", "after"});
        CHECK(h.f.partial_size() == 0);
        CHECK_FALSE(h.f.in_line());
    }
}

TEST_CASE("line_framer: while skipping a long line nothing is held", "[line_framer]") {
    harness h(8);
    CHECK(h.feed("0123456789") == 10);
    CHECK(h.too_long == 1);
    CHECK(h.f.partial_size() == 0);
    CHECK(h.f.in_line());  // still inside the long line
    CHECK(h.feed("more bytes of the same line") == 27);
    CHECK(h.too_long == 1);
    CHECK(h.f.partial_size() == 0);
    CHECK(h.feed("end\nok\n") == 7);
    CHECK(h.too_long == 1);
    CHECK(h.lines == lines_t{"ok"});
}

TEST_CASE("line_framer: each long line is reported once", "[line_framer]") {
    harness h(4);
    h.feed("aaaaaa\nbb\ncccccccccc\n");
    h.feed("dddd");
    h.feed("d\n");  // 5 bytes arrived in two pieces
    h.feed("eeee\r\n");
    CHECK(h.too_long == 3);
    CHECK(h.lines == lines_t{"bb", "eeee"});
}

TEST_CASE("line_framer: a held CR right at the bound", "[line_framer]") {
    harness h(4);
    SECTION("CR then LF: accepted") {
        h.feed("abcd\r");
        CHECK(h.f.partial_size() == 5);
        h.feed("\n");
        CHECK(h.lines == lines_t{"abcd"});
        CHECK(h.too_long == 0);
    }
    SECTION("CR then more text: too long") {
        h.feed("abcd\r");
        h.feed("e\n");
        CHECK(h.lines.empty());
        CHECK(h.too_long == 1);
    }
    SECTION("a fifth byte that is not CR: too long at LF") {
        h.feed("abcde");
        h.feed("\n");
        CHECK(h.lines.empty());
        CHECK(h.too_long == 1);
    }
}

TEST_CASE("line_framer: feed stops right after the line on_line refused", "[line_framer]") {
    harness h(100);
    h.stop_after = 2;
    std::string in = "one\ntwo\r\nthree\nfour";
    CHECK(h.feed(in) == 9);  // "one\ntwo\r\n"
    CHECK(h.lines == lines_t{"one", "two"});
    CHECK(h.f.partial_size() == 0);

    // The caller may hand the rest in later; the framer has kept nothing of it.
    h.stop_after = static_cast<std::size_t>(-1);
    CHECK(h.feed(std::string_view(in).substr(9)) == in.size() - 9);
    CHECK(h.lines == lines_t{"one", "two", "three"});
    CHECK(h.f.partial_size() == 4);
}

TEST_CASE("line_framer: stop on a line completed from a held tail", "[line_framer]") {
    harness h(100);
    h.stop_after = 1;
    CHECK(h.feed("qu") == 2);
    CHECK(h.feed("it\nignored\n") == 3);
    CHECK(h.lines == lines_t{"quit"});
    CHECK(h.f.partial_size() == 0);
}

TEST_CASE("line_framer: stop on the last line consumes everything", "[line_framer]") {
    harness h(100);
    h.stop_after = 1;
    CHECK(h.feed("bye\n") == 4);
    CHECK(h.lines == lines_t{"bye"});
}

TEST_CASE("line_framer: finish", "[line_framer]") {
    harness h(8);
    SECTION("delivers an unterminated last line") {
        h.feed("one\ntwo");
        h.finish();
        CHECK(h.lines == lines_t{"one", "two"});
        CHECK(h.too_long == 0);
        CHECK(h.f.partial_size() == 0);
        CHECK_FALSE(h.f.in_line());
    }
    SECTION("strips a trailing CR") {
        h.feed("two\r");
        h.finish();
        CHECK(h.lines == lines_t{"two"});
    }
    SECTION("an unterminated line of exactly max_line is accepted") {
        h.feed("12345678");
        h.finish();
        CHECK(h.lines == lines_t{"12345678"});
        CHECK(h.too_long == 0);
    }
    SECTION("an unterminated line of max_line + 1 is too long") {
        h.feed("123456789");
        h.finish();
        CHECK(h.lines.empty());
        CHECK(h.too_long == 1);
    }
    SECTION("inside a line already reported too long: nothing more") {
        h.feed("123456789012345");
        CHECK(h.too_long == 1);
        h.finish();
        CHECK(h.lines.empty());
        CHECK(h.too_long == 1);
        CHECK_FALSE(h.f.in_line());
    }
    SECTION("an empty tail delivers nothing") {
        h.feed("one\n");
        h.finish();
        CHECK(h.lines == lines_t{"one"});
        CHECK(h.too_long == 0);
    }
    SECTION("no input at all delivers nothing") {
        h.finish();
        CHECK(h.lines.empty());
        CHECK(h.too_long == 0);
    }
    SECTION("the framer can be used again after finish") {
        h.feed("12345678901234");
        h.finish();
        h.feed("fresh\n");
        CHECK(h.lines == lines_t{"fresh"});
        CHECK(h.too_long == 1);
    }
}

TEST_CASE("line_framer: shrink gives back a large idle tail", "[line_framer]") {
    harness h(4096);
    h.feed(std::string(3000, 'a'));
    h.feed("\n");
    CHECK(h.lines.size() == 1);
    CHECK(h.lines[0].size() == 3000);
    h.f.shrink();
    CHECK(h.f.partial_size() == 0);
    h.feed("ok\n");
    CHECK(h.lines.back() == "ok");
}
