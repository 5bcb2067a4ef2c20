// out_queue, message_arena and compose(): shared chunks, slices, merging, partial
// writes, reference counts and drop_unstarted().
#include "talk/out_queue.hpp"

#include <catch2/catch.hpp>

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "talk/compose.hpp"
#include "talk/message.hpp"

using namespace talk;

namespace {

// What the next writev would send: every gathered byte, in order.
std::string peek_all(const out_queue& q) {
    std::vector<iovec> iov(q.entries() + 1);
    int n = q.gather(iov.data(), static_cast<int>(iov.size()), static_cast<std::size_t>(-1));
    std::string s;
    for (int i = 0; i < n; ++i) s.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
    return s;
}

// Reads everything out of q as a writer taking `step` bytes per write would.
std::string drain(out_queue& q, std::size_t step = static_cast<std::size_t>(-1)) {
    std::string s;
    while (!q.empty()) {
        iovec iov[8];
        int n = q.gather(iov, 8, step);
        REQUIRE(n > 0);
        std::size_t took = 0;
        for (int i = 0; i < n; ++i) {
            s.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
            took += iov[i].iov_len;
        }
        REQUIRE(took <= step);
        REQUIRE(took <= q.bytes());
        q.consume(took);
    }
    CHECK(q.bytes() == 0);
    CHECK(q.entries() == 0);
    return s;
}

std::size_t chunk_bytes(std::size_t cap) { return sizeof(msg_chunk) + cap; }

}  // namespace

// ---- compose and the arena ----

TEST_CASE("compose: parts are joined and a newline added", "[out_queue][compose]") {
    message_arena a;
    msg_slice m = compose(a, "From ", "1.2.3.4:5", ", ", "hello");
    CHECK(m.view() == "From 1.2.3.4:5, hello\n");
    CHECK(m.len == m.view().size());
    msg_slice e = compose(a);
    CHECK(e.view() == "\n");
}

TEST_CASE("compose: untrusted parts are sanitised", "[out_queue][compose]") {
    message_arena a;
    msg_slice m = compose(a, "From ", "p", ", ", untrusted{"a\x1b[2Jb\rc\xFF\xC2\x9B"});
    CHECK(m.view() == "From p, a^[[2Jb^Mc\\xFF<U+009B>\n");
    // Trusted parts are copied as they are.
    msg_slice t = compose(a, std::string_view("\x1b"));
    CHECK(t.view() == "\x1b\n");
}

TEST_CASE("compose: consecutive messages are contiguous in one chunk", "[out_queue][compose]") {
    message_arena a;
    msg_slice m1 = compose(a, "one");
    msg_slice m2 = compose(a, "two");
    msg_slice m3 = a.copy("three");
    CHECK(m1.chunk == m2.chunk);
    CHECK(m2.chunk == m3.chunk);
    CHECK(m2.off == m1.off + m1.len);
    CHECK(m3.off == m2.off + m2.len);
    CHECK(m3.view() == "three");
    CHECK(a.chunks() == 1);
    CHECK(a.bytes() == chunk_bytes(message_arena::default_chunk));
}

TEST_CASE("message_arena: a message bigger than a chunk gets its own", "[out_queue][arena]") {
    message_arena a;
    out_queue q;
    msg_slice small = compose(a, "small");
    q.push(small);
    std::string text(message_arena::default_chunk + 1000, 'b');
    msg_slice big = compose(a, text);
    CHECK(big.chunk != small.chunk);
    CHECK(big.off == 0);
    CHECK(big.len == text.size() + 1);
    CHECK(big.chunk->cap >= big.len);
    CHECK(big.view() == text + "\n");
    CHECK(small.view() == "small\n");  // the queue keeps the old chunk alive
    CHECK(a.chunks() == 2);
    CHECK(a.bytes() == chunk_bytes(message_arena::default_chunk) + chunk_bytes(big.chunk->cap));

    q.push(big);
    CHECK(drain(q, 4000) == "small\n" + text + "\n");
    // Only the arena's current chunk is left.
    a.recycle();  // lets go of the chunks it filled; the queues hold none
    CHECK(a.chunks() == 1);
    CHECK(a.bytes() == chunk_bytes(big.chunk->cap));
}

