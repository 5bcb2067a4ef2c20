// The hub and the chat service, driven without sockets: clients are plain objects,
// their output is read by gathering their queues, the console is a line_buffer.
//
// The chat service grows (a welcome line, commands, rooms), so these tests assert
// only what stays: lines not starting with '/' reach every other client as
// "From <peer>, <text>", and lines starting with "*** " are skipped when reading.
#include "talk/hub.hpp"

#include <catch2/catch.hpp>

#include <sys/uio.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "talk/line_buffer.hpp"
#include "talk/services.hpp"

using namespace talk;

namespace {

std::vector<std::string> split_lines(std::string_view s) {
    std::vector<std::string> lines;
    while (!s.empty()) {
        auto nl = s.find('\n');
        if (nl == std::string_view::npos) {
            lines.emplace_back(s);
            break;
        }
        lines.emplace_back(s.substr(0, nl));
        s.remove_prefix(nl + 1);
    }
    return lines;
}

// Everything queued for c, as a writer would send it, the queue emptied.
std::string take_all(client& c) {
    std::string s;
    while (!c.out.empty()) {
        iovec iov[16];
        int n = c.out.gather(iov, 16, static_cast<std::size_t>(-1));
        REQUIRE(n > 0);
        std::size_t took = 0;
        for (int i = 0; i < n; ++i) {
            s.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
            took += iov[i].iov_len;
        }
        c.out.consume(took);
    }
    return s;
}

// The lines queued for c, without the server's own "*** " notices.
std::vector<std::string> take_lines(client& c) {
    std::string all = take_all(c);
    REQUIRE((all.empty() || all.back() == '\n'));  // whole lines only
    std::vector<std::string> lines;
    for (auto& l : split_lines(all))
        if (l.rfind("*** ", 0) != 0) lines.push_back(l);
    return lines;
}

bool has_line(const std::vector<std::string>& lines, std::string_view want) {
    for (const auto& l : lines)
        if (l == want) return true;
    return false;
}

using lines_t = std::vector<std::string>;

// A hub with a console, a service, and clients that live as long as the hub.
struct chat_fixture {
    explicit chat_fixture(limits lim = {}, std::string_view service_name = "chat")
        : h(lim, console) {
        svc = make_service(service_name, h, server_identity{"talkd", "0.1.0", "test"});
        REQUIRE(svc);
        h.attach(*svc);
    }

    line_buffer console{1 << 20};
    hub h;
    std::unique_ptr<service> svc;
    std::vector<std::unique_ptr<client>> owned;  // destroyed before the hub

    client& join(std::uint16_t port, std::string local = "127.0.0.1:5555",
                 std::string host = "127.0.0.1") {
        auto c = std::make_unique<client>(owned.size() + 1, h.limits().max_line);
        c->host = host;
        c->port = port;
        c->peer = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                  std::to_string(port);
        c->local = std::move(local);
        client& ref = *c;
        owned.push_back(std::move(c));
        h.open(ref);
        return ref;
    }

    // Writes every pending queue away, as the transport does after a pass.
    void flush_all() {
        for (client* c : h.pending()) {
            take_all(*c);
            c->pending = false;
        }
        h.pending().clear();
    }

    std::vector<std::string> console_lines() {
        auto lines = split_lines(console.pending());
        console.consume(console.pending().size());
        return lines;
    }

    std::vector<client*> settle() {
        std::vector<client*> closed;
        h.settle([&](client& c) { closed.push_back(&c); });
        return closed;
    }
};

// A service the tests control: records what the hub tells it, and closes a client
// that sends "quit".
class probe_service final : public service {
public:
    explicit probe_service(hub& h) : hub_(h) {}

    void joined(client& c) override { joined_.push_back(&c); }
    void line(client& c, std::string_view text) override {
        lines_.emplace_back(text);
        if (text == "quit") {
            hub_.close(c, close_mode::flush, "quit", "BYE");
            return;
        }
        hub_.reply(c, "echo " + std::string(text));
    }
    void left(client& c) override {
        left_.push_back(&c);
        if (close_on_left_ && close_on_left_ != &c)
            hub_.close(*close_on_left_, close_mode::abort, "buddy left");
    }
    void operator_line(std::string_view text) override { operator_lines_.emplace_back(text); }

