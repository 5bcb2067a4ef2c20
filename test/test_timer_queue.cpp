// timer_queue: deadline order, cancel, the wait timeout, and re-entrancy of run_due.
// Every test uses a fixed time point `t0` instead of sleeping, so nothing depends on
// how fast the machine is.
#include "talk/timer_queue.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

using namespace talk;
using namespace std::chrono_literals;
using clock_type = talk::clock;

namespace {
const clock_type::time_point t0 = clock_type::now();
}

TEST_CASE("timer_queue: empty queue has no timeout and runs nothing", "[timer_queue]") {
    timer_queue q;
    CHECK(q.size() == 0);
    CHECK(q.timeout_ms(t0) == -1);
    CHECK(q.run_due(t0 + 1h) == 0);
}

TEST_CASE("timer_queue: ids are distinct and never 0", "[timer_queue]") {
    timer_queue q;
    auto a = q.add(t0, [] {});
    auto b = q.add(t0, [] {});
    auto c = q.add_after(1s, [] {});
    CHECK(a != 0);
    CHECK(b != 0);
    CHECK(c != 0);
    CHECK(a != b);
    CHECK(b != c);
    CHECK(a != c);
    CHECK(q.size() == 3);
}

TEST_CASE("timer_queue: runs timers in deadline order, not insertion order", "[timer_queue]") {
    timer_queue q;
    std::string order;
    q.add(t0 + 30ms, [&] { order += 'c'; });
    q.add(t0 + 10ms, [&] { order += 'a'; });
    q.add(t0 + 50ms, [&] { order += 'e'; });
    q.add(t0 + 20ms, [&] { order += 'b'; });
    q.add(t0 + 40ms, [&] { order += 'd'; });
    CHECK(q.size() == 5);
    CHECK(q.run_due(t0 + 1s) == 5);
    CHECK(order == "abcde");
    CHECK(q.size() == 0);
    CHECK(q.timeout_ms(t0) == -1);
}

TEST_CASE("timer_queue: equal deadlines run in the order they were added", "[timer_queue]") {
    timer_queue q;
    std::string order;
    for (char ch = 'a'; ch <= 'f'; ++ch) q.add(t0 + 5ms, [&order, ch] { order += ch; });
    CHECK(q.run_due(t0 + 5ms) == 6);
    CHECK(order == "abcdef");
}

TEST_CASE("timer_queue: run_due runs only the timers that are due", "[timer_queue]") {
    timer_queue q;
    std::vector<int> ran;
    q.add(t0 + 10ms, [&] { ran.push_back(10); });
    q.add(t0 + 20ms, [&] { ran.push_back(20); });
    q.add(t0 + 30ms, [&] { ran.push_back(30); });

    CHECK(q.run_due(t0) == 0);
    CHECK(q.run_due(t0 + 9ms) == 0);
    CHECK(ran.empty());

    // A deadline equal to now is due.
    CHECK(q.run_due(t0 + 20ms) == 2);
    CHECK(ran == std::vector<int>{10, 20});
    CHECK(q.size() == 1);
    CHECK(q.timeout_ms(t0 + 20ms) == 10);

    CHECK(q.run_due(t0 + 29ms) == 0);
    CHECK(q.run_due(t0 + 31ms) == 1);
    CHECK(ran == std::vector<int>{10, 20, 30});
    CHECK(q.size() == 0);

    // A timer that ran does not run again.
    CHECK(q.run_due(t0 + 1h) == 0);
    CHECK(ran.size() == 3);
}

TEST_CASE("timer_queue: cancel returns true once, then false", "[timer_queue]") {
    timer_queue q;
    int runs = 0;
    auto a = q.add(t0 + 10ms, [&] { ++runs; });
    auto b = q.add(t0 + 20ms, [&] { runs += 100; });
    CHECK(q.size() == 2);

    CHECK(q.cancel(a));
    CHECK_FALSE(q.cancel(a));
    CHECK(q.size() == 1);

    // The cancelled timer no longer decides the timeout...
    CHECK(q.timeout_ms(t0) == 20);
    // ...and does not run.
    CHECK(q.run_due(t0 + 1s) == 1);
    CHECK(runs == 100);

    // A timer that already ran cannot be cancelled.
    CHECK_FALSE(q.cancel(b));
    // Nor can an id that never existed.
    CHECK_FALSE(q.cancel(0));
    CHECK_FALSE(q.cancel(12345));
    CHECK(q.size() == 0);
    CHECK(q.timeout_ms(t0) == -1);
}