TEST_CASE("message_arena: a full chunk is replaced and released when unused",
          "[out_queue][arena]") {
    message_arena a(64);
    out_queue q;
    std::string expected;
    for (int i = 0; i < 20; ++i) {
        std::string line = "message number " + std::to_string(i);
        q.push(compose(a, line));
        expected += line + "\n";
    }
    CHECK(a.chunks() > 2);
    CHECK(drain(q, 7) == expected);
    a.recycle();  // lets go of the chunks it filled; the queues hold none
    CHECK(a.chunks() == 1);
    CHECK(a.bytes() == chunk_bytes(64));
}

TEST_CASE("message_arena: a message no queue took outlives chunk changes until recycle",
          "[out_queue][arena][bug]") {
    // The hub formats a message, then hands it to recipients one by one; dropping
    // one of them on the way (over the memory budget) formats its ERR line, which
    // can fill the chunk. The message must still be there for the rest of the room,
    // even though no queue holds it yet, and the old chunk must not come back as
    // the spare for the next one.
    message_arena a(64);
    msg_slice kept = compose(a, "From alice, to the whole room");
    compose(a, std::string(40, 'x'));  // does not fit: a second chunk
    compose(a, std::string(40, 'y'));  // nor this: a third, not the first one reused
    CHECK(kept.view() == "From alice, to the whole room\n");
    CHECK(a.chunks() == 3);
    out_queue q;
    q.push(kept);  // a late recipient still gets it whole
    a.recycle();   // the pass is over: only what queues hold, and the current chunk, stay
    CHECK(a.chunks() == 2);
    CHECK(drain(q) == "From alice, to the whole room\n");
    a.recycle();
    CHECK(a.chunks() == 1);
}

TEST_CASE("message_arena: recycle rewinds only a chunk no queue refers to",
          "[out_queue][arena]") {
    message_arena a;
    out_queue q;
    msg_slice m1 = compose(a, "held");
    q.push(m1);
    a.recycle();
    msg_slice m2 = compose(a, "next");
    CHECK(m2.chunk == m1.chunk);
    CHECK(m2.off == m1.off + m1.len);  // not rewound: the queue still refers to it
    CHECK(peek_all(q) == "held\n");

    q.push(m2);
    drain(q);
    a.recycle();
    msg_slice m3 = compose(a, "fresh");
    CHECK(m3.chunk == m1.chunk);
    CHECK(m3.off == 0);  // rewound
}

// ---- out_queue ----

TEST_CASE("out_queue: an empty queue", "[out_queue]") {
    out_queue q;
    CHECK(q.empty());
    CHECK(q.bytes() == 0);
    CHECK(q.entries() == 0);
    iovec iov[4];
    CHECK(q.gather(iov, 4, 1000) == 0);
    q.drop_unstarted();
    q.clear();
    CHECK(q.empty());
    // An empty slice is not queued.
    message_arena a;
    msg_slice m = a.copy("");
    q.push(m);
    CHECK(q.empty());
    CHECK(q.entries() == 0);
}

TEST_CASE("out_queue: contiguous slices of one chunk merge into one entry", "[out_queue]") {
    message_arena a;
    out_queue q;
    q.push(compose(a, "From a, one"));
    q.push(compose(a, "From b, two"));
    q.push(compose(a, "From c, three"));
    CHECK(q.entries() == 1);
    CHECK(q.bytes() == 12 + 12 + 14);
    iovec iov[4];
    REQUIRE(q.gather(iov, 4, 1000) == 1);
    CHECK(iov[0].iov_len == q.bytes());
    CHECK(drain(q) == "From a, one\nFrom b, two\nFrom c, three\n");
}