    hub& hub_;
    std::vector<client*> joined_;
    std::vector<std::string> lines_;
    std::vector<client*> left_;
    std::vector<std::string> operator_lines_;
    client* close_on_left_ = nullptr;
};

struct probe_fixture {
    explicit probe_fixture(limits lim = {}) : h(lim, console), svc(h) { h.attach(svc); }

    line_buffer console{1 << 20};
    hub h;
    probe_service svc;
    std::vector<std::unique_ptr<client>> owned;

    client& join(std::uint16_t port) {
        auto c = std::make_unique<client>(owned.size() + 1, h.limits().max_line);
        c->host = "10.0.0.1";
        c->port = port;
        c->peer = "10.0.0.1:" + std::to_string(port);
        c->local = "10.0.0.2:7000";
        client& ref = *c;
        owned.push_back(std::move(c));
        h.open(ref);
        return ref;
    }

    std::vector<client*> settle() {
        std::vector<client*> closed;
        h.settle([&](client& c) { closed.push_back(&c); });
        return closed;
    }
};

}  // namespace

// ---- the chat relay ----

TEST_CASE("hub/chat: a line reaches every other client, never the sender", "[hub][chat]") {
    chat_fixture f;
    client& a = f.join(40001);
    client& b = f.join(40002);
    client& c = f.join(40003);
    f.flush_all();

    f.h.feed(a, "hello there\n");
    CHECK(take_lines(b) == lines_t{"From 127.0.0.1:40001, hello there"});
    CHECK(take_lines(c) == lines_t{"From 127.0.0.1:40001, hello there"});
    CHECK(take_lines(a).empty());

    f.h.feed(b, "from b\r\n");
    CHECK(take_lines(a) == lines_t{"From 127.0.0.1:40002, from b"});
    CHECK(take_lines(c) == lines_t{"From 127.0.0.1:40002, from b"});
    CHECK(take_lines(b).empty());
}

TEST_CASE("hub/chat: recipients are on the pending list once", "[hub][chat]") {
    chat_fixture f;
    client& a = f.join(40001);
    client& b = f.join(40002);
    f.flush_all();
    CHECK(f.h.pending().empty());

    f.h.feed(a, "one\ntwo\nthree\n");
    CHECK(f.h.pending().size() == 1);
    REQUIRE_FALSE(f.h.pending().empty());
    CHECK(f.h.pending()[0] == &b);
    CHECK(b.pending);
    CHECK_FALSE(a.pending);
    CHECK(take_lines(b) ==
          lines_t{"From 127.0.0.1:40001, one", "From 127.0.0.1:40001, two",
                  "From 127.0.0.1:40001, three"});
}

TEST_CASE("hub/chat: a line in pieces is relayed once it is whole", "[hub][chat]") {
    chat_fixture f;
    client& a = f.join(40001);
    client& b = f.join(40002);
    f.flush_all();
    f.h.feed(a, "hel");
    CHECK(take_lines(b).empty());
    f.h.feed(a, "lo\r");
    CHECK(take_lines(b).empty());
    f.h.feed(a, "\nsecond\n");
    CHECK(take_lines(b) == lines_t{"From 127.0.0.1:40001, hello", "From 127.0.0.1:40001, second"});
}

TEST_CASE("hub/chat: empty lines are not relayed", "[hub][chat]") {
    chat_fixture f;
    client& a = f.join(40001);
    client& b = f.join(40002);
    f.flush_all();
    f.console_lines();
    f.h.feed(a, "\n\r\n\n");
    CHECK(take_lines(b).empty());
    CHECK(take_lines(a).empty());
    for (const auto& l : f.console_lines()) CHECK(l.rfind("From ", 0) != 0);
}

