// The soak: `make soak` runs talkd for SOAK_SECONDS (default 600) under everything
// at once, then checks that it ends where it started.
//
//   churn      two threads connect, pick a nick, join a room, talk, quit or reset
//   flood      one client sends as fast as it can (flood control slows it)
//   sleepers   clients that never read, one every few seconds (they get dropped)
//   pair       one client sends numbered lines at a steady rate; another must
//              receive every one, in order, whatever else happens
//
// talkd's RSS and descriptor count are sampled every few seconds. At the end, with
// every client gone, the descriptors are back to the count at start, RSS is back
// near its level after warm-up, and the idle server uses no CPU.
#include "helpers.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace talk::testing;
using clock_type = std::chrono::steady_clock;

namespace {

long rss_kib(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string key;
    long value = -1;
    while (f >> key) {
        if (key == "VmRSS:") {
            f >> value;
            break;
        }
        std::getline(f, key);
    }
    return value;
}

int fd_count(pid_t pid) {
    int n = 0;
    if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
    }
    return n;
}

// Reads whatever has arrived without waiting.
void discard_available(int fd) {
    char buf[65536];
    while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
}

void reset_close(line_client& c) {
    linger lg{1, 0};  // close with a reset, as a crashed client would
    ::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    c.close();
}

struct sample {
    double t;
    long rss;
    int fds;
};

}  // namespace

TEST_CASE("soak: churn, floods, slow readers and an ordered pair", "[.soak]") {
    const char* env = std::getenv("SOAK_SECONDS");
    const int seconds = env ? std::atoi(env) : 600;
    const char* be = std::getenv("SOAK_BACKEND");
    const std::string backend = be ? be : "epoll";
    INFO("backend " << backend << ", " << seconds << " s");

    talk_server srv({"--backend=" + backend, "--max-queue=256K", "--soft-queue=64K", "--soft-queue-time=2"},
                    stdin_kind::dev_null);
    const int base_fds = fd_count(srv.pid());
    const auto start = clock_type::now();
    const auto stop_at = start + std::chrono::seconds(seconds);
    std::atomic<bool> stop{false};
    std::atomic<long> cycles{0}, sleepers{0}, flood_lines{0};
    std::atomic<int> order_errors{0};

    // Console lines must be read, or talkd's console backlog just drops them.
    std::atomic<bool> console_stop{false};
    std::thread console([&] {
        while (!console_stop) srv.console().drain(200ms);
    });

    auto churn = [&](unsigned seed) {
        std::mt19937 rng(seed);
        while (!stop) {
            try {
                line_client c(srv.port());
                c.next_starting("*** Welcome");
                std::string nick = "u" + std::to_string(rng() % 100000);
                c.send_line("/nick " + nick);
                c.send_line("/join room" + std::to_string(rng() % 5));
                c.send_line("hello from " + nick);
                if (rng() % 3 == 0) {
                    reset_close(c);
                } else {
                    c.send_line("/quit bye");
                    c.closed_by_server(2000ms);
                }
                ++cycles;
            } catch (const std::exception&) {
                // server full or a refused connect under load: try again
            }
        }
    };

    auto flood = [&] {
        line_client f(srv.port());
        std::string burst;
        for (int i = 0; i < 100; ++i) burst += "flooding line " + std::to_string(i) + "\n";
        while (!stop) {
            pollfd p{f.fd(), POLLOUT, 0};
            if (::poll(&p, 1, 100) > 0 && ::send(f.fd(), burst.data(), burst.size(), MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
                flood_lines += 100;
            discard_available(f.fd());
        }
    };

    auto slow_readers = [&] {
        std::vector<std::pair<std::unique_ptr<line_client>, clock_type::time_point>> held;
        while (!stop) {
            try {
                held.emplace_back(std::make_unique<line_client>(srv.port()), clock_type::now());
                int small = 4096;
                ::setsockopt(held.back().first->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
                ++sleepers;
            } catch (const std::exception&) {
            }
            for (auto it = held.begin(); it != held.end();)  // let go after 20 s either way
                it = clock_type::now() - it->second > 20s ? held.erase(it) : it + 1;
            for (int i = 0; i < 30 && !stop; ++i) std::this_thread::sleep_for(100ms);
        }
    };

    // The ordered pair: every numbered line arrives, in order.
    line_client sender(srv.port()), receiver(srv.port());
    REQUIRE(receiver.next_starting("*** Welcome"));
    REQUIRE(sender.next_starting("*** Welcome"));
    sender.send_line("/nick pairsender");
    receiver.send_line("/nick pairreceiver");
    std::atomic<long> sent{0};
    std::thread pair_sender([&] {
        while (!stop) {
            sender.send_line("seq " + std::to_string(sent.load()));
            ++sent;
            discard_available(sender.fd());
            std::this_thread::sleep_for(10ms);  // a steady 100 lines a second
        }
    });
    long received = 0;
    std::thread pair_receiver([&] {
        const std::string prefix = "From pairsender, seq ";
        while (!stop || received < sent) {
            auto l = receiver.in().until([&](const std::string& s) { return s.rfind(prefix, 0) == 0; }, 3000ms);
            if (!l) break;
            if (std::stol(l->substr(prefix.size())) != received) ++order_errors;
            ++received;
        }
    });

    std::vector<std::thread> load;
    load.emplace_back(churn, 1u);
    load.emplace_back(churn, 2u);
    load.emplace_back(flood);
    load.emplace_back(slow_readers);

    std::vector<sample> samples;
    while (clock_type::now() < stop_at) {
        std::this_thread::sleep_for(std::min<clock_type::duration>(5s, stop_at - clock_type::now()));
        samples.push_back({std::chrono::duration<double>(clock_type::now() - start).count(),
                           rss_kib(srv.pid()), fd_count(srv.pid())});
        REQUIRE(srv.running());
    }
    stop = true;
    for (auto& t : load) t.join();
    pair_sender.join();
    pair_receiver.join();
    sender.close();
    receiver.close();

    // Every client is gone: wait until the server has closed them all.
    auto settled = clock_type::now() + 15s;
    while (fd_count(srv.pid()) > base_fds && clock_type::now() < settled) std::this_thread::sleep_for(100ms);
    console_stop = true;
    console.join();

    for (const sample& s : samples) UNSCOPED_INFO(s.t << " s: rss " << s.rss << " KiB, " << s.fds << " fds");
    INFO("churn cycles " << cycles << ", sleepers " << sleepers << ", flood lines sent " << flood_lines
                         << ", ordered lines " << received << " of " << sent);
    CHECK(order_errors == 0);
    CHECK(received == sent);
    CHECK(cycles > seconds);  // the churn kept going
    CHECK(fd_count(srv.pid()) == base_fds);

    // RSS: after warm-up (the first fifth), the growth to the end stays small.
    REQUIRE(samples.size() >= 2);
    long warm = samples[samples.size() / 5].rss, peak = 0;
    for (const sample& s : samples) peak = std::max(peak, s.rss);
    long end_rss = rss_kib(srv.pid());
    CHECK(end_rss <= warm + 8 * 1024);
    CHECK(peak <= warm + 64 * 1024);  // the queues are bounded

    long before = srv.cpu_ticks();
    srv.console().drain(1000ms);
    CHECK(srv.cpu_ticks() - before <= 2);  // idle again: no spin
}