TEST_CASE("timer_queue: cancelling every timer leaves no timeout", "[timer_queue]") {
    timer_queue q;
    auto a = q.add(t0 + 1ms, [] {});
    auto b = q.add(t0 + 2ms, [] {});
    CHECK(q.cancel(b));
    CHECK(q.cancel(a));
    CHECK(q.size() == 0);
    CHECK(q.timeout_ms(t0) == -1);
    CHECK(q.run_due(t0 + 1s) == 0);
}

TEST_CASE("timer_queue: timeout_ms rounds up", "[timer_queue]") {
    timer_queue q;
    SECTION("0.1 ms away gives 1, not 0") {
        q.add(t0 + 100us, [] {});
        CHECK(q.timeout_ms(t0) == 1);
    }
    SECTION("1 ns away gives 1") {
        q.add(t0 + 1ns, [] {});
        CHECK(q.timeout_ms(t0) == 1);
    }
    SECTION("exactly 5 ms gives 5") {
        q.add(t0 + 5ms, [] {});
        CHECK(q.timeout_ms(t0) == 5);
    }
    SECTION("5.001 ms gives 6") {
        q.add(t0 + 5ms + 1us, [] {});
        CHECK(q.timeout_ms(t0) == 6);
    }
    SECTION("a deadline that is now or past gives 0") {
        q.add(t0, [] {});
        CHECK(q.timeout_ms(t0) == 0);
        CHECK(q.timeout_ms(t0 + 1s) == 0);
    }
    SECTION("the nearest timer decides") {
        q.add(t0 + 500ms, [] {});
        q.add(t0 + 2500us, [] {});
        q.add(t0 + 1s, [] {});
        CHECK(q.timeout_ms(t0) == 3);
    }
}

TEST_CASE("timer_queue: a timer added by a callback waits for the next run_due", "[timer_queue]") {
    timer_queue q;
    std::vector<std::string> ran;
    q.add(t0 + 1ms, [&] {
        ran.push_back("first");
        // Already due at the `now` of this run_due, but added during it.
        q.add(t0, [&] { ran.push_back("added"); });
    });
    q.add(t0 + 2ms, [&] { ran.push_back("second"); });

    CHECK(q.run_due(t0 + 10ms) == 2);
    CHECK(ran == std::vector<std::string>{"first", "second"});
    CHECK(q.size() == 1);
    CHECK(q.timeout_ms(t0 + 10ms) == 0);  // it is due: the loop must not sleep

    CHECK(q.run_due(t0 + 10ms) == 1);
    CHECK(ran == std::vector<std::string>{"first", "second", "added"});
    CHECK(q.size() == 0);
}

TEST_CASE("timer_queue: a callback that re-arms itself runs once per run_due", "[timer_queue]") {
    timer_queue q;
    int runs = 0;
    std::function<void()> rearm = [&] {
        ++runs;
        if (runs < 100) q.add(t0, rearm);  // bounded, so a broken queue fails, not hangs
    };
    q.add(t0, rearm);
    CHECK(q.run_due(t0 + 1s) == 1);
    CHECK(runs == 1);
    CHECK(q.run_due(t0 + 1s) == 1);
    CHECK(runs == 2);
    CHECK(q.size() == 1);
}

TEST_CASE("timer_queue: a callback can cancel a later due timer", "[timer_queue]") {
    timer_queue q;
    std::string order;
    timer_queue::id victim = 0;
    q.add(t0 + 1ms, [&] {
        order += 'a';
        CHECK(q.cancel(victim));
    });
    victim = q.add(t0 + 2ms, [&] { order += 'b'; });
    q.add(t0 + 3ms, [&] { order += 'c'; });
    CHECK(q.run_due(t0 + 1s) == 2);
    CHECK(order == "ac");
    CHECK(q.size() == 0);
}

TEST_CASE("timer_queue: add_after is relative to the clock", "[timer_queue]") {
    timer_queue q;
    auto before = clock_type::now();
    q.add_after(1h, [] {});
    int ms = q.timeout_ms(before);
    // Between one hour and one hour plus generous scheduling slack.
    CHECK(ms >= 3600 * 1000);
    CHECK(ms <= 3600 * 1000 + 10 * 1000);
    CHECK(q.run_due(clock_type::now()) == 0);
}