TEST_CASE("hub/chat: the console shows connects, lines and disconnects", "[hub][chat]") {
    chat_fixture f;
    client& a = f.join(40001);
    client& b = f.join(40002, "[::1]:5555", "::1");
    f.h.feed(a, "hi all\n");
    f.h.feed(b, "hi a\n");
    f.h.feed_eof(a);
    auto closed = f.settle();
    CHECK(closed == std::vector<client*>{&a});

    auto lines = f.console_lines();
    auto at = [&](std::string_view want) {
        for (std::size_t i = 0; i < lines.size(); ++i)
            if (lines[i] == want) return static_cast<int>(i);
        return -1;
    };
    int connect_a = at("Connected to : 127.0.0.1 : 40001");
    int connect_b = at("Connected to : ::1 : 40002");
    int line_a = at("From 127.0.0.1:40001, hi all");
    int line_b = at("From [::1]:40002, hi a");
    int gone_a = at("Disconnected : 127.0.0.1 : 40001");
    CAPTURE(lines);
    CHECK(connect_a >= 0);
    CHECK(connect_b > connect_a);
    CHECK(line_a > connect_b);
    CHECK(line_b > line_a);
    CHECK(gone_a > line_b);
    CHECK(at("Disconnected : ::1 : 40002") == -1);
}

TEST_CASE("hub/chat: control bytes are sanitised for recipients and the console",
          "[hub][chat]") {
    chat_fixture f;
    client& a = f.join(40001);
    client& b = f.join(40002);
    f.flush_all();
    f.console_lines();
    f.h.feed(a, "a\x1b[31mred\x1b[0m\rFrom admin, \xC2\x9B\xFF\n");
    const std::string expected = "From 127.0.0.1:40001, a^[[31mred^[[0m^MFrom admin, <U+009B>\\xFF";
    CHECK(take_lines(b) == lines_t{expected});
    CHECK(has_line(f.console_lines(), expected));
}

TEST_CASE("hub/chat: an overlong line is refused to its sender only", "[hub][chat]") {
    limits lim;
    lim.max_line = 32;
    chat_fixture f(lim);
    client& a = f.join(40001);
    client& b = f.join(40002);
    f.flush_all();
    f.console_lines();

    SECTION("in one piece") {
        f.h.feed(a, std::string(33, 'x') + "\n");
    }
    SECTION("in many pieces, without an end yet") {
        for (int i = 0; i < 10; ++i) f.h.feed(a, std::string(10, 'x'));
        f.h.feed(a, "\n");
    }
    CHECK(take_lines(a) == lines_t{"ERR line-too-long max 32 bytes"});
    CHECK(take_lines(b).empty());
    CHECK_FALSE(a.closing);
    for (const auto& l : f.console_lines()) CHECK(l.rfind("From ", 0) != 0);

    // The next line is relayed as usual; exactly max_line is fine.
    std::string fits(32, 'y');
    f.h.feed(a, fits + "\n");
    CHECK(take_lines(b) == lines_t{"From 127.0.0.1:40001, " + fits});
    CHECK(take_lines(a).empty());
}

TEST_CASE("hub/chat: an unterminated last line counts at end of input", "[hub][chat]") {
    chat_fixture f;
    client& a = f.join(40001);
    client& b = f.join(40002);
    f.flush_all();
    f.h.feed(a, "last words");
    CHECK(take_lines(b).empty());
    f.h.feed_eof(a);
    CHECK(take_lines(b) == lines_t{"From 127.0.0.1:40001, last words"});
    CHECK(a.closing);
    CHECK(a.mode == close_mode::flush);
    // Input after the end is ignored.
    f.h.feed(a, "more\n");
    CHECK(take_lines(b).empty());
    CHECK(f.settle() == std::vector<client*>{&a});
    CHECK(f.h.clients() == std::vector<client*>{&b});
}

