// The backends (select, poll, epoll) against the one contract they share, over
// socketpairs; then what is particular to each; then event_loop<B> on each.
#include "talk/backend/backends.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "talk/backend/contract.hpp"
#include "talk/backend/poll_backend.hpp"
#include "talk/backend/select_backend.hpp"
#include "talk/event_loop.hpp"
#if TALK_HAVE_EPOLL
#include "talk/backend/epoll_backend.hpp"
#endif

using namespace talk;
using namespace std::chrono_literals;

namespace {

// A connected pair of sockets, closed on destruction. `mine` is the end the backend
// watches, `peer` the end the test writes to or shuts down.
struct sock_pair {
    int mine = -1;
    int peer = -1;
    sock_pair() {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        mine = fds[0];
        peer = fds[1];
    }
    ~sock_pair() {
        if (mine >= 0) ::close(mine);
        if (peer >= 0) ::close(peer);
    }
    sock_pair(const sock_pair&) = delete;
    sock_pair& operator=(const sock_pair&) = delete;

    void peer_writes(const char* s = "x") const {
        REQUIRE(::send(peer, s, std::char_traits<char>::length(s), MSG_NOSIGNAL) > 0);
    }
    void drain_mine() const {
        char buf[256];
        REQUIRE(::recv(mine, buf, sizeof buf, MSG_DONTWAIT) > 0);
    }
    void close_peer() {
        ::close(peer);
        peer = -1;
    }
};

template <class B>
std::vector<ready_event> wait_for(B& b, int timeout_ms, std::size_t room = 64) {
    std::vector<ready_event> out(room);
    int n = b.wait(std::span<ready_event>(out), timeout_ms);
    REQUIRE(n >= 0);
    REQUIRE(static_cast<std::size_t>(n) <= room);
    out.resize(static_cast<std::size_t>(n));
    return out;
}

// The bits reported for fd (0 when it was not reported); fails if reported twice.
unsigned bits_for(const std::vector<ready_event>& events, int fd) {
    unsigned mask = 0;
    int seen = 0;
    for (const ready_event& e : events) {
        if (e.fd == fd) {
            mask = e.mask;
            ++seen;
        }
    }
    CHECK(seen <= 1);
    return mask;
}

// A wait that is expected to find something at once; a long timeout only so that a
// slow machine does not fail the test.
constexpr int soon_ms = 2000;

}  // namespace

#if TALK_HAVE_EPOLL
#define TALK_TEST_BACKENDS select_backend, poll_backend, epoll_backend
#else
#define TALK_TEST_BACKENDS select_backend, poll_backend
#endif