TEST_CASE("out_queue: slices that are not contiguous make separate entries", "[out_queue]") {
    message_arena a, b;  // arenas outlive the queue that refers to their chunks
    out_queue q;
    msg_slice m1 = compose(a, "one");
    msg_slice m2 = compose(a, "two");
    msg_slice m3 = compose(a, "three");

    SECTION("a gap in the same chunk") {
        q.push(m1);
        q.push(m3);
        CHECK(q.entries() == 2);
        CHECK(peek_all(q) == "one\nthree\n");
    }
    SECTION("out of order") {
        q.push(m2);
        q.push(m1);
        CHECK(q.entries() == 2);
        CHECK(peek_all(q) == "two\none\n");
    }
    SECTION("the same slice twice") {
        q.push(m1);
        q.push(m1);
        CHECK(q.entries() == 2);
        CHECK(peek_all(q) == "one\none\n");
    }
    SECTION("another arena's chunk") {
        q.push(m1);
        q.push(b.copy("other\n"));
        q.push(m2);
        CHECK(q.entries() == 3);
        CHECK(peek_all(q) == "one\nother\ntwo\n");
    }
}

TEST_CASE("out_queue: partial writes in odd sizes give back exactly the bytes pushed",
          "[out_queue]") {
    for (std::size_t step : {1, 2, 3, 5, 7, 11, 13, 64, 1000}) {
        CAPTURE(step);
        message_arena a(128);  // small chunks, so the queue crosses chunks
        message_arena b;
        out_queue q;
        std::string expected;
        for (int i = 0; i < 40; ++i) {
            std::string line = "line " + std::to_string(i) + std::string(i % 9, '.');
            q.push(i % 3 == 0 ? compose(b, line) : compose(a, line));
            expected += line + "\n";
        }
        CHECK(q.bytes() == expected.size());
        CHECK(drain(q, step) == expected);
        a.recycle();  // lets go of the chunks it filled; the queues hold none
        CHECK(a.chunks() == 1);
        b.recycle();  // lets go of the chunks it filled; the queues hold none
        CHECK(b.chunks() == 1);
    }
}

TEST_CASE("out_queue: consume in pieces while more is pushed (ring wraps and grows)",
          "[out_queue]") {
    // A model check: the queue must always gather what a plain string would hold.
    message_arena a(256);
    message_arena b(256);
    out_queue q;
    std::string model;
    std::mt19937 rng(12345);
    std::uniform_int_distribution<int> d(0, 99);
    for (int round = 0; round < 3000; ++round) {
        int what = d(rng);
        if (what < 55) {
            std::string line = "r" + std::to_string(round) + std::string(d(rng) % 17, 'x');
            message_arena& arena = d(rng) < 50 ? a : b;
            q.push(compose(arena, line));
            model += line + "\n";
        } else if (!q.empty()) {
            iovec iov[5];
            int n = q.gather(iov, 1 + d(rng) % 5, 1 + static_cast<std::size_t>(d(rng)));
            REQUIRE(n > 0);
            std::string got;
            for (int i = 0; i < n; ++i)
                got.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
            REQUIRE(got == model.substr(0, got.size()));
            std::size_t take = got.size() - (got.size() > 1 ? d(rng) % 2 : 0);  // a short write
            q.consume(take);
            model.erase(0, take);
        }
        REQUIRE(q.bytes() == model.size());
        REQUIRE(q.empty() == model.empty());
        if (round % 50 == 0) {
            REQUIRE(peek_all(q) == model);
        }
    }
    CHECK(drain(q, 3) == model);
    a.recycle();  // lets go of the chunks it filled; the queues hold none
    CHECK(a.chunks() == 1);
    b.recycle();  // lets go of the chunks it filled; the queues hold none
    CHECK(b.chunks() == 1);
}