TEST_CASE("hub/chat: a closed client no longer receives lines", "[hub][chat]") {
    chat_fixture f;
    client& a = f.join(40001);
    client& b = f.join(40002);
    client& c = f.join(40003);
    f.flush_all();
    f.h.feed_eof(c);
    f.settle();
    f.flush_all();
    f.h.feed(a, "still here\n");
    CHECK(take_lines(b) == lines_t{"From 127.0.0.1:40001, still here"});
    CHECK(take_all(c).empty());
}

TEST_CASE("hub: broadcast_from_server formats once per distinct local address", "[hub][chat]") {
    chat_fixture f;
    client& a = f.join(40001, "127.0.0.1:5555");
    client& b = f.join(40002, "[::1]:5555", "::1");
    client& c = f.join(40003, "127.0.0.1:5555");
    f.flush_all();
    auto before = f.h.stats().messages;

    f.h.broadcast_from_server("maintenance \x1b[5m soon");
    CHECK(f.h.stats().messages == before + 1);

    iovec ia[2], ib[2], ic[2];
    REQUIRE(a.out.gather(ia, 2, 1000) == 1);
    REQUIRE(b.out.gather(ib, 2, 1000) == 1);
    REQUIRE(c.out.gather(ic, 2, 1000) == 1);
    CHECK(ia[0].iov_base == ic[0].iov_base);  // one message shared by a and c
    CHECK(ia[0].iov_len == ic[0].iov_len);
    CHECK(ia[0].iov_base != ib[0].iov_base);

    CHECK(take_lines(a) == lines_t{"From 127.0.0.1:5555, maintenance ^[[5m soon"});
    CHECK(take_lines(b) == lines_t{"From [::1]:5555, maintenance ^[[5m soon"});
    CHECK(take_lines(c) == lines_t{"From 127.0.0.1:5555, maintenance ^[[5m soon"});
}

TEST_CASE("hub/chat: an operator line reaches every client", "[hub][chat]") {
    chat_fixture f;
    client& a = f.join(40001);
    client& b = f.join(40002);
    f.flush_all();
    f.h.operator_line("hello from the console");
    CHECK(take_lines(a) == lines_t{"From 127.0.0.1:5555, hello from the console"});
    CHECK(take_lines(b) == lines_t{"From 127.0.0.1:5555, hello from the console"});
    f.h.operator_line("");
    CHECK(take_lines(a).empty());
}

TEST_CASE("hub: a client that stops reading is dropped with only the ERR line queued",
          "[hub][chat]") {
    limits lim;
    lim.max_queue = 1000;
    chat_fixture f(lim);
    client& talker = f.join(40001);
    client& reader = f.join(40002);
    client& slow = f.join(40003);
    f.flush_all();

    const std::string text(50, 'z');  // about 73 bytes per relayed line
    int sent = 0;
    while (!slow.closing && sent < 100) {
        f.h.feed(talker, text + "\n");
        ++sent;
        take_all(reader);        // this one keeps up
        f.h.backlogged(slow);    // its socket takes nothing
    }
    REQUIRE(slow.closing);
    CHECK(sent > 5);  // it was not dropped at once
    CHECK(slow.mode == close_mode::drop);
    CHECK_FALSE(slow.reason.empty());
    CHECK_FALSE(reader.closing);
    CHECK(slow.pending);

    // Nothing more is queued for it.
    std::size_t queued = slow.out.bytes();
    f.h.feed(talker, text + "\n");
    CHECK(slow.out.bytes() == queued);

    std::string all = take_all(slow);
    CHECK(all.rfind("ERR too-slow", 0) == 0);
    CHECK(split_lines(all).size() == 1);
    CHECK(all.back() == '\n');

    CHECK(f.settle() == std::vector<client*>{&slow});
    CHECK(f.h.clients().size() == 2);
}

// ---- the hub with a service the test controls ----

TEST_CASE("hub: open tells the service and the console", "[hub]") {
    probe_fixture f;
    client& a = f.join(1234);
    CHECK(f.svc.joined_ == std::vector<client*>{&a});
    CHECK(f.h.clients() == std::vector<client*>{&a});
    CHECK(f.h.stats().connections == 1);
    CHECK(split_lines(f.console.pending()) == lines_t{"Connected to : 10.0.0.1 : 1234"});
}