TEMPLATE_TEST_CASE("backend conformance", "[backend]", TALK_TEST_BACKENDS) {
    using B = TestType;
    B b;
    sock_pair s;
    CHECK(b.can_watch(s.mine));
    CHECK_FALSE(b.can_watch(-1));
    CHECK(b.watched() == 0);

    SECTION("nothing ready: wait times out after about the timeout") {
        REQUIRE(b.update(s.mine, io_none, io_read) == 0);
        auto start = std::chrono::steady_clock::now();
        auto events = wait_for(b, 30);
        auto took = std::chrono::steady_clock::now() - start;
        CHECK(events.empty());
        CHECK(took >= 29ms);
        CHECK(took < 1000ms);
    }
    SECTION("a zero timeout just looks") {
        REQUIRE(b.update(s.mine, io_none, io_read) == 0);
        auto start = std::chrono::steady_clock::now();
        CHECK(wait_for(b, 0).empty());
        CHECK(std::chrono::steady_clock::now() - start < 500ms);
    }
    SECTION("writable when watching io_write") {
        REQUIRE(b.update(s.mine, io_none, io_write) == 0);
        auto events = wait_for(b, soon_ms);
        REQUIRE(events.size() == 1);
        CHECK(events[0].fd == s.mine);
        CHECK(events[0].mask == io_write);
    }
    SECTION("readable after the peer writes, and not before") {
        REQUIRE(b.update(s.mine, io_none, io_read) == 0);
        CHECK(wait_for(b, 0).empty());
        s.peer_writes("hello");
        auto events = wait_for(b, soon_ms);
        REQUIRE(events.size() == 1);
        CHECK(events[0].fd == s.mine);
        CHECK(events[0].mask == io_read);
        // Level-triggered: still ready until read.
        CHECK(bits_for(wait_for(b, soon_ms), s.mine) == io_read);
        s.drain_mine();
        CHECK(wait_for(b, 0).empty());
    }
    SECTION("a wait with no timeout returns when something is ready") {
        REQUIRE(b.update(s.mine, io_none, io_read | io_write) == 0);
        auto events = wait_for(b, -1);
        REQUIRE(events.size() == 1);
        CHECK(events[0].mask == io_write);
        s.peer_writes();
        events = wait_for(b, -1);
        REQUIRE(events.size() == 1);
        CHECK(events[0].mask == (io_read | io_write));
    }
    SECTION("changing the mask from read to write and back") {
        REQUIRE(b.update(s.mine, io_none, io_read) == 0);
        CHECK(wait_for(b, 0).empty());  // not readable; writable, but not asked

        REQUIRE(b.update(s.mine, io_read, io_write) == 0);
        CHECK(b.watched() == 1);
        CHECK(bits_for(wait_for(b, soon_ms), s.mine) == io_write);

        s.peer_writes();
        // Readable now, but only io_write is watched.
        CHECK(bits_for(wait_for(b, soon_ms), s.mine) == io_write);

        REQUIRE(b.update(s.mine, io_write, io_read) == 0);
        CHECK(b.watched() == 1);
        CHECK(bits_for(wait_for(b, soon_ms), s.mine) == io_read);

        s.drain_mine();
        CHECK(wait_for(b, 0).empty());
    }
    SECTION("forgetting a descriptor: no more events") {
        REQUIRE(b.update(s.mine, io_none, io_read | io_write) == 0);
        s.peer_writes();
        CHECK(bits_for(wait_for(b, soon_ms), s.mine) == (io_read | io_write));
        REQUIRE(b.update(s.mine, io_read | io_write, io_none) == 0);
        CHECK(b.watched() == 0);
        CHECK(wait_for(b, 0).empty());
        // And it can be watched again.
        REQUIRE(b.update(s.mine, io_none, io_read) == 0);
        CHECK(b.watched() == 1);
        CHECK(bits_for(wait_for(b, soon_ms), s.mine) == io_read);
    }
    SECTION("EOF after the peer's shutdown(SHUT_WR) is readable") {
        REQUIRE(b.update(s.mine, io_none, io_read) == 0);
        CHECK(wait_for(b, 0).empty());
        REQUIRE(::shutdown(s.peer, SHUT_WR) == 0);
        auto events = wait_for(b, soon_ms);
        REQUIRE(events.size() == 1);
        CHECK(events[0].fd == s.mine);
        CHECK((events[0].mask & io_read) != 0);
        char c;
        CHECK(::recv(s.mine, &c, 1, MSG_DONTWAIT) == 0);
    }
    SECTION("the peer closing is readable") {
        REQUIRE(b.update(s.mine, io_none, io_read) == 0);
        s.close_peer();
        auto events = wait_for(b, soon_ms);
        REQUIRE(events.size() == 1);
        CHECK(events[0].fd == s.mine);
        CHECK((events[0].mask & io_read) != 0);
    }
    SECTION("watched() counts descriptors, not updates") {
        sock_pair s2, s3;
        REQUIRE(b.update(s.mine, io_none, io_read) == 0);
        REQUIRE(b.update(s2.mine, io_none, io_write) == 0);
        REQUIRE(b.update(s3.mine, io_none, io_read | io_write) == 0);
        CHECK(b.watched() == 3);
        REQUIRE(b.update(s2.mine, io_write, io_read) == 0);
        REQUIRE(b.update(s3.mine, io_read | io_write, io_write) == 0);
        CHECK(b.watched() == 3);
        REQUIRE(b.update(s2.mine, io_read, io_none) == 0);
        CHECK(b.watched() == 2);
        REQUIRE(b.update(s.mine, io_read, io_none) == 0);
        REQUIRE(b.update(s3.mine, io_write, io_none) == 0);
        CHECK(b.watched() == 0);
    }
    SECTION("several descriptors ready at once are all reported") {
        sock_pair s2, s3, idle;
        for (const sock_pair* p : {&s, &s2, &s3, &idle}) REQUIRE(b.update(p->mine, io_none, io_read) == 0);
        s.peer_writes();
        s2.peer_writes();
        s3.peer_writes();
        auto events = wait_for(b, soon_ms);
        CHECK(events.size() == 3);
        CHECK(bits_for(events, s.mine) == io_read);
        CHECK(bits_for(events, s2.mine) == io_read);
        CHECK(bits_for(events, s3.mine) == io_read);
        CHECK(bits_for(events, idle.mine) == 0);
    }
    SECTION("no more events than out has room for") {
        sock_pair s2, s3;
        for (const sock_pair* p : {&s, &s2, &s3}) REQUIRE(b.update(p->mine, io_none, io_write) == 0);
        auto events = wait_for(b, soon_ms, 2);
        CHECK(events.size() == 2);
        for (const ready_event& e : events) CHECK(e.mask == io_write);
        if (events.size() == 2) CHECK(events[0].fd != events[1].fd);
    }
    SECTION("forgetting the middle of five: the others keep their own descriptors") {
        sock_pair p[5];
        for (auto& x : p) REQUIRE(b.update(x.mine, io_none, io_read) == 0);
        REQUIRE(b.update(p[2].mine, io_read, io_none) == 0);
        CHECK(b.watched() == 4);

        p[4].peer_writes();
        auto events = wait_for(b, soon_ms);
        REQUIRE(events.size() == 1);
        CHECK(events[0].fd == p[4].mine);
        CHECK(events[0].mask == io_read);

        // The moved entry can still be changed and forgotten by its own descriptor.
        REQUIRE(b.update(p[4].mine, io_read, io_write) == 0);
        events = wait_for(b, soon_ms);
        REQUIRE(events.size() == 1);
        CHECK(events[0].fd == p[4].mine);
        CHECK(events[0].mask == io_write);
        REQUIRE(b.update(p[4].mine, io_write, io_none) == 0);
        CHECK(b.watched() == 3);
        CHECK(wait_for(b, 0).empty());

        // The forgotten descriptor is not reported even when ready.
        p[2].peer_writes();
        CHECK(wait_for(b, 0).empty());

        // The rest still work.
        p[0].peer_writes();
        p[3].peer_writes();
        events = wait_for(b, soon_ms);
        CHECK(events.size() == 2);
        CHECK(bits_for(events, p[0].mine) == io_read);
        CHECK(bits_for(events, p[3].mine) == io_read);
    }
    SECTION("forgetting the highest descriptor keeps a lower write-only one") {
        sock_pair hi;
        REQUIRE(hi.mine > s.mine);
        REQUIRE(b.update(s.mine, io_none, io_write) == 0);
        REQUIRE(b.update(hi.mine, io_none, io_read) == 0);
        REQUIRE(b.update(hi.mine, io_read, io_none) == 0);
        auto events = wait_for(b, soon_ms);
        REQUIRE(events.size() == 1);
        CHECK(events[0].fd == s.mine);
        CHECK(events[0].mask == io_write);
    }
    SECTION("forgetting the highest descriptor keeps the lower ones") {
        sock_pair hi;
        REQUIRE(hi.mine > s.mine);
        REQUIRE(b.update(s.mine, io_none, io_read) == 0);
        REQUIRE(b.update(hi.mine, io_none, io_read) == 0);
        REQUIRE(b.update(hi.mine, io_read, io_none) == 0);
        s.peer_writes();
        hi.peer_writes();
        auto events = wait_for(b, soon_ms);
        REQUIRE(events.size() == 1);
        CHECK(events[0].fd == s.mine);
    }
}

