// talk: the blocking reference client. See talk(1).
//
// This is the other model on purpose: the lecture's Assignment 6 client, done with
// care. One blocking socket and two threads, each of which may block as long as it
// likes because it has nothing else to do:
//
//   sender    stdin  --getline--> socket   (the socket's only writer)
//   receiver  socket --recv-----> stdout   (the socket's only reader)
//   main      waits for either to finish, then decides when to exit
//
// The server's lines already say who they are from ("From 127.0.0.1:9998, ..."), so
// they are printed as received.
#include <getopt.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "talk/net.hpp"
#include "talk/version.hpp"

namespace {

using namespace std::chrono_literals;

// After stdin ends, how long to wait for the server to finish sending.
constexpr auto eof_grace = 2s;

// What the threads tell main. Heap-allocated and never freed: the thread still
// blocked in read() or recv() when main exits must not find it destroyed.
struct shared_state {
    std::mutex mu;
    std::condition_variable changed;
    bool sender_done = false;    // stdin ended (or the socket refused more)
    bool receiver_done = false;  // the server closed the connection
    std::string receiver_error;  // why, if it was not a clean close
};

bool send_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        n -= static_cast<std::size_t>(k);
    }
    return true;
}

void sender(int fd, shared_state* st) {
    std::string line;
    bool ok = true;
    while (ok && std::getline(std::cin, line)) {
        line.push_back('\n');
        ok = send_all(fd, line.data(), line.size());
    }
    {
        // Told before the shutdown: the server's close answers it, and main must
        // not take that close for the server hanging up on us.
        std::lock_guard lock(st->mu);
        st->sender_done = true;
        st->changed.notify_all();
    }
    if (ok) ::shutdown(fd, SHUT_WR);  // "no more from me"; the server finishes and closes
}

void receiver(int fd, shared_state* st) {
    char buf[16 * 1024];
    std::string error;
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) error = std::strerror(errno);
        if (n <= 0) break;
        for (ssize_t off = 0; off < n;) {  // stdout may take it in pieces
            ssize_t k = ::write(STDOUT_FILENO, buf + off, static_cast<std::size_t>(n - off));
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) break;  // stdout is gone: nothing more to show
            off += k;
        }
    }
    std::lock_guard lock(st->mu);
    st->receiver_done = true;
    st->receiver_error = error;
    st->changed.notify_all();
}

const char* usage_hint = "try 'talk --help'";

int usage(const std::string& msg) {
    std::fprintf(stderr, "talk: %s; %s\n", msg.c_str(), usage_hint);
    return EX_USAGE;
}

}  // namespace

int main(int argc, char** argv) {
    static const option longopts[] = {
        {"host", required_argument, nullptr, 'i'},
        {"port", required_argument, nullptr, 'p'},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0},
    };
    std::string host = "localhost", port;
    opterr = 0;
    int ch;
    while ((ch = ::getopt_long(argc, argv, ":i:p:hV", longopts, nullptr)) != -1) {
        switch (ch) {
            case 'i': host = optarg; break;
            case 'p': port = optarg; break;
            case 'h':
                std::fputs(
                    "usage: talk [-i HOST] -p PORT\n"
                    "Talk to a talkd server: lines typed here go to it, lines from it are printed.\n"
                    "\n"
                    "  -i, --host HOST   server name or address (default localhost)\n"
                    "  -p, --port PORT   server port (required)\n"
                    "  -h, --help        show this help\n"
                    "  -V, --version     show the version\n"
                    "\n"
                    "End of input (Ctrl-D) sends what is left and waits for the server to close.\n"
                    "See talk(1) and talk(7).\n",
                    stdout);
                return 0;
            case 'V': std::printf("talk %s\n", talk::version); return 0;
            case ':': return usage(fmt::format("option '{}' needs a value", argv[optind - 1]));
            default: return usage(fmt::format("unknown option '{}'", argv[optind - 1]));
        }
    }
    if (optind < argc) return usage(fmt::format("unexpected argument '{}'", argv[optind]));
    if (port.empty()) return usage("missing -p PORT");
    if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
        std::stoi(port) < 1 || std::stoi(port) > 65535)
        return usage(fmt::format("bad port '{}' (1-65535)", port));

    std::signal(SIGPIPE, SIG_IGN);  // a write to a closed connection is an error, not death
    std::string error;
    int exit_code = 0;
    int fd = talk::net::connect_tcp(host, port, error, exit_code);
    if (fd < 0) {
        std::fprintf(stderr, "talk: %s\n", error.c_str());
        return exit_code;
    }

    auto* st = new shared_state;
    std::thread(receiver, fd, st).detach();
    std::thread(sender, fd, st).detach();

    std::unique_lock lock(st->mu);
    st->changed.wait(lock, [&] { return st->sender_done || st->receiver_done; });
    if (!st->receiver_done) {  // our input ended first: give the server time to finish
        st->changed.wait_for(lock, eof_grace, [&] { return st->receiver_done; });
    } else if (!st->sender_done) {  // the server closed first, while we wait for input
        if (st->receiver_error.empty())
            std::fputs("talk: connection closed by server\n", stderr);
        else
            std::fprintf(stderr, "talk: connection lost: %s\n", st->receiver_error.c_str());
    }
    lock.unlock();
    std::fflush(stdout);
    std::_Exit(0);  // the other thread may still sit in read() or recv(): do not wait for it
}