TEST_CASE("hub: feed stops at the line after which the client closed", "[hub]") {
    probe_fixture f;
    client& a = f.join(1);
    std::string in = "first\nquit\nafter\nmore\n";
    f.h.feed(a, in);  // "after" and "more" follow the quit: never run
    CHECK(f.svc.lines_ == lines_t{"first", "quit"});
    CHECK(a.closing);
    CHECK(f.h.stats().lines_in == 2);
    // Later input is ignored.
    f.h.feed(a, "ignored\n");
    f.h.feed_eof(a);
    CHECK(f.svc.lines_ == lines_t{"first", "quit"});
    CHECK(take_all(a) == "echo first\nBYE\n");
}

TEST_CASE("hub: feed consumes everything when the client stays", "[hub]") {
    probe_fixture f;
    client& a = f.join(1);
    f.h.feed(a, "a\nb\nc");
    CHECK(!a.throttled);
    CHECK(a.held.empty());
    CHECK(f.svc.lines_ == lines_t{"a", "b"});
    CHECK(f.h.stats().lines_in == 2);
}

TEST_CASE("hub: settle calls left and hands over each closing client once", "[hub]") {
    probe_fixture f;
    client& a = f.join(1);
    client& b = f.join(2);
    client& c = f.join(3);
    client& d = f.join(4);
    f.console.consume(f.console.pending().size());

    f.h.close(b, close_mode::flush, "one");
    f.h.close(b, close_mode::abort, "two");  // already closing: ignored
    f.h.close(d, close_mode::abort, "three");
    CHECK(b.mode == close_mode::flush);
    CHECK(b.reason == "one");
    CHECK(d.mode == close_mode::abort);
    CHECK(f.svc.left_.empty());  // not before settle

    auto closed = f.settle();
    CHECK(closed == std::vector<client*>{&b, &d});
    CHECK(f.svc.left_ == std::vector<client*>{&b, &d});
    CHECK(f.settle().empty());
    CHECK(f.svc.left_.size() == 2);

    // The client list is compact and every slot is right.
    REQUIRE(f.h.clients().size() == 2);
    for (std::size_t i = 0; i < f.h.clients().size(); ++i) CHECK(f.h.clients()[i]->slot == i);
    CHECK(std::find(f.h.clients().begin(), f.h.clients().end(), &a) != f.h.clients().end());
    CHECK(std::find(f.h.clients().begin(), f.h.clients().end(), &c) != f.h.clients().end());

    auto console = split_lines(f.console.pending());
    CHECK(console == lines_t{"Disconnected : 10.0.0.1 : 2", "Disconnected : 10.0.0.1 : 4"});
}

TEST_CASE("hub: a close asked for inside left() is settled too, once", "[hub]") {
    probe_fixture f;
    client& a = f.join(1);
    client& b = f.join(2);
    f.join(3);
    f.svc.close_on_left_ = &b;
    f.h.close(a, close_mode::flush, "bye");
    auto closed = f.settle();
    auto more = f.settle();
    closed.insert(closed.end(), more.begin(), more.end());
    CHECK(closed == std::vector<client*>{&a, &b});
    CHECK(f.svc.left_ == std::vector<client*>{&a, &b});
    CHECK(f.h.clients().size() == 1);
}

TEST_CASE("hub: send and reply to a closing client are ignored", "[hub]") {
    probe_fixture f;
    client& a = f.join(1);
    client& b = f.join(2);
    f.h.close(a, close_mode::flush, "bye", "BYE");
    std::size_t queued = a.out.bytes();
    f.h.send(a, compose(f.h.arena(), "late"));
    f.h.reply(a, "late reply");
    f.h.broadcast(compose(f.h.arena(), "to all"));
    CHECK(a.out.bytes() == queued);
    CHECK(take_all(a) == "BYE\n");
    CHECK(take_all(b) == "to all\n");
}