// ---- what is particular to one backend ----

TEST_CASE("select_backend: descriptors at or above FD_SETSIZE are refused", "[backend][select]") {
    select_backend b;
    CHECK(b.can_watch(0));
    CHECK(b.can_watch(FD_SETSIZE - 1));
    CHECK_FALSE(b.can_watch(FD_SETSIZE));
    CHECK_FALSE(b.can_watch(FD_SETSIZE + 100));
    CHECK_FALSE(b.can_watch(-1));
    CHECK(b.update(-1, io_none, io_read) != 0);
    CHECK(b.watched() == 0);
}

TEST_CASE("select_backend: update of a real descriptor >= FD_SETSIZE fails, set untouched",
          "[backend][select]") {
    const int high = FD_SETSIZE + 76;  // 1100 with the usual FD_SETSIZE of 1024
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
    bool raised = false;
    if (old.rlim_cur <= static_cast<rlim_t>(high)) {
        rlimit want = old;
        want.rlim_cur = static_cast<rlim_t>(high) + 1;
        if (old.rlim_max != RLIM_INFINITY && old.rlim_max < want.rlim_cur) {
            WARN("RLIMIT_NOFILE hard limit " << old.rlim_max << " is below " << high + 1
                                             << ": skipped");
            return;
        }
        if (::setrlimit(RLIMIT_NOFILE, &want) != 0) {
            WARN("cannot raise RLIMIT_NOFILE: skipped");
            return;
        }
        raised = true;
    }
    struct restore {
        rlimit lim;
        bool on;
        ~restore() {
            if (on) ::setrlimit(RLIMIT_NOFILE, &lim);
        }
    } restore_limit{old, raised};

    sock_pair s;
    REQUIRE(::dup2(s.mine, high) == high);
    struct closer {
        int fd;
        ~closer() { ::close(fd); }
    } close_high{high};

    select_backend b;
    REQUIRE(b.update(s.mine, io_none, io_read) == 0);
    CHECK_FALSE(b.can_watch(high));
    CHECK(b.update(high, io_none, io_read) != 0);
    CHECK(b.update(high, io_none, io_read | io_write) != 0);
    CHECK(b.watched() == 1);

    // The watched set is as it was: only s.mine, and only when it is readable.
    CHECK(wait_for(b, 0).empty());
    s.peer_writes();
    auto events = wait_for(b, soon_ms);
    REQUIRE(events.size() == 1);
    CHECK(events[0].fd == s.mine);
    CHECK(events[0].mask == io_read);
}