TEST_CASE("out_queue: gather respects max_iov and max_bytes", "[out_queue]") {
    message_arena a, b;
    out_queue q;
    // Alternate arenas so that nothing merges: five entries of 4 bytes.
    for (int i = 0; i < 5; ++i) q.push(compose(i % 2 ? b : a, std::string(3, 'a' + i)));
    REQUIRE(q.entries() == 5);
    REQUIRE(q.bytes() == 20);

    iovec iov[8];
    SECTION("max_iov") {
        CHECK(q.gather(iov, 2, 1000) == 2);
        CHECK(iov[0].iov_len == 4);
        CHECK(iov[1].iov_len == 4);
        CHECK(std::string_view(static_cast<char*>(iov[1].iov_base), 4) == "bbb\n");
        CHECK(q.gather(iov, 8, 1000) == 5);
        CHECK(q.gather(iov, 0, 1000) == 0);
    }
    SECTION("max_bytes inside the first entry") {
        CHECK(q.gather(iov, 8, 3) == 1);
        CHECK(iov[0].iov_len == 3);
    }
    SECTION("max_bytes inside a later entry") {
        CHECK(q.gather(iov, 8, 10) == 3);
        CHECK(iov[0].iov_len == 4);
        CHECK(iov[1].iov_len == 4);
        CHECK(iov[2].iov_len == 2);
        CHECK(std::string_view(static_cast<char*>(iov[2].iov_base), 2) == "cc");
    }
    SECTION("max_bytes on an entry boundary") {
        CHECK(q.gather(iov, 8, 8) == 2);
        CHECK(iov[1].iov_len == 4);
    }
    SECTION("max_bytes zero") { CHECK(q.gather(iov, 8, 0) == 0); }
    SECTION("gather does not consume") {
        q.gather(iov, 8, 1000);
        CHECK(q.bytes() == 20);
        CHECK(q.entries() == 5);
    }
    SECTION("after a partial consume the first iovec starts where the write stopped") {
        q.consume(6);
        CHECK(q.entries() == 4);
        CHECK(q.gather(iov, 8, 1000) == 4);
        CHECK(std::string_view(static_cast<char*>(iov[0].iov_base), iov[0].iov_len) == "b\n");
    }
}

TEST_CASE("out_queue: references are released when every queue is done", "[out_queue]") {
    message_arena a(200);
    std::vector<out_queue> queues(5);
    std::string expected;
    for (int i = 0; i < 50; ++i) {
        msg_slice m = compose(a, "broadcast " + std::to_string(i));
        for (out_queue& q : queues) q.push(m);
        expected += m.view();
    }
    CHECK(a.chunks() > 1);
    // Queues finish at different speeds; a chunk stays while any queue needs it.
    for (std::size_t i = 0; i + 1 < queues.size(); ++i) CHECK(drain(queues[i], 3 + i) == expected);
    CHECK(a.chunks() > 1);
    CHECK(peek_all(queues.back()) == expected);
    CHECK(drain(queues.back(), 1) == expected);
    a.recycle();  // lets go of the chunks it filled; the queues hold none
    CHECK(a.chunks() == 1);
    CHECK(a.bytes() == chunk_bytes(200));
}

TEST_CASE("out_queue: clear releases references", "[out_queue]") {
    message_arena a(64);
    out_queue q;
    for (int i = 0; i < 20; ++i) q.push(compose(a, "to be dropped " + std::to_string(i)));
    CHECK(a.chunks() > 2);
    q.clear();
    CHECK(q.empty());
    CHECK(q.bytes() == 0);
    a.recycle();  // lets go of the chunks it filled; the queues hold none
    CHECK(a.chunks() == 1);
    // The queue is usable again.
    q.push(compose(a, "again"));
    CHECK(drain(q) == "again\n");
}

TEST_CASE("out_queue: arena memory does not grow over many cycles", "[out_queue][arena]") {
    message_arena a;
    out_queue q1, q2, q3;
    std::size_t first = 0, most = 0;
    for (int cycle = 0; cycle < 10000; ++cycle) {
        msg_slice m = compose(a, "From 127.0.0.1:4000, ", untrusted{"cycle " + std::to_string(cycle)});
        q1.push(m);
        q2.push(m);
        q3.push(m);
        std::string expected(m.view());
        REQUIRE(drain(q1) == expected);
        REQUIRE(drain(q2, 5) == expected);
        REQUIRE(drain(q3, 1) == expected);
        a.recycle();
        if (cycle == 0) first = a.bytes();
        if (a.bytes() > most) most = a.bytes();
    }
    CHECK(first == chunk_bytes(message_arena::default_chunk));
    CHECK(most == first);
    CHECK(a.bytes() == first);
    a.recycle();  // lets go of the chunks it filled; the queues hold none
    CHECK(a.chunks() == 1);
}