TEST_CASE("hub: close modes and the last line", "[hub]") {
    probe_fixture f;
    client& a = f.join(1);
    f.h.feed(a, "one\ntwo\n");
    REQUIRE(a.out.bytes() > 0);

    SECTION("flush keeps what is queued, then the last line") {
        f.h.close(a, close_mode::flush, "done", "BYE");
        CHECK(take_all(a) == "echo one\necho two\nBYE\n");
    }
    SECTION("drop discards what is queued, keeps the last line") {
        f.h.close(a, close_mode::drop, "slow", "ERR gone");
        CHECK(take_all(a) == "ERR gone\n");
    }
    SECTION("drop keeps the rest of a line already partly written") {
        a.out.consume(3);  // the kernel took "ech"
        f.h.close(a, close_mode::drop, "slow", "ERR gone");
        CHECK(take_all(a) == "o one\nERR gone\n");
    }
    SECTION("abort queues nothing more and is not put on the pending list") {
        f.h.pending().clear();
        a.pending = false;
        f.h.close(a, close_mode::abort, "reset", "never sent");
        CHECK(a.closing);
        CHECK(f.h.pending().empty());
        CHECK(take_all(a).find("never sent") == std::string::npos);
    }
    CHECK(a.closing);
    CHECK(f.settle() == std::vector<client*>{&a});
}

TEST_CASE("hub: a close puts the client on the pending list so its output is written",
          "[hub]") {
    probe_fixture f;
    client& a = f.join(1);
    CHECK(f.h.pending().empty());
    f.h.close(a, close_mode::flush, "bye");
    CHECK(f.h.pending() == std::vector<client*>{&a});
    CHECK(a.pending);
}

TEST_CASE("hub: overflow is judged against max_queue", "[hub]") {
    limits lim;
    lim.max_queue = 100;
    probe_fixture f(lim);
    client& a = f.join(1);
    msg_slice m = compose(f.h.arena(), std::string(49, 'm'));  // 50 bytes
    f.h.send(a, m);
    f.h.send(a, m);
    f.h.backlogged(a);
    CHECK(a.out.bytes() == 100);
    CHECK_FALSE(a.closing);  // at the limit is not over it
    f.h.send(a, m);
    CHECK_FALSE(a.closing);  // queued in one pass: judged only once a write falls short
    f.h.backlogged(a);
    CHECK(a.closing);
    CHECK(a.mode == close_mode::drop);
    std::string all = take_all(a);
    CHECK(all.rfind("ERR too-slow", 0) == 0);
    CHECK(split_lines(all).size() == 1);
}

TEST_CASE("hub: operator lines go to the service", "[hub]") {
    probe_fixture f;
    f.h.operator_line("shutdown soon");
    CHECK(f.svc.operator_lines_ == lines_t{"shutdown soon"});
}

TEST_CASE("hub: a throttled client's deadlines wait while its input waits on us", "[hub][flood]") {
    limits lim;
    lim.flood_rate = 1;
    lim.flood_burst = 1;
    lim.line_timeout = std::chrono::seconds(1);
    lim.idle_timeout = std::chrono::seconds(2);
    chat_fixture f(lim);
    auto t = talk::clock::now();
    f.h.set_now(t);
    client& a = f.join(40001);
    f.h.feed(a, "one\ntwo\nthree, unfinished");
    REQUIRE(a.throttled);  // "two" waits for a token, with all after it

    f.h.set_now(t + std::chrono::seconds(10));  // far past both deadlines
    CHECK(f.h.check_deadlines(a) == talk::clock::time_point::max());
    CHECK_FALSE(a.closing);

    CHECK(f.h.resume(a));  // the bucket refilled: "two" runs, "three, ..." stays unfinished
    CHECK_FALSE(a.closing);
    // Reading again counts as hearing from it: the deadlines start from now.
    CHECK(a.line_started == f.h.now());
    CHECK(f.h.check_deadlines(a) == f.h.now() + std::chrono::seconds(1));
    CHECK_FALSE(a.closing);
}