#if TALK_HAVE_EPOLL
TEST_CASE("epoll_backend: a regular file is refused with EPERM", "[backend][epoll]") {
    char path[] = "/tmp/talk-test-epoll-XXXXXX";
    int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::unlink(path);
    struct closer {
        int fd;
        ~closer() { ::close(fd); }
    } close_fd{fd};

    epoll_backend b;
    CHECK(b.update(fd, io_none, io_read) == EPERM);
    CHECK(b.watched() == 0);
    CHECK(wait_for(b, 0).empty());

    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(null_fd >= 0);
    CHECK(b.update(null_fd, io_none, io_read) == EPERM);
    ::close(null_fd);
    CHECK(b.watched() == 0);
}
#endif

TEST_CASE("backends: with_backend and available_backends agree", "[backend]") {
    std::string names = available_backends();
    for (std::string_view name : {"select", "poll", "epoll"}) {
        CAPTURE(name);
        std::string_view seen;
        bool found = with_backend(name, [&](auto tag) { seen = decltype(tag)::type::name; });
        CHECK(found == (names.find(name) != std::string::npos));
        if (found) CHECK(seen == name);
    }
    CHECK_FALSE(with_backend("bogus", [](auto) {}));
    CHECK(names.find(default_backend) == 0);  // the best one comes first
}

// ---- event_loop<B> ----