TEST_CASE("out_queue: memory stays bounded when a reader lags a little",
          "[out_queue][arena]") {
    message_arena a(1024);
    out_queue fast, slow;
    std::size_t most = 0;
    for (int cycle = 0; cycle < 10000; ++cycle) {
        msg_slice m = compose(a, "tick ", std::to_string(cycle));
        fast.push(m);
        slow.push(m);
        drain(fast);
        if (cycle % 100 == 99) drain(slow, 13);  // the slow reader catches up now and then
        a.recycle();
        if (a.bytes() > most) most = a.bytes();
    }
    // 100 messages of at most 11 bytes fit in two 1K chunks, plus the current one.
    CHECK(most <= 3 * chunk_bytes(1024));
}

// ---- drop_unstarted ----

TEST_CASE("out_queue: drop_unstarted with nothing written drops everything", "[out_queue]") {
    message_arena a(64), b;
    out_queue q;
    for (int i = 0; i < 10; ++i) q.push(compose(i % 2 ? a : b, "pending " + std::to_string(i)));
    REQUIRE(q.entries() > 1);
    q.drop_unstarted();
    CHECK(q.empty());
    CHECK(q.bytes() == 0);
    CHECK(q.entries() == 0);
    a.recycle();  // lets go of the chunks it filled; the queues hold none
    CHECK(a.chunks() == 1);
    b.recycle();  // lets go of the chunks it filled; the queues hold none
    CHECK(b.chunks() == 1);
}

TEST_CASE("out_queue: drop_unstarted keeps only the rest of a partly written line",
          "[out_queue]") {
    message_arena a(64), b(64);  // small chunks: a leaked reference would show
    out_queue q;

    SECTION("lines merged into one entry") {
        q.push(compose(a, "From a, hello"));
        q.push(compose(a, "From b, second"));
        q.push(compose(a, "From c, third"));
        REQUIRE(q.entries() == 1);
        q.consume(3);
        q.drop_unstarted();
        CHECK(q.entries() == 1);
        CHECK(q.bytes() == 11);
        CHECK(drain(q) == "m a, hello\n");
    }
    SECTION("lines in separate entries") {
        q.push(compose(a, "From a, hello"));
        q.push(compose(b, "From b, second"));
        q.push(compose(a, "From c, third"));
        REQUIRE(q.entries() == 3);
        q.consume(5);
        q.drop_unstarted();
        CHECK(drain(q) == "a, hello\n");
    }
    SECTION("a line written up to its last byte") {
        q.push(compose(b, "From a, hello"));
        q.push(compose(a, "From b, second"));
        q.consume(13);
        q.drop_unstarted();
        CHECK(drain(q) == "\n");
    }
    SECTION("the second line of a merged entry partly written") {
        q.push(compose(a, "one"));
        q.push(compose(a, "two"));
        q.push(compose(a, "three"));
        q.consume(5);  // "one\nt"
        q.drop_unstarted();
        CHECK(drain(q) == "wo\n");
    }
    SECTION("after consuming whole entries, nothing started") {
        q.push(compose(a, "one"));
        q.push(compose(b, "two"));
        q.push(compose(a, "three"));
        q.consume(4);  // exactly the first entry
        q.drop_unstarted();
        CHECK(q.empty());
    }
    SECTION("a message pushed after drop_unstarted follows the kept rest") {
        q.push(compose(a, "From a, hello"));
        q.push(compose(b, "From b, second"));
        q.consume(2);
        q.drop_unstarted();
        q.push(compose(a, "ERR too-slow"));
        CHECK(drain(q) == "om a, hello\nERR too-slow\n");
    }
    // No reference is left behind: once the arenas move on to a new chunk, only
    // that one is alive.
    CHECK(q.empty());
    for (message_arena* m : {&a, &b}) {
        m->copy(std::string(100, '.'));
        m->recycle();
        CHECK(m->chunks() == 1);
    }
}

TEST_CASE("out_queue: drop_unstarted after whole lines of a merged entry were written",
          "[out_queue][bug]") {
    // The kernel took "one\n" exactly: no line is partly written, so "two" and "three"
    // are not started and must go, like in the separate-entries case above.
    message_arena a;
    out_queue q;
    q.push(compose(a, "one"));
    q.push(compose(a, "two"));
    q.push(compose(a, "three"));
    REQUIRE(q.entries() == 1);
    q.consume(4);
    q.drop_unstarted();
    CHECK(q.empty());
    CHECK(q.bytes() == 0);
    CHECK(peek_all(q) == "");
}
