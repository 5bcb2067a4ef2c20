// Reliability scenarios: each case of /work/shared/RELIABILITY.md that concerns talkd,
// provoked on loopback against a real talkd, on every backend (test/run runs the
// "[select]", "[poll]" and "[epoll]" tests in processes of their own, side by side).
//
// Every wait is on readiness (a line read, a console line, an exit) with a timeout.
// The few fixed intervals are measurements: CPU time sampled over an idle moment to
// prove the loop does not spin, and the pace of a slow or timed sender.
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "scenario_helpers.hpp"

using namespace talk::testing;
using namespace talk::testing::scenario;
using namespace std::string_literals;

namespace {

// Waits for n "Connected to" lines on the console.
template <class Server>
void connected(Server& srv, int n) {
    for (int i = 0; i < n; ++i)
        REQUIRE(srv.console_line_starting("Connected to"));
}

// What the others receive when c says text.
template <class Client>
std::string from(const Client& c, std::string_view text) {
    return "From " + c.name() + ", " + std::string(text);
}

// A dropped client that reads nothing cannot take its ERR line: the server closes it
// when its 5 s linger runs out. Waiting for that close needs more than the default.
constexpr duration past_linger = 8000ms;

// Consumes console lines up to and including the first that starts with prefix; all
// the lines read are returned (the last one is the match), or nullopt on timeout.
template <class Server>
std::optional<std::vector<std::string>> console_until(Server& srv, std::string_view prefix,
                                                      duration timeout = default_timeout) {
    std::vector<std::string> seen;
    auto hit = srv.console().until(
        [&](const std::string& l) {
            seen.push_back(l);
            return l.rfind(prefix, 0) == 0;
        },
        timeout);
    if (!hit) return std::nullopt;
    return seen;
}

// CPU ticks the server burns over an idle moment of `quiet` (a spinning loop burns
// all of it: 30 ticks in 300 ms at 100 Hz).
template <class Server>
long idle_ticks(Server& srv, duration quiet = 300ms) {
    long before = srv.cpu_ticks();
    std::this_thread::sleep_for(quiet);
    return srv.cpu_ticks() - before;
}

bool starts_with(const std::string& s, std::string_view prefix) {
    return s.rfind(prefix, 0) == 0;
}

// The next line that is not a notice ("*** ..."); the notices passed are kept.
template <class Client>
std::optional<std::string> message_noting(Client& c, std::vector<std::string>& notices,
                                          duration timeout = default_timeout) {
    return c.in().until(
        [&](const std::string& l) {
            if (!starts_with(l, "*** ")) return true;
            notices.push_back(l);
            return false;
        },
        timeout);
}

// Returns once the server has read every byte another client sent before this call:
// the probe's /rooms is answered in the pass that reads it, and bytes sent earlier
// on loopback are ready by that pass, so they are read in it or before.
void sync_through(line_client& probe) {
    probe.send_line("/rooms");
    REQUIRE(probe.in().until([](const std::string& l) {
        return starts_with(l, "*** rooms: ") && l.ends_with(" in all");
    }));
}

}  // namespace

// ===================================================================================
// Framing and bad input
// ===================================================================================

BACKEND_TEST(huge_line,
             "scenario: a 1 MiB line, then LF: one ERR, nothing relayed, connection kept") {
    talk_server srv(on(backend));
    line_client a(srv.port()), b(srv.port());
    connected(srv, 2);
    long base = rss_kib(srv.pid());
    std::string big(1u << 20, 'x');
    for (int round = 0; round < 3; ++round) {
        a.send(big + "\n");
        a.send_line("after " + std::to_string(round));
        // b's next message is the short line: the big one was neither relayed nor cut.
        CHECK(b.read_message() == from(a, "after " + std::to_string(round)));
        CHECK(a.read_message() == "ERR line-too-long max 4096 bytes");
    }
    b.send_line("ping");
    CHECK(a.read_message() == from(b, "ping"));  // one ERR per big line, no more
    CHECK(srv.console_line_starting("From ") == from(a, "after 0"));
    // The limit is exact: 4096 bytes pass, 4097 do not (CR LF not counted).
    a.send(std::string(4096, 'y') + "\r\n" + std::string(4097, 'z') + "\n");
    CHECK(b.read_message() == from(a, std::string(4096, 'y')));
    CHECK(a.read_message() == "ERR line-too-long max 4096 bytes");
    long grown = rss_kib(srv.pid()) - base;
    INFO("RSS grew by " << grown << " KiB");
    if (memory_bounds_apply()) CHECK(grown < 8 * 1024);
}