TEMPLATE_TEST_CASE("event_loop", "[backend][event_loop]", TALK_TEST_BACKENDS) {
    using B = TestType;
    event_loop<B> loop;
    sock_pair a, c;

    SECTION("watch sets and interest reports the mask") {
        CHECK(loop.interest(a.mine) == io_none);
        CHECK(loop.interest(-1) == io_none);
        CHECK(loop.interest(100000) == io_none);
        CHECK(loop.watch(a.mine, io_read) == 0);
        CHECK(loop.interest(a.mine) == io_read);
        CHECK(loop.watched() == 1);
        CHECK(loop.watch(a.mine, io_read | io_write) == 0);
        CHECK(loop.interest(a.mine) == (io_read | io_write));
        CHECK(loop.watch(a.mine, io_read | io_write) == 0);  // no change
        CHECK(loop.watched() == 1);
        CHECK(loop.watch(c.mine, io_write) == 0);
        CHECK(loop.watched() == 2);
        CHECK(loop.watch(a.mine, io_none) == 0);
        CHECK(loop.interest(a.mine) == io_none);
        CHECK(loop.watched() == 1);
    }
    SECTION("a refused watch keeps the previous interest") {
        CHECK(loop.watch(-1, io_read) != 0);
        CHECK(loop.interest(-1) == io_none);
        CHECK(loop.watched() == 0);
    }
    SECTION("run_once dispatches ready descriptors with their bits") {
        REQUIRE(loop.watch(a.mine, io_read) == 0);
        REQUIRE(loop.watch(c.mine, io_read | io_write) == 0);
        a.peer_writes();
        std::vector<ready_event> got;
        int woke = 0;
        const wait_info& info = loop.run_once(
            [&](int fd, unsigned mask) { got.push_back({fd, mask}); }, soon_ms,
            [&](const wait_info& w) {
                ++woke;
                CHECK(w.ready == 2);
            });
        CHECK(woke == 1);
        CHECK(info.ready == 2);
        CHECK(info.watched == 2);
        CHECK(info.error == 0);
        CHECK(got.size() == 2);
        CHECK(bits_for(got, a.mine) == io_read);
        CHECK(bits_for(got, c.mine) == io_write);
        CHECK(&loop.last_wait() == &info);
    }
    SECTION("a handler that forgets another descriptor stops its event in the same pass") {
        REQUIRE(loop.watch(a.mine, io_read) == 0);
        REQUIRE(loop.watch(c.mine, io_read) == 0);
        a.peer_writes();
        c.peer_writes();
        std::vector<int> handled;
        const wait_info& info = loop.run_once(
            [&](int fd, unsigned) {
                handled.push_back(fd);
                int other = fd == a.mine ? c.mine : a.mine;
                loop.watch(other, io_none);
            },
            soon_ms);
        CHECK(info.ready == 2);  // both were ready...
        CHECK(handled.size() == 1);  // ...but the second was forgotten by the first
    }
    SECTION("a handler that narrows another descriptor's interest cuts its bits") {
        REQUIRE(loop.watch(a.mine, io_read | io_write) == 0);
        REQUIRE(loop.watch(c.mine, io_read | io_write) == 0);
        a.peer_writes();
        c.peer_writes();
        std::vector<ready_event> got;
        loop.run_once(
            [&](int fd, unsigned mask) {
                got.push_back({fd, mask});
                if (got.size() == 1) loop.watch(fd == a.mine ? c.mine : a.mine, io_write);
            },
            soon_ms);
        REQUIRE(got.size() == 2);
        CHECK(got[0].mask == (io_read | io_write));
        CHECK(got[1].mask == io_write);
    }
    SECTION("timers fire through run_once, the wait bounded by the nearest timer") {
        REQUIRE(loop.watch(a.mine, io_read) == 0);  // never ready
        int fired = 0;
        auto start = std::chrono::steady_clock::now();
        loop.timers().add_after(40ms, [&] { ++fired; });
        loop.timers().add_after(1h, [&] { fired += 100; });
        int handled = 0;
        const wait_info& first = loop.run_once([&](int, unsigned) { ++handled; });
        CHECK(first.timeout_ms > 0);
        CHECK(first.timeout_ms <= 40);
        // The wait ends at or after the deadline, so one pass should do; allow a
        // second for a wake-up the kernel rounds differently.
        if (fired == 0) loop.run_once([&](int, unsigned) { ++handled; });
        auto took = std::chrono::steady_clock::now() - start;
        CHECK(fired == 1);
        CHECK(handled == 0);
        CHECK(took >= 40ms);
        CHECK(took < 1000ms);
        CHECK(loop.timers().size() == 1);
    }
    SECTION("a larger max_wait_ms does not lengthen the wait past the nearest timer") {
        loop.timers().add_after(20ms, [] {});
        const wait_info& info = loop.run_once([](int, unsigned) {}, 500);
        CHECK(info.timeout_ms > 0);
        CHECK(info.timeout_ms <= 20);
    }
    SECTION("max_wait_ms caps the wait below the nearest timer") {
        loop.timers().add_after(1h, [] {});
        auto start = std::chrono::steady_clock::now();
        const wait_info& info = loop.run_once([](int, unsigned) {}, 0);
        CHECK(info.timeout_ms == 0);
        CHECK(info.ready == 0);
        CHECK(std::chrono::steady_clock::now() - start < 500ms);
    }
    SECTION("a due timer makes the wait not block") {
        REQUIRE(loop.watch(a.mine, io_read) == 0);
        int fired = 0;
        loop.timers().add(talk::clock::now(), [&] { ++fired; });
        const wait_info& info = loop.run_once([](int, unsigned) {});
        CHECK(info.timeout_ms == 0);
        CHECK(fired == 1);
    }
}