BACKEND_TEST(
    no_newline,
    "scenario: megabytes with no LF: no spin, then told and disconnected while still sending") {
    talk_server srv(on(backend, {"--max-line=1024"}));
    line_client a(srv.port()), b(srv.port()), c(srv.port());
    connected(srv, 3);
    long base = rss_kib(srv.pid());

    // 896 KiB of one unfinished line: under the 1 MiB bound, so only the line is refused.
    std::string chunk(64 * 1024, 'n');
    for (int i = 0; i < 14; ++i)
        a.send(chunk);
    CHECK(a.next_starting("ERR ") == "ERR line-too-long max 1024 bytes");
    CHECK(idle_ticks(srv) < 10);  // no spin while the line stays unfinished

    // Past the bound, with the client still sending: it is told, and can read it.
    std::atomic<bool> stop{false};
    send_timeout(a.fd(), 100ms);
    std::thread sender([&] {
        for (int i = 0; i < 256 && !stop; ++i) {  // at most 16 MiB
            ssize_t n = ::send(a.fd(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR) break;
        }
    });
    auto err = a.next_starting("ERR ", 10000ms);
    stop = true;
    sender.join();
    REQUIRE(err);
    const std::string head = "ERR line-too-long no end of line in ", tail = " bytes; disconnected";
    REQUIRE(starts_with(*err, head));
    REQUIRE(err->size() > head.size() + tail.size());
    CHECK(err->substr(err->size() - tail.size()) == tail);
    std::string n = err->substr(head.size(), err->size() - head.size() - tail.size());
    long skipped = std::stol(n);
    CHECK(skipped > 1024 * 1024);
    CHECK(skipped <= 1024 * 1024 + 16 * 1024 + 1024);  // one read of --max-input past the bound
    // Then a clean end (FIN after the line), not a reset: the server shut its side
    // and kept reading, rather than closing on unread input.
    CHECK(a.in().rest().empty());
    stream_end end = read_to_end(a.fd(), 5000ms);
    CHECK(end.data.empty());
    CHECK(end.clean);
    CHECK(srv.console_line_starting("Dropped ") ==
          "Dropped " + a.name() + ": no end of line in " + n + " bytes");
    CHECK(srv.console().line() == "Disconnected : " + console_form(a.name()));
    CHECK(b.next_starting("*** " + a.name() + " left") ==
          "*** " + a.name() + " left (no end of line in " + n + " bytes)");
    c.send_line("marker");
    CHECK(b.read_message() == from(c, "marker"));  // nothing of a's was relayed
    CHECK(idle_ticks(srv) < 10);
    long grown = rss_kib(srv.pid()) - base;
    INFO("RSS grew by " << grown << " KiB");
    if (memory_bounds_apply()) CHECK(grown < 8 * 1024);
}

BACKEND_TEST(bad_bytes,
             "scenario: NUL, invalid and split UTF-8: deterministic, split sequences intact") {
    talk_server srv(on(backend));
    line_client a(srv.port()), b(srv.port()), s(srv.port());
    connected(srv, 3);
    auto sync = [&] { sync_through(s); };
    auto split_send = [&](std::vector<std::string> pieces) {
        for (std::size_t i = 0; i < pieces.size(); ++i) {
            a.send(pieces[i]);
            if (i + 1 < pieces.size()) sync();
        }
    };
    split_send({"caf\xc3", "\xa9 two-byte\n"});
    CHECK(b.read_message() == from(a, "caf\xc3\xa9 two-byte"));
    split_send({"euro \xe2\x82", "\xac three-byte\n"});
    CHECK(b.read_message() == from(a, "euro \xe2\x82\xac three-byte"));
    split_send({"smile \xf0", "\x9f", "\x98\x80 four-byte\n"});
    CHECK(b.read_message() == from(a, "smile \xf0\x9f\x98\x80 four-byte"));

    const std::string bad =
        "nul \0 byte, ff \xff, overlong \xc0\xaf, surrogate \xed\xa0\x80, cut \xe2\x82"s;
    const std::string shown =
        "nul ^@ byte, ff \\xFF, overlong \\xC0\\xAF, surrogate \\xED\\xA0\\x80, cut \\xE2\\x82";
    for (int i = 0; i < 2; ++i) {  // the same bytes, the same line, every time
        a.send(bad + "\n");
        CHECK(b.read_message() == from(a, shown));
        CHECK(srv.console_line_starting(from(a, "nul")) == from(a, shown));
    }
    // A lone lead byte at the end of a read, and nothing more for it: the next line
    // still starts clean.
    split_send({"lead \xc3", "\n", "clean\n"});
    CHECK(b.read_message() == from(a, "lead \\xC3"));
    CHECK(b.read_message() == from(a, "clean"));
}

BACKEND_TEST(
    line_ends,
    "scenario: LF, CRLF, bare CR, empty lines: nc and nc -C agree, CR shown, empty not sent") {
    talk_server srv(on(backend));
    line_client nc(srv.port()), crlf(srv.port()), b(srv.port());
    connected(srv, 3);
    const std::vector<std::string> script = {"hello", "",          "two  words ", "\ttab",
                                             "",      "/me waves", "//slash",     "end"};
    std::string lf_text, crlf_text;
    for (const auto& l : script) {
        lf_text += l + "\n";
        crlf_text += l + "\r\n";
    }
    nc.send(lf_text);
    // Everything the sender's lines became, with the sender's name taken out.
    auto transcript = [&](const std::string& who) {
        std::vector<std::string> got;
        for (;;) {
            auto l = b.read_message();
            REQUIRE(l);
            auto at = l->find(who);
            REQUIRE(at != std::string::npos);
            got.push_back(l->substr(0, at) + "WHO" + l->substr(at + who.size()));
            if (l->ends_with(", end")) return got;
        }
    };
    auto by_nc = transcript(nc.name());
    crlf.send(crlf_text);
    auto by_crlf = transcript(crlf.name());
    CHECK(by_nc == by_crlf);
    CHECK(by_nc == std::vector<std::string>{"From WHO, hello", "From WHO, two  words ",
                                            "From WHO, \ttab", "* WHO waves", "From WHO, /slash",
                                            "From WHO, end"});

    // A bare CR is a character, shown as ^M, never a line end and never raw.
    nc.send("\n\r\n\n\r\n");  // empty lines: nothing
    nc.send("bare\rcr\n");
    CHECK(b.read_message() == from(nc, "bare^Mcr"));
    nc.send("two\r\r\n");  // one CR belongs to the line end, the other is text
    CHECK(b.read_message() == from(nc, "two^M"));
    auto seen = console_until(srv, from(nc, "two^M"));
    REQUIRE(seen);
    CHECK(std::count(seen->begin(), seen->end(), from(nc, "bare^Mcr")) == 1);
    CHECK(std::none_of(seen->begin(), seen->end(),
                       [&](const std::string& l) { return l == from(nc, ""); }));
}

BACKEND_TEST(escapes, "scenario: ESC, C0, C1, bidi: never raw, to clients or to the console") {
    talk_server srv(on(backend));
    line_client a(srv.port()), b(srv.port());
    connected(srv, 2);
    std::string c0, c1;
    for (int ch = 1; ch < 32; ++ch)
        if (ch != '\n') c0.push_back(static_cast<char>(ch));
    for (int cp = 0x80; cp <= 0x9F; ++cp) {
        c1.push_back('\xc2');
        c1.push_back(static_cast<char>(cp));
    }
    const std::vector<std::string> attacks = {
        "clear \x1b[2J\x1b[H home",
        "title \x1b]0;owned\x07 osc",
        "c0 [" + c0 + "] del \x7f",
        "c1 utf8 [" + c1 + "]",
        "c1 raw [\x9b\x9d\x85]",
        "bidi \xe2\x80\xae reversed \xe2\x81\xa6 isolate, sep \xe2\x80\xa8 line",
        "\rcarriage at start",
    };
    for (const auto& l : attacks)
        a.send_line(l);
    a.send_line("/me \x1b[31mwaves\x1b[0m");
    a.send_line("/msg " + b.name() + " \x1b[5mblink");
    a.send_line("/nick \x1b[31mred");
    a.send_line("/\x1b[2Jcmd");
    std::vector<std::string> to_b, to_a;
    auto take = [&] {
        auto l = b.read_message();
        REQUIRE(l);
        to_b.push_back(*l);
    };
    for (std::size_t i = 0; i < attacks.size() + 2; ++i)
        take();  // the lines, /me, /msg
    srv.type("operator \x1b[2J\x07 says");
    take();
    a.send_line("/quit \x1b[8mhidden\x9b");
    auto left = b.next_starting("*** " + a.name() + " left");
    REQUIRE(left);
    to_b.push_back(*left);
    REQUIRE(a.closed_by_server());
    for (;;) {
        auto l = a.read_line(0ms);
        if (!l) break;
        to_a.push_back(*l);
    }
    auto seen = console_until(srv, "Disconnected : " + console_form(a.name()));
    REQUIRE(seen);

    for (const auto& l : to_b) {
        INFO(l);
        CHECK(terminal_safe(l));
    }
    for (const auto& l : to_a) {
        INFO(l);
        CHECK(terminal_safe(l));
    }
    for (const auto& l : *seen) {
        INFO(l);
        CHECK(terminal_safe(l));
    }
    CHECK(to_b[0] == from(a, "clear ^[[2J^[[H home"));
    CHECK(to_b[1] == from(a, "title ^[]0;owned^G osc"));
    CHECK(to_b[4] == from(a, "c1 raw [\\x9B\\x9D\\x85]"));
    CHECK(to_b[5] == from(a, "bidi <U+202E> reversed <U+2066> isolate, sep <U+2028> line"));
    CHECK(to_b[6] == from(a, "^Mcarriage at start"));
    CHECK(to_b[7] == "* " + a.name() + " ^[[31mwaves^[[0m");
    CHECK(to_b[8] == "From " + a.name() + " (private), ^[[5mblink");
    CHECK(to_b[9] == "From 127.0.0.1:" + std::to_string(srv.port()) + ", operator ^[[2J^G says");
    CHECK(to_b[10] == "*** " + a.name() + " left (quit: ^[[8mhidden\\x9B)");
    CHECK(std::count(to_a.begin(), to_a.end(), "ERR unknown-command /^[[2Jcmd (try /help)") == 1);
    CHECK(std::count(seen->begin(), seen->end(), from(a, "clear ^[[2J^[[H home")) == 1);
}

BACKEND_TEST(reassembly,
             "scenario: a byte at a time, a 1000-line burst, CR and LF in separate reads") {
    talk_server srv(on(backend, {"--flood-rate=0"}));
    line_client a(srv.port()), b(srv.port()), s(srv.port());
    connected(srv, 3);
    auto sync = [&] { sync_through(s); };
    // One byte per read: each byte is read by the server before the next is sent.
    const std::string slow = "one byte \xc3\xa9\xe2\x82\xac at a time\r\n";
    for (char ch : slow) {
        a.send(std::string(1, ch));
        if (ch != '\n') sync();
    }
    CHECK(b.read_message() == from(a, "one byte \xc3\xa9\xe2\x82\xac at a time"));

    // CR in one read, LF in the next; also right at the length limit.
    a.send("split\r");
    sync();
    a.send("\n");
    CHECK(b.read_message() == from(a, "split"));
    a.send(std::string(4096, 'm') + "\r");
    sync();
    a.send("\n");
    CHECK(b.read_message() == from(a, std::string(4096, 'm')));
    a.send("abc");
    sync();
    a.send("def\nghi\njk");
    sync();
    a.send("l\n");
    CHECK(b.read_message() == from(a, "abcdef"));
    CHECK(b.read_message() == from(a, "ghi"));
    CHECK(b.read_message() == from(a, "jkl"));

    // 1000 lines in one send, then silence: every line is run without more input.
    std::string burst;
    for (int i = 0; i < 1000; ++i)
        burst += "burst " + std::to_string(i) + (i % 2 ? "\r\n" : "\n");
    a.send(burst);
    for (int i = 0; i < 1000; ++i)
        REQUIRE(b.read_message() == from(a, "burst " + std::to_string(i)));
}

BACKEND_TEST(after_quit,
             "scenario: lines after /quit in the same packet are never run or relayed") {
    talk_server srv(on(backend, {"--flood-rate=0"}));
    line_client b(srv.port()), c(srv.port());
    connected(srv, 2);
    for (const std::string quit : {"/quit\n", "/QUIT bye\r\n"}) {
        line_client a(srv.port());
        connected(srv, 1);
        a.send(quit + "secret one\n/nick Hacker\n/msg " + b.name() +
               " leaked\n/join elsewhere\nsecret two");
        CHECK(a.next_starting("*** goodbye") == "*** goodbye");
        CHECK(a.closed_by_server());
        std::string reason = quit == "/quit\n" ? "quit" : "quit: bye";
        CHECK(b.next_starting("*** " + a.name() + " left") ==
              "*** " + a.name() + " left (" + reason + ")");
        c.send_line("marker");
        CHECK(b.read_line() == from(c, "marker"));  // nothing else came between
        auto seen = console_until(srv, from(c, "marker"));
        REQUIRE(seen);
        for (const auto& l : *seen) {
            INFO(l);
            CHECK(l.find("secret") == std::string::npos);
            CHECK(l.find("leaked") == std::string::npos);
            CHECK(l.find("Hacker") == std::string::npos);
            CHECK(l.find("elsewhere") == std::string::npos);
        }
        CHECK(std::count(seen->begin(), seen->end(), "Disconnected : " + console_form(a.name())) ==
              1);
    }
}

// ===================================================================================
// Commands and identity
// ===================================================================================

BACKEND_TEST(nicks, "scenario: invalid, overlong, reserved and colliding nicks are refused") {
    talk_server srv(on(backend));
    line_client a(srv.port()), b(srv.port()), c(srv.port());
    connected(srv, 3);
    const std::string bad_char =
        "ERR bad-nick a nick is letters, digits, - and _, starting with a letter";
    const std::vector<std::pair<std::string, std::string>> refused = {
        {"1abc", bad_char},
        {"bad!name", bad_char},
        {"127.0.0.1:1", bad_char},
        {"a\x1b[31m", bad_char},
        {std::string(17, 'n'), "ERR bad-nick a nick has at most 16 characters"},
        {"Server", "ERR nick-reserved Server is reserved"},
        {"talkd", "ERR nick-reserved talkd is reserved"},
        {"ADMIN", "ERR nick-reserved ADMIN is reserved"},
        {"two words", "ERR usage /nick NAME"},
        {"", "ERR usage /nick NAME"},
    };
    for (const auto& [nick, error] : refused) {
        a.send_line("/nick " + nick);
        CHECK(a.read_message() == error);
    }
    a.send_line("unchanged");
    CHECK(b.read_message() == from(a, "unchanged"));
    a.send_line("/nick " + std::string(16, 'q'));  // 16 is fine
    CHECK(a.read_line() == "*** " + a.name() + " is now " + std::string(16, 'q'));
    a.send_line("/nick Alice");
    CHECK(a.read_line() == "*** " + std::string(16, 'q') + " is now Alice");
    c.send_line("/nick aLiCe");
    CHECK(c.next_starting("ERR ") == "ERR nick-in-use Alice is already taken");
    c.send_line("/nick ALICE");
    CHECK(c.next_starting("ERR ") == "ERR nick-in-use Alice is already taken");
    // Nobody can make a line look like the server's.
    c.send_line("*** Alice left (forged)");
    c.send_line("ERR kicked forged");
    CHECK(b.read_message() == from(c, "*** Alice left (forged)"));
    CHECK(b.read_message() == from(c, "ERR kicked forged"));
}

BACKEND_TEST(msg_to_leaver,
             "scenario: /msg to a client leaving in the same loop pass: an error or delivery, "
             "never a crash") {
    talk_server srv(on(backend, {"--flood-rate=0"}));
    line_client b(srv.port());
    connected(srv, 1);
    int delivered = 0, refused = 0;
    for (int i = 0; i < 60; ++i) {
        std::string nick = "v" + std::to_string(i);
        sock_client a(srv.port());
        connected(srv, 1);
        a.send_line("/nick " + nick);
        REQUIRE(a.next_starting("*** " + a.name() + " is now ") ==
                "*** " + a.name() + " is now " + nick);
        // Stopped, the server finds both ready in one wait and runs them in one pass.
        bool same_pass = i % 2 == 0;
        if (same_pass) REQUIRE(stop_process(srv.pid()));
        switch (i % 3) {
            case 0:
                a.send_line("/quit");
                break;
            case 1:
                a.reset();
                break;
            case 2:
                a.close();
                break;
        }
        b.send_line("/msg " + nick + " hello " + std::to_string(i));
        if (same_pass) continue_process(srv.pid());
        auto reply = b.in().until(
            [](const std::string& l) { return starts_with(l, "ERR ") || starts_with(l, "To "); });
        REQUIRE(reply);
        if (*reply == "To " + nick + " (private), hello " + std::to_string(i))
            ++delivered;
        else if (*reply == "ERR no-such-user " + nick + " is not here")
            ++refused;
        else
            FAIL("unexpected reply: " << *reply);
        REQUIRE(srv.console_line_starting("Disconnected : " + console_form(a.name())));
    }
    INFO(delivered << " delivered, " << refused << " refused");
    CHECK(delivered + refused == 60);
    CHECK(srv.running());
    line_client c(srv.port());
    c.send_line("still serving");
    CHECK(b.read_message() == from(c, "still serving"));
}

BACKEND_TEST(
    huge_who,
    "scenario: /who among 200 clients does not get the requester dropped by its own reply") {
    raise_nofile(4096);
    talk_server srv(on(backend, {"--max-queue=16K", "--flood-rate=0"}));
    std::vector<std::unique_ptr<line_client>> crowd;
    for (int i = 0; i < 199; ++i)
        crowd.push_back(std::make_unique<line_client>(srv.port()));
    line_client r(srv.port());
    connected(srv, 200);
    r.send("/who\n/who\n/who\n");
    for (int round = 0; round < 3; ++round) {
        int listed = 0;
        for (;;) {
            auto l = r.next_starting("*** who: ");
            REQUIRE(l);
            if (*l == "*** who: 200 connected") break;
            if (*l == "*** who: ... and 150 more") continue;
            ++listed;
        }
        CHECK(listed == 50);
    }
    srv.type("/who");
    CHECK(srv.console_line_starting("*** who: 200 ") == "*** who: 200 connected");
    r.send_line("/who");
    CHECK(r.next_starting("*** who: 200 ") == "*** who: 200 connected");
    crowd.front()->send_line("still here");
    CHECK(r.read_message() == from(*crowd.front(), "still here"));
    auto seen = console_until(srv, from(*crowd.front(), "still here"));
    REQUIRE(seen);
    CHECK(std::none_of(seen->begin(), seen->end(),
                       [](const std::string& l) { return starts_with(l, "Dropped "); }));
}

// ===================================================================================
// Slow peers, floods, memory
// ===================================================================================

namespace {

// count lines "<n> <payload>", n from `first` (relayed as "From <sender>, <n> <payload>").
std::string numbered(int first, int count, const std::string& payload) {
    std::string out;
    for (int i = first; i < first + count; ++i)
        out += std::to_string(i) + " " + payload + "\n";
    return out;
}

// Checks that a stream holds the lines "From <sender>, 0 ...", "From <sender>, 1 ...",
// ... in order (other lines allowed only if they are notices), and ends with `last`.
// Returns how many numbered lines it held.
int check_prefix_then(const std::string& stream, const std::string& sender_prefix,
                      const std::string& last) {
    std::size_t pos = 0;
    int next = 0;
    std::string final_line;
    while (pos < stream.size()) {
        auto nl = stream.find('\n', pos);
        if (nl == std::string::npos) {
            FAIL_CHECK("the stream ends in a cut line: ..."
                       << stream.substr(pos > 200 ? stream.size() - 200 : 0));
            return next;
        }
        std::string l = stream.substr(pos, nl - pos);
        pos = nl + 1;
        final_line = l;
        if (starts_with(l, sender_prefix)) {
            auto n = std::stoi(l.substr(sender_prefix.size()));
            if (n != next) FAIL_CHECK("line " << n << " where " << next << " was due");
            next = n + 1;
        } else if (pos < stream.size()) {
            CHECK(starts_with(l, "*** "));
        }
    }
    CHECK(final_line == last);
    return next;
}

}  // namespace

BACKEND_TEST(slow_reader,
             "scenario: a client that never reads is dropped at --max-queue; the others get every "
             "line in order") {
    talk_server srv(on(backend, {"--max-queue=256K", "--flood-rate=0"}));
    line_client sender(srv.port()), r1(srv.port()), r2(srv.port());
    sock_client sleeper(srv.port(), 4096);
    connected(srv, 4);
    long base = rss_kib(srv.pid());
    const std::string payload(1000, 'p'), prefix = "From " + sender.name() + ", ";
    std::optional<std::string> gone;
    std::vector<std::string> notices1, notices2;
    int sent = 0;
    auto relay = [&](int count) {  // sender sends count lines; both readers get each, in order
        sender.send(numbered(sent, count, payload));
        for (int i = sent; i < sent + count; ++i) {
            auto want = prefix + std::to_string(i) + " " + payload;
            REQUIRE(message_noting(r1, notices1) == want);
            REQUIRE(message_noting(r2, notices2) == want);
        }
        sent += count;
    };
    auto t0 = steady::now();
    while (!gone && sent < 40000 && seconds_since(t0) < 20) {
        relay(50);
        gone = srv.console().until([](const std::string& l) { return starts_with(l, "Dropped "); },
                                   0ms);
    }
    REQUIRE(gone);
    CHECK(*gone == "Dropped " + sleeper.name() + ": output queue over 262144 bytes: not reading");
    CHECK(srv.console().line(past_linger) == "Disconnected : " + console_form(sleeper.name()));
    relay(100);
    for (auto* notices : {&notices1, &notices2})
        CHECK(std::count(notices->begin(), notices->end(),
                         "*** " + sleeper.name() +
                             " left (output queue over 262144 bytes: not reading)") == 1);
    long grown = rss_kib(srv.pid()) - base;
    INFO("RSS grew by " << grown << " KiB");
    if (memory_bounds_apply()) CHECK(grown < 8 * 1024);
    // The sleeper wakes up: whole lines, a prefix of what was sent, then why it was cut off.
    stream_end end = read_to_end(sleeper.fd(), 5000ms);
    INFO("sleeper stream: " << end.data.size() << " bytes, clean " << end.clean << ", error "
                            << end.err << ", timed out " << end.timed_out);
    CHECK(end.clean);
    int got = check_prefix_then(
        end.data, prefix,
        "ERR too-slow you stopped reading and your messages piled up; disconnected");
    CHECK(got > 0);
    CHECK(got < sent);
}

BACKEND_TEST(
    soft_queue,
    "scenario: a queue over --soft-queue for --soft-queue-time is dropped, under the hard limit") {
    talk_server srv(on(
        backend, {"--soft-queue=32K", "--soft-queue-time=1", "--max-queue=16M", "--flood-rate=0"}));
    line_client sender(srv.port()), reader(srv.port());
    sock_client sleeper(srv.port(), 4096);
    connected(srv, 3);
    const std::string payload(1000, 's'), prefix = "From " + sender.name() + ", ";
    std::optional<std::string> gone;
    int sent = 0;
    auto t0 = steady::now();
    // About 2 MB/s: the sleeper's queue passes 32K soon and stays over it, far from 16M.
    std::vector<std::string> notices;
    while (!gone && seconds_since(t0) < 8) {
        sender.send(numbered(sent, 20, payload));
        for (int i = sent; i < sent + 20; ++i)
            REQUIRE(message_noting(reader, notices) == prefix + std::to_string(i) + " " + payload);
        sent += 20;
        gone = srv.console().until([](const std::string& l) { return starts_with(l, "Dropped "); },
                                   10ms);
    }
    double elapsed = seconds_since(t0);
    REQUIRE(gone);
    CHECK(*gone ==
          "Dropped " + sleeper.name() + ": output queue over 32768 bytes for 1 s: not reading");
    CHECK(elapsed >= 1.0);
    sender.send_line("after");
    CHECK(message_noting(reader, notices) == from(sender, "after"));
    CHECK(std::count(notices.begin(), notices.end(),
                     "*** " + sleeper.name() +
                         " left (output queue over 32768 bytes for 1 s: not reading)") == 1);
    stream_end end = read_to_end(sleeper.fd(), 5000ms);
    CHECK(end.clean);
    check_prefix_then(end.data, prefix,
                      "ERR too-slow you stopped reading and your messages piled up; disconnected");
}

BACKEND_TEST(
    global_budget,
    "scenario: all queues over --max-total-queue: the furthest behind goes first, memory bounded") {
    talk_server srv(on(
        backend, {"--max-total-queue=2M", "--max-queue=1M", "--soft-queue=1M", "--flood-rate=0"}));
    line_client flooder(srv.port()), healthy(srv.port());
    std::vector<std::unique_ptr<sock_client>> sleepers;
    for (int i = 0; i < 4; ++i)
        sleepers.push_back(std::make_unique<sock_client>(srv.port(), 4096));
    connected(srv, 6);
    long base = rss_kib(srv.pid());
    // Private messages, so each sleeper's queue holds messages of its own: the first
    // sleeper gets twice what the others get. All stopped reading at once, so they pin
    // the same oldest chunk; of those, the longest queue goes first.
    const std::string payload(900, 'g');
    const std::vector<std::pair<std::string, int>> share = {{sleepers[0]->name(), 4},
                                                            {sleepers[1]->name(), 2},
                                                            {sleepers[2]->name(), 2},
                                                            {sleepers[3]->name(), 2},
                                                            {healthy.name(), 2}};
    const std::string to_healthy = "From " + flooder.name() + " (private), ";
    std::optional<std::string> gone;
    int seq = 0, healthy_next = 0;
    long peak = 0;
    auto t0 = steady::now();
    while (!gone && seq < 200000 && seconds_since(t0) < 20) {
        std::string chunk;
        int lines = 0;
        for (const auto& [who, n] : share)
            for (int k = 0; k < n; ++k, ++lines)
                chunk += "/msg " + who + " " + std::to_string(seq++) + " " + payload + "\n";
        flooder.send(chunk);
        for (int k = 0; k < lines; ++k)  // each /msg confirmed, or refused once its target is gone
            REQUIRE(flooder.in().until([](const std::string& l) {
                return starts_with(l, "To ") || starts_with(l, "ERR no-such-user ");
            }));
        for (int k = 0; k < 2; ++k) {
            auto l = healthy.read_message();
            REQUIRE(l);
            REQUIRE(starts_with(*l, to_healthy));
            int n = std::stoi(l->substr(to_healthy.size()));
            REQUIRE(n > healthy_next - 1);
            healthy_next = n + 1;
        }
        peak = std::max(peak, rss_kib(srv.pid()));
        gone = srv.console().until([](const std::string& l) { return starts_with(l, "Dropped "); },
                                   0ms);
    }
    REQUIRE(gone);
    CHECK(*gone == "Dropped " + sleepers[0]->name() +
                       ": all output queues over 2097152 bytes, and this one holds the oldest");
    INFO("RSS peak " << peak - base << " KiB over the start");
    if (memory_bounds_apply()) CHECK(peak - base < 10 * 1024);
    // The flooder and the healthy reader were never the ones to go.
    flooder.send_line("/msg " + healthy.name() + " final");
    CHECK(healthy.read_message() == to_healthy + "final");
    auto seen =
        console_until(srv, "Disconnected : " + console_form(sleepers[0]->name()), past_linger);
    REQUIRE(seen);
    for (const auto& l : *seen) {
        INFO(l);
        CHECK(l.find(flooder.name()) == std::string::npos);
        CHECK(l.find(healthy.name()) == std::string::npos);
    }
    stream_end end = read_to_end(sleepers[0]->fd(), 5000ms);
    CHECK(end.clean);
    CHECK(
        end.data.ends_with("ERR too-slow the server is short of memory and your queue was the "
                           "furthest behind; disconnected\n"));
}

BACKEND_TEST(fan_out, "scenario: a message to 50 sleepers is held once, not once per recipient") {
    raise_nofile(4096);
    talk_server srv(on(backend, {"--max-queue=8M", "--soft-queue=8M", "--flood-rate=0"}));
    line_client sender(srv.port()), reader(srv.port());
    std::vector<std::unique_ptr<sock_client>> sleepers;
    for (int i = 0; i < 50; ++i)
        sleepers.push_back(std::make_unique<sock_client>(srv.port(), 4096));
    connected(srv, 52);
    long base = rss_kib(srv.pid());
    const std::string payload(1000, 'f');
    int sent = 0;
    for (; sent < 4000; sent += 50) {  // 4 MB to each of 51 recipients
        sender.send(numbered(sent, 50, payload));
        for (int i = sent; i < sent + 50; ++i)
            REQUIRE(reader.read_message() == from(sender, std::to_string(i) + " " + payload));
    }
    long grown = rss_kib(srv.pid()) - base;
    INFO("RSS grew by " << grown << " KiB; copied per recipient it would be about 200 MB");
    if (memory_bounds_apply()) CHECK(grown < 24 * 1024);
    srv.type("/stats");
    auto chunks = srv.console_line_starting("*** stats: ", 5000ms);
    while (chunks && chunks->find(" message chunk") == std::string::npos)
        chunks = srv.console_line_starting("*** stats: ");
    REQUIRE(chunks);
    // "*** stats: N loop passes; B bytes in C message chunks" (or "1 message chunk")
    auto semi = chunks->find("; ");
    REQUIRE(semi != std::string::npos);
    long held = std::stol(chunks->substr(semi + 2));
    INFO(*chunks);
    CHECK(held < 8l * 1024 * 1024);
    CHECK(held > 1l * 1024 * 1024);  // the sleepers do hold a backlog
    CHECK(srv.console_line_starting("Dropped ", 0ms) == std::nullopt);
}

BACKEND_TEST(
    flood_slowed,
    "scenario: a flooder is slowed to --flood-rate, lines in order; others keep low latency") {
    talk_server srv(on(backend, {"--flood-rate=50", "--flood-burst=10"}));
    line_client f(srv.port()), o(srv.port()), c(srv.port());
    connected(srv, 3);
    std::string burst;
    for (int i = 0; i < 200; ++i)
        burst += "flood " + std::to_string(i) + "\n";
    const std::string from_f = from(f, "flood "), from_c = from(c, "chat ");
    std::vector<steady::time_point> sent_at;
    int next_flood = 0, chats_seen = 0;
    double worst = 0;
    auto t0 = steady::now();
    f.send(burst);
    auto next_chat = t0 + 100ms;
    while (next_flood < 200 && seconds_since(t0) < 12) {
        if (steady::now() >= next_chat) {
            c.send_line("chat " + std::to_string(sent_at.size()));
            sent_at.push_back(steady::now());
            next_chat += 250ms;
        }
        auto l = o.read_line(ms_until(next_chat));
        if (!l) continue;
        if (starts_with(*l, from_f)) {
            REQUIRE(*l == from_f + std::to_string(next_flood));
            ++next_flood;
        } else if (starts_with(*l, from_c)) {
            int k = std::stoi(l->substr(from_c.size()));
            REQUIRE(k == chats_seen);
            ++chats_seen;
            worst = std::max(worst, seconds_since(sent_at[k]));
        }
    }
    double elapsed = seconds_since(t0);
    INFO("200 lines took " << elapsed << " s; the other client's worst latency " << worst * 1000
                           << " ms");
    CHECK(next_flood == 200);
    CHECK(elapsed >= 3.0);  // (200 - 10 burst) / 50 per second = 3.8 s
    CHECK(elapsed < 8.0);
    CHECK(chats_seen >= 10);
    CHECK(worst < 0.5);
    CHECK(srv.console_line_starting("Dropped ", 0ms) == std::nullopt);
}

BACKEND_TEST(flood_disconnect,
             "scenario: with --flood-disconnect a flooder is told and dropped, and can read why "
             "while sending") {
    talk_server srv(on(backend, {"--flood-rate=50", "--flood-burst=10", "--flood-disconnect"}));
    line_client f(srv.port()), o(srv.port());
    connected(srv, 2);
    std::atomic<bool> stop{false};
    send_timeout(f.fd(), 100ms);
    std::thread flood([&] {  // 200 lines at once, then more until told to stop
        std::string burst;
        for (int i = 0; i < 200; ++i)
            burst += "flood " + std::to_string(i) + "\n";
        if (::send(f.fd(), burst.data(), burst.size(), MSG_NOSIGNAL) < 0) return;
        for (int i = 200; i < 100000 && !stop; ++i) {
            std::string l = "flood " + std::to_string(i) + "\n";
            if (::send(f.fd(), l.data(), l.size(), MSG_NOSIGNAL) < 0 && errno != EAGAIN) return;
        }
    });
    auto err = f.next_starting("ERR ");
    stop = true;
    flood.join();
    CHECK(err == "ERR flood more than 50 lines a second; disconnected");
    CHECK(f.in().rest().empty());
    stream_end end = read_to_end(f.fd(), 5000ms);
    CHECK(end.data.empty());
    CHECK(end.clean);  // FIN after the ERR line, not a reset
    CHECK(srv.console_line_starting("Dropped ") ==
          "Dropped " + f.name() + ": flooding: over 50 lines a second");
    CHECK(srv.console().line() == "Disconnected : " + console_form(f.name()));
    int relayed = 0;
    for (;;) {
        auto l = o.read_line();
        REQUIRE(l);
        if (starts_with(*l, "*** Welcome")) continue;
        if (starts_with(*l, "*** " + f.name() + " left")) {
            CHECK(*l == "*** " + f.name() + " left (flooding: over 50 lines a second)");
            break;
        }
        REQUIRE(*l == from(f, "flood " + std::to_string(relayed)));
        ++relayed;
    }
    CHECK(relayed >= 10);  // the burst, and what the rate refilled meanwhile
    CHECK(relayed <= 12);
}

BACKEND_TEST(slowloris,
             "scenario: a byte every 200 ms and no LF: line-timeout from the first byte; slow "
             "whole lines stay") {
    talk_server srv(on(backend, {"--line-timeout=1"}));
    line_client loris(srv.port()), slow(srv.port()), o(srv.port());
    connected(srv, 3);
    // slow's unfinished lines last 0.6 s each, back to back for 1.8 s: each ends in time.
    const std::vector<std::pair<int, std::string>> slow_plan = {
        {0, "part-"}, {3, "one\npart-"}, {6, "two\npart-"}, {9, "three\n"}};
    std::optional<std::string> err;
    std::vector<std::string> seen_by_o;
    double err_after = 0;
    auto t0 = steady::now();
    for (int tick = 0; tick < 13; ++tick) {  // 2.6 s, paced by the waits for lines
        auto tick_end = t0 + (tick + 1) * 200ms;
        for (const auto& [when, text] : slow_plan)
            if (when == tick) slow.send(text);
        if (!err) {
            loris.send("G");
            err = loris.next_starting("ERR ", ms_until(tick_end));
            if (err) err_after = seconds_since(t0);
        }
        while (auto l = o.read_line(ms_until(tick_end)))
            seen_by_o.push_back(*l);
    }
    REQUIRE(err);
    CHECK(*err == "ERR line-timeout no end of line within 1 second; disconnected");
    INFO("told after " << err_after << " s");
    CHECK(err_after >= 0.9);
    CHECK(err_after < 1.8);
    CHECK(loris.closed_by_server());
    CHECK(srv.console_line_starting("Dropped ") ==
          "Dropped " + loris.name() + ": no end of line within 1 s");
    slow.send_line("done");
    while (auto l = o.read_line()) {
        seen_by_o.push_back(*l);
        if (*l == from(slow, "done")) break;
    }
    std::vector<std::string> from_slow;
    for (const auto& l : seen_by_o) {
        CHECK(!starts_with(l, "*** " + slow.name() + " left"));
        if (starts_with(l, "From " + slow.name())) from_slow.push_back(l);
    }
    CHECK(from_slow == std::vector<std::string>{from(slow, "part-one"), from(slow, "part-two"),
                                                from(slow, "part-three"), from(slow, "done")});
    CHECK(std::count(seen_by_o.begin(), seen_by_o.end(),
                     "*** " + loris.name() + " left (no end of line within 1 s)") == 1);
}

BACKEND_TEST(idle_timeout,
             "scenario: idle timeout off by default; with --idle-timeout 1 a silent client is told "
             "and dropped") {
    talk_server plain(on(backend)), strict(on(backend, {"--idle-timeout=1"}));
    line_client p1(plain.port()), p2(plain.port());
    line_client silent(strict.port()), chatty(strict.port());
    connected(plain, 2);
    connected(strict, 2);
    std::optional<std::string> err;
    double err_after = 0;
    auto t0 = steady::now();
    for (int tick = 0; tick < 6; ++tick) {  // 2.4 s; chatty says something every 400 ms
        auto tick_end = t0 + (tick + 1) * 400ms;
        chatty.send_line("tick " + std::to_string(tick));
        if (!err) {
            err = silent.next_starting("ERR ", ms_until(tick_end));
            if (err) err_after = seconds_since(t0);
        }
        if (err) chatty.in().drain(ms_until(tick_end));  // the pace of chatty's lines
    }
    REQUIRE(err);
    CHECK(*err == "ERR idle-timeout nothing received for 1 second; disconnected");
    INFO("told after " << err_after << " s");
    CHECK(err_after >= 0.9);
    CHECK(err_after < 2.0);
    CHECK(silent.closed_by_server());
    CHECK(strict.console_line_starting("Dropped ") ==
          "Dropped " + silent.name() + ": idle for 1 s");
    chatty.send_line("/who");
    CHECK(chatty.next_starting("*** who: 1 ") == "*** who: 1 connected");  // chatty is still there
    // On the server without the option, p1 said nothing for as long, and is still served.
    p1.send_line("still here");
    CHECK(p2.read_message() == from(p1, "still here"));
    auto seen = console_until(plain, from(p1, "still here"));
    REQUIRE(seen);
    CHECK(std::none_of(seen->begin(), seen->end(),
                       [](const std::string& l) { return starts_with(l, "Dropped "); }));
}

BACKEND_TEST(
    many_idle,
    "scenario: 1000 idle connections (900 on select): all served, no CPU, little memory each") {
    raise_nofile(4096);
    const int n = backend == "select" ? 900 : 1000;
    talk_server srv(on(backend));
    line_client first(srv.port());
    connected(srv, 1);
    long rss0 = rss_kib(srv.pid());
    std::vector<std::unique_ptr<sock_client>> idle;
    for (int i = 1; i < n; ++i) {
        idle.push_back(std::make_unique<sock_client>(srv.port()));
        // Read what arrived (the welcome, the others' joins), as an idle terminal would.
        if (i % 100 == 0)
            for (auto& c : idle)
                c->in().drain(0ms);
    }
    connected(srv, n - 1);
    for (auto& c : idle)
        c->in().drain(0ms);
    first.in().drain(0ms);
    long ticks = idle_ticks(srv);
    long rss1 = rss_kib(srv.pid());
    double per_conn = (rss1 - rss0) * 1024.0 / (n - 1);
    INFO(n << " connections: " << ticks << " ticks idle, " << per_conn << " bytes of RSS each");
    CHECK(ticks < 5);
    if (memory_bounds_apply()) CHECK(per_conn < 4096);
    first.send_line("to all of you");
    CHECK(idle.back()->read_message() == from(first, "to all of you"));
    CHECK(idle[n / 2]->read_message() == from(first, "to all of you"));
    idle.back()->send_line("and back");
    CHECK(first.read_message() == from(*idle.back(), "and back"));
}

// ===================================================================================
// Connection lifecycle
// ===================================================================================

BACKEND_TEST(
    half_close,
    "scenario: half-close as nc -N: every line before the FIN counts, then a prompt close") {
    talk_server srv(on(backend, {"--flood-rate=0"}));
    line_client a(srv.port()), b(srv.port());
    connected(srv, 2);
    b.send_line("before");
    CHECK(a.read_message() == from(b, "before"));
    std::string all;
    for (int i = 0; i < 100; ++i)
        all += "half " + std::to_string(i) + "\n";
    a.send(all + "unterminated tail");
    a.shutdown_write();
    auto t0 = steady::now();
    for (int i = 0; i < 100; ++i)
        REQUIRE(b.read_message() == from(a, "half " + std::to_string(i)));
    CHECK(b.read_message() == from(a, "unterminated tail"));
    CHECK(b.read_line() == "*** " + a.name() + " left (end of input)");
    CHECK(a.closed_by_server(2000ms));
    CHECK(seconds_since(t0) < 1.0);  // not held for the linger time
    CHECK(srv.console_line_starting("Disconnected : ") ==
          "Disconnected : " + console_form(a.name()));
    b.send_line("after");
    CHECK(srv.console_line_starting("From ") == from(b, "after"));
}

BACKEND_TEST(
    resets_mid_broadcast,
    "scenario: peers resetting mid-broadcast, 50 in one pass: one leave notice each, serving on") {
    raise_nofile(4096);
    talk_server srv(on(backend, {"--flood-rate=0"}));
    line_client sender(srv.port()), h1(srv.port()), h2(srv.port());
    connected(srv, 3);
    const std::string payload(1000, 'r');
    for (int round = 0; round < 3; ++round) {
        std::vector<std::unique_ptr<sock_client>> peers;
        for (int i = 0; i < 50; ++i)
            peers.push_back(std::make_unique<sock_client>(srv.port(), 4096));
        connected(srv, 50);
        // Their windows fill and queues build up: writes to them are under way.
        std::string burst;
        for (int i = 0; i < 300; ++i)
            burst += std::to_string(i) + " " + payload + "\n";
        sender.send(burst);
        for (auto* h : {&h1, &h2})
            for (int i = 0; i < 300; ++i)
                REQUIRE(h->read_message() == from(sender, std::to_string(i) + " " + payload));
        // All 50 reset while the server is stopped, then a line for everyone: the
        // resets and the broadcast meet in one pass (round 2: no stop, just racing).
        bool stopped = round < 2 && stop_process(srv.pid());
        if (round < 2) REQUIRE(stopped);
        for (int i = 0; i < 50; ++i) {
            if (round == 1 && i % 2)
                peers[i]->close();  // a FIN with unread data: a reset too
            else
                peers[i]->reset();
        }
        sender.send_line("during " + std::to_string(round));
        if (stopped) continue_process(srv.pid());
        for (auto* h : {&h1, &h2}) {
            std::vector<std::string> notices;
            REQUIRE(message_noting(*h, notices) == from(sender, "during " + std::to_string(round)));
            // The leave notices come in the pass of the resets, or soon after; a
            // line sent once "during" has arrived comes after all of them.
            if (h == &h1) sender.send_line("after " + std::to_string(round));
            REQUIRE(message_noting(*h, notices) == from(sender, "after " + std::to_string(round)));
            for (auto& p : peers) {
                auto leaves =
                    std::count_if(notices.begin(), notices.end(), [&](const std::string& l) {
                        return starts_with(l, "*** " + p->name() + " left (");
                    });
                INFO(p->name());
                CHECK(leaves == 1);
            }
        }
        for (int i = 0; i < 50; ++i)
            REQUIRE(srv.console_line_starting("Disconnected : "));
    }
    CHECK(srv.running());
    line_client late(srv.port());
    late.send_line("still serving");
    CHECK(h1.read_message() == from(late, "still serving"));
}

BACKEND_TEST(fd_churn,
             "scenario: 5000 connect/disconnect cycles under a 64-descriptor limit: fds and memory "
             "back to baseline") {
    scenario_server srv(on(backend), prlimit_64);
    CHECK(std::count(srv.startup_log().begin(), srv.startup_log().end(),
                     "talkd: serving at most 32 clients (the descriptor limit allows no more)") ==
          1);
    const int fds0 = fd_count(srv.pid());
    int connects = 0, disconnects = 0;
    auto count_console = [&](duration wait) {
        while (auto l = srv.console().line(wait)) {
            if (starts_with(*l, "Connected to")) ++connects;
            if (starts_with(*l, "Disconnected")) ++disconnects;
            wait = 0ms;
        }
    };
    // Waits until every connection made so far is accepted and gone again: a probe's
    // welcome means all connections queued before it are accepted (the listen queue
    // is first in, first out), so all their "Connected" lines precede the probe's.
    auto settle = [&] {
        std::string probe_gone;
        {
            sock_client probe(srv.port());
            REQUIRE(probe.read_line());
            probe_gone = "Disconnected : " + console_form(probe.name());
        }
        auto deadline = steady::now() + 5000ms;
        bool seen_probe = false;
        while ((!seen_probe || disconnects < connects) && steady::now() < deadline) {
            auto l = srv.console().line(ms_until(deadline));
            if (!l) break;
            if (starts_with(*l, "Connected to")) ++connects;
            if (starts_with(*l, "Disconnected")) ++disconnects;
            if (*l == probe_gone) seen_probe = true;
        }
        REQUIRE(seen_probe);
        REQUIRE(disconnects == connects);
    };
    int cycles = 0;
    auto churn = [&](int count) {
        auto t0 = steady::now();
        for (int i = 0; i < count && seconds_since(t0) < 10; ++i, ++cycles) {
            int fd = connect_raw(srv.port());
            switch (cycles % 3) {
                case 0:
                    reset_close(fd);
                    break;  // a reset, perhaps before the accept
                case 1:
                    ::close(fd);
                    break;  // a FIN, perhaps before the welcome
                case 2: {   // a FIN after the first line
                    line_reader r(fd);
                    r.line(2000ms);
                    ::close(fd);
                    break;
                }
            }
            if (i % 64 == 0) count_console(0ms);  // keep the console pipe flowing
        }
    };
    churn(300);  // warm-up: the allocator's pools, the loop's tables
    settle();
    const long rss0 = rss_kib(srv.pid());
    CHECK(fd_count(srv.pid()) == fds0);
    churn(5000);
    settle();
    CHECK(cycles == 5300);  // not cut short by the time bound
    CHECK(srv.running());
    CHECK(fd_count(srv.pid()) == fds0);
    long grown = rss_kib(srv.pid()) - rss0;
    INFO(connects << " served of " << cycles << "; RSS grew by " << grown << " KiB");
    if (memory_bounds_apply()) CHECK(grown < 2 * 1024);
    line_client a(srv.port()), b(srv.port());
    a.send_line("after the churn");
    CHECK(b.read_message() == from(a, "after the churn"));
}

BACKEND_TEST(
    accept_storm,
    "scenario: resets before accept and an accept storm: still accepting, chat latency bounded") {
    raise_nofile(4096);
    talk_server srv(on(backend, {"--flood-rate=0"}));
    line_client a(srv.port()), b(srv.port());
    connected(srv, 2);
    // Connections reset while the server is stopped: accepted already dead, or never.
    REQUIRE(stop_process(srv.pid()));
    for (int i = 0; i < 200; ++i)
        reset_close(connect_raw(srv.port()));
    continue_process(srv.pid());
    a.send_line("after the resets");
    CHECK(b.read_message(2000ms) == from(a, "after the resets"));

    // 2000 connects as fast as they go, at most 100 open at once, while a and b chat.
    std::atomic<bool> storm_done{false};
    std::atomic<int> storm_connects{0};
    std::string storm_error;
    std::thread storm([&] {
        std::vector<int> open;
        try {
            for (int i = 0; i < 2000; ++i) {
                open.push_back(connect_raw(srv.port()));
                ++storm_connects;
                if (open.size() == 100) {
                    for (std::size_t k = 0; k < open.size(); ++k) {
                        if (k % 2)
                            ::close(open[k]);
                        else
                            reset_close(open[k]);
                    }
                    open.clear();
                }
            }
        } catch (const std::exception& e) {
            storm_error = e.what();
        }
        for (int fd : open)
            ::close(fd);
        storm_done = true;
    });
    double worst = 0;
    int pings = 0;
    auto t0 = steady::now();
    while ((!storm_done || pings < 5) && seconds_since(t0) < 30) {
        auto sent = steady::now();
        a.send_line("ping " + std::to_string(pings));
        auto got = b.read_message(3000ms);
        worst = std::max(worst, seconds_since(sent));
        if (got != from(a, "ping " + std::to_string(pings))) {
            FAIL_CHECK("ping " << pings << " did not arrive in 3 s");
            break;
        }
        ++pings;
        std::this_thread::sleep_for(10ms);  // the pace of the chat, not a wait for anything
    }
    storm.join();
    INFO(storm_connects << " storm connects; " << pings << " pings, worst latency " << worst * 1000
                        << " ms");
    CHECK(storm_error.empty());
    CHECK(storm_connects == 2000);
    CHECK(pings >= 5);
    CHECK(worst < 1.0);
    CHECK(srv.running());
    line_client c(srv.port());
    c.send_line("after the storm");
    CHECK(b.read_message() == from(c, "after the storm"));
}

BACKEND_TEST(server_full,
             "scenario: --max-clients 3: the 4th gets one ERR line and a clean close; served again "
             "after a leave") {
    talk_server srv(on(backend, {"--max-clients=3"}));
    auto c1 = std::make_unique<line_client>(srv.port());
    line_client c2(srv.port()), c3(srv.port());
    connected(srv, 3);
    for (int i = 0; i < 20; ++i) {
        int fd = connect_raw(srv.port());
        stream_end end = read_to_end(fd, 3000ms);
        ::close(fd);
        CHECK(end.data == "ERR server-full 3 clients connected; try again later\n");
        CHECK(end.clean);  // a FIN after the line, not a reset
    }
    std::string gone = c1->name();
    c1.reset();
    CHECK(srv.console_line_starting("Disconnected : ") == "Disconnected : " + console_form(gone));
    line_client c4(srv.port());
    CHECK(starts_with(c4.read_line().value_or(""), "*** Welcome to talkd"));
    c4.send_line("served");
    CHECK(c2.read_message() == from(c4, "served"));
}

// ===================================================================================
// Resources, signals
// ===================================================================================

namespace {

// Opens count connections and sorts them by their first line: a welcome, or
// `refusal` followed by a clean close. Returns the welcomed ones. Refused
// connections hold a descriptor while they linger, so in a burst a refusal may
// instead be the spare-descriptor path's, or (select) the one for a descriptor past
// FD_SETSIZE: any "ERR server-full" line, then a clean close.
template <class Server>
std::vector<std::unique_ptr<sock_client>> connect_many(Server& srv, int count,
                                                       const std::string& refusal, int& refused) {
    std::vector<std::unique_ptr<sock_client>> all, served;
    for (int i = 0; i < count; ++i)
        all.push_back(std::make_unique<sock_client>(srv.port()));
    refused = 0;
    for (auto& c : all) {
        auto first = c->read_line(3000ms);
        REQUIRE(first);
        if (starts_with(*first, "*** Welcome to talkd")) {
            served.push_back(std::move(c));
            continue;
        }
        if (*first != refusal) CHECK(starts_with(*first, "ERR server-full "));
        CHECK(c->closed_cleanly(2000ms));
        ++refused;
    }
    return served;
}

// A client that speaks before it is refused: the server is stopped while it
// connects and sends, so its line is there before the accept. Closing over unread
// input would be a reset, which can cost it the error line; it must get the line
// and a clean end.
template <class Server>
void check_refused_talker(Server& srv, const std::string& refusal) {
    REQUIRE(::kill(srv.pid(), SIGSTOP) == 0);
    sock_client c(srv.port());
    bool sent = c.try_send(std::string(6000, 'x') + "\nlet me in\n");
    REQUIRE(::kill(srv.pid(), SIGCONT) == 0);
    CHECK(sent);
    CHECK(c.read_line(3000ms) == refusal);
    CHECK(c.closed_by_server(3000ms));
    INFO("the stream ended with " << (c.in().end_error() ? std::strerror(c.in().end_error())
                                                          : "EOF"));
    CHECK(c.in().end_error() == 0);
    int err = c.socket_error();
    INFO("the socket's error after it: " << (err ? std::strerror(err) : "none"));
    CHECK(err == 0);
}

}  // namespace

BACKEND_TEST(descriptor_limit,
             "scenario: 64 descriptors and 100 connects: capped, or EMFILE shed with the spare fd; "
             "no spin; served again") {
    {
        // Limited from the start: talkd caps its clients below the limit and says so.
        scenario_server srv(on(backend), prlimit_64);
        CHECK(std::count(
                  srv.startup_log().begin(), srv.startup_log().end(),
                  "talkd: serving at most 32 clients (the descriptor limit allows no more)") == 1);
        int refused = 0;
        auto served = connect_many(
            srv, 100, "ERR server-full 32 clients connected; try again later", refused);
        CHECK(served.size() == 32);
        CHECK(refused == 68);
        CHECK(idle_ticks(srv) < 10);
        check_refused_talker(srv, "ERR server-full 32 clients connected; try again later");
        for (int i = 0; i < 5; ++i)
            served[i]->close();
        for (int i = 0; i < 5; ++i)
            REQUIRE(srv.console_line_starting("Disconnected : "));
        auto again =
            connect_many(srv, 6, "ERR server-full 32 clients connected; try again later", refused);
        CHECK(again.size() == 5);
        CHECK(refused == 1);
    }
    {
        // Lowered under a running talkd: accept() fails with EMFILE. The spare
        // descriptor is given up to accept, refuse and close each excess connection.
        talk_server srv(on(backend));
        rlimit low{64, 64};
        REQUIRE(::prlimit(srv.pid(), RLIMIT_NOFILE, &low, nullptr) == 0);
        const int fds0 = fd_count(srv.pid());
        const int low_fds0 = fd_count_below(srv.pid(), 64);  // not counting any inherited above
        long before = srv.cpu_ticks();
        auto t0 = steady::now();
        int refused = 0;
        auto served =
            connect_many(srv, 100, "ERR server-full no free descriptors; try again later", refused);
        double storm = seconds_since(t0);
        long storm_ticks = srv.cpu_ticks() - before;
        INFO(served.size() << " served, " << refused << " refused; " << storm_ticks << " ticks in "
                           << storm << " s");
        CHECK(served.size() == static_cast<std::size_t>(64 - low_fds0));
        CHECK(served.size() + refused == 100);
        CHECK(storm_ticks < 100 * storm / 2 + 10);  // not a core burnt while refusing
        CHECK(idle_ticks(srv) < 10);
        CHECK(srv.log().until([](const std::string& l) {
            return l == "talkd: accept: Too many open files: refused a connection";
        }));
        check_refused_talker(srv, "ERR server-full no free descriptors; try again later");
        for (int i = 0; i < 10; ++i)
            served[i]->close();
        for (int i = 0; i < 10; ++i)
            REQUIRE(srv.console_line_starting("Disconnected : "));
        auto again =
            connect_many(srv, 10, "ERR server-full no free descriptors; try again later", refused);
        CHECK(again.size() == 10);
        CHECK(refused == 0);
        again.front()->send_line("served again");
        CHECK(again.back()->read_message() == from(*again.front(), "served again"));
        std::size_t open = served.size() - 10 + again.size();
        served.clear();
        again.clear();
        for (std::size_t i = 0; i < open; ++i)
            REQUIRE(srv.console_line_starting("Disconnected : "));
        CHECK(fd_count(srv.pid()) == fds0);  // the spare descriptor is back, nothing leaked
    }
}

TEST_CASE("scenario: select and 1100 connections: at most 992 served, the rest refused cleanly",
          "[select]") {
    raise_nofile(4096);
    scenario_server srv({"--backend=select"});
    CHECK(std::count(srv.startup_log().begin(), srv.startup_log().end(),
                     "talkd: serving at most 992 clients (select's FD_SETSIZE allows no more)") ==
          1);
    int refused = 0;
    auto served =
        connect_many(srv, 1100, "ERR server-full 992 clients connected; try again later", refused);
    CHECK(served.size() == 992);
    CHECK(refused == 108);
    CHECK(idle_ticks(srv) < 10);
    served.front()->send_line("to the last");
    CHECK(served.back()->read_message() == from(*served.front(), "to the last"));
    served.back()->send_line("to the first");
    CHECK(served.front()->read_message() == from(*served.back(), "to the first"));
}

BACKEND_TEST(signal_in_flood,
             "scenario: SIGTERM/SIGINT during a flood: clients told, exit 0 within 2 s; a second "
             "SIGINT kills at once") {
    const std::string payload(200, 'x');
    for (int sig : {SIGTERM, SIGINT}) {
        talk_server srv(on(backend, {"--flood-rate=0"}));
        line_client f(srv.port()), r(srv.port());
        sock_client sleeper(srv.port(), 4096);
        connected(srv, 3);
        std::atomic<bool> stop{false};
        send_timeout(f.fd(), 100ms);
        std::thread flood([&] {
            for (int i = 0; i < 200000 && !stop; i += 100) {
                std::string chunk;
                for (int k = i; k < i + 100; ++k)
                    chunk += std::to_string(k) + " " + payload + "\n";
                if (::send(f.fd(), chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0 && errno != EAGAIN)
                    return;
            }
        });
        for (int i = 0; i < 2000; ++i)
            REQUIRE(r.read_message());
        auto t0 = steady::now();
        srv.signal(sig);
        auto told = r.in().until(
            [](const std::string& l) { return l == "*** server shutting down"; }, 3000ms);
        CHECK(told);
        CHECK(r.closed_by_server(3000ms));
        auto status = srv.wait(3000ms);
        double took = seconds_since(t0);
        stop = true;
        flood.join();
        REQUIRE(status);
        CHECK(WIFEXITED(*status));
        CHECK(WEXITSTATUS(*status) == 0);
        INFO("exit after " << took << " s");
        CHECK(took < 2.0);
    }
    {
        talk_server srv(on(backend, {"--flood-rate=0"}));
        line_client f(srv.port()), r(srv.port());
        sock_client sleeper(srv.port(), 4096);  // never reads: its queue holds the exit back
        connected(srv, 3);
        std::string chunk;
        for (int i = 0; i < 100; ++i)
            chunk += std::to_string(i) + " " + std::string(1000, 'y') + "\n";
        for (int i = 0; i < 60; ++i) {  // 6 MB: past what the sleeper's socket buffers take
            f.send(chunk);
            for (int k = 0; k < 100; ++k)
                REQUIRE(r.read_message());
        }
        srv.signal(SIGINT);
        REQUIRE(srv.log().until(
            [](const std::string& l) { return l == "talkd: SIGINT: shutting down"; }));
        auto t0 = steady::now();
        srv.signal(SIGINT);
        auto status = srv.wait(1000ms);
        REQUIRE(status);
        INFO("ended after " << seconds_since(t0) << " s");
        CHECK(seconds_since(t0) < 0.5);  // before the second of grace the first one gives
        CHECK(WIFSIGNALED(*status));
        CHECK(WTERMSIG(*status) == SIGINT);
    }
}

BACKEND_TEST(
    stop_cont,
    "scenario: SIGSTOP and SIGCONT, idle or under traffic: serving on (epoll_wait's EINTR)") {
    talk_server srv(on(backend, {"--flood-rate=0"}));
    line_client a(srv.port()), b(srv.port());
    connected(srv, 2);
    int next = 0;
    for (int round = 0; round < 20; ++round) {
        bool idle = round % 2 == 0;
        if (idle) {  // blocked in its wait when stopped
            REQUIRE(stop_process(srv.pid()));
            continue_process(srv.pid());
        }
        std::string lines;
        for (int i = next; i < next + 50; ++i)
            lines += "line " + std::to_string(i) + "\n";
        a.send(lines);
        if (!idle) {  // stopped in the middle of the traffic
            REQUIRE(stop_process(srv.pid()));
            continue_process(srv.pid());
        }
        for (int i = next; i < next + 50; ++i)
            REQUIRE(b.read_message() == from(a, "line " + std::to_string(i)));
        next += 50;
    }
    CHECK(srv.running());
    b.send_line("still here");
    CHECK(a.read_message() == from(b, "still here"));
    srv.signal(SIGTERM);
    auto status = srv.wait();
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    std::string log = srv.log().drain(100ms);
    CHECK(log.find("wait failed") == std::string::npos);
}

BACKEND_TEST(quick_restart,
             "scenario: restart on the same port right after SIGTERM with connections open") {
    int port = 0;
    std::unique_ptr<line_client> still_open;
    {
        talk_server first(on(backend));
        port = first.port();
        still_open = std::make_unique<line_client>(port);
        line_client b(port);
        connected(first, 2);
        still_open->send_line("hello");
        CHECK(b.read_message() == from(*still_open, "hello"));
        first.signal(SIGTERM);
        CHECK(b.closed_by_server());
        CHECK(still_open->closed_by_server());
        auto status = first.wait();
        REQUIRE(status);
        CHECK(WIFEXITED(*status));
        CHECK(WEXITSTATUS(*status) == 0);
    }
    // The server closed first: its side of b is in TIME_WAIT, still_open's in FIN_WAIT2.
    talk_server second(on(backend, {"-p", std::to_string(port)}));
    CHECK(second.port() == port);
    line_client c(port), d(port);
    c.send_line("on the new server");
    CHECK(d.read_message() == from(c, "on the new server"));
}

MODEL_TEST(mass_vanish, "scenario: many clients reset at once while a message goes out") {
    raise_nofile(4096);
    const int crowd_size = backend == "select" ? 900 : 1000;  // select serves at most 992
    talk_server srv(on(backend, {"--flood-rate=0"}));
    line_client talker(srv.port()), watcher(srv.port());
    std::vector<std::unique_ptr<line_client>> crowd;
    for (int i = 0; i < crowd_size; ++i) crowd.push_back(std::make_unique<line_client>(srv.port()));
    // All registered (accepted in order). Slow under ThreadSanitizer, which runs this
    // against the threads model: a thousand thread starts take a while there.
    REQUIRE(crowd.back()->next_starting("*** Welcome", 120000ms));
    // A burst is on its way to everyone when they vanish, so that writes to the
    // vanished fail by the hundred (the threads model once recursed on each failure
    // until its thread's stack ran out).
    std::string burst;
    for (int i = 0; i < 200; ++i) burst += "burst " + std::to_string(i) + "\n";
    talker.send(burst);
    for (auto& c : crowd) {  // a reset each, as a crashed client leaves
        linger lg{1, 0};
        ::setsockopt(c->fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        c->close();
    }
    talker.send_line("to whom it may concern");  // written to the vanished too, some of them
    // Every one of them leaves (a notice each), the message arrives, and the server
    // is still serving afterwards.
    int left = 0;
    bool message = false;
    while (left < crowd_size || !message) {
        auto l = watcher.read_line(60000ms);
        REQUIRE(l);
        if (l->find(" left (") != std::string::npos) ++left;
        if (l->find("to whom") != std::string::npos) message = true;
    }
    CHECK(left == crowd_size);
    talker.send_line("still here");
    CHECK(watcher.in().until([](const std::string& l) { return l.find("still here") != std::string::npos; }));
    CHECK(srv.running());
}
