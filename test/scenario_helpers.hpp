// Helpers of the reliability scenarios (test/test_scenarios.cpp) that helpers.hpp
// does not have: sockets set up before connect (a small receive buffer, a reset on
// close), talkd started through another program (prlimit) with its start-up log
// kept, and what /proc says about a process (memory, descriptors, stopped or not).
//
//     scenario_server srv({"--backend=poll"}, {"/usr/bin/prlimit", "--nofile=64:64", "--"});
//     sock_client sleeper(srv.port(), 4096);   // SO_RCVBUF 4096, set before connect
//     long kib = rss_kib(srv.pid());
#pragma once

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "helpers.hpp"

namespace talk::testing::scenario {

using steady = std::chrono::steady_clock;

inline double seconds_since(steady::time_point t) {
    return std::chrono::duration<double>(steady::now() - t).count();
}

inline duration ms_until(steady::time_point t) {
    auto left = std::chrono::duration_cast<duration>(t - steady::now());
    return left < 0ms ? 0ms : left;
}

// ---- /proc ----

// VmRSS of a process in KiB, or -1.
inline long rss_kib(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

// Descriptors a process has open, or -1.
inline int fd_count(pid_t pid) {
    DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (!d) return -1;
    int n = 0;
    while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n;
}

// Descriptors below `limit` a process has open, or -1.
inline int fd_count_below(pid_t pid, int limit) {
    DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (!d) return -1;
    int n = 0;
    while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.' && std::atoi(e->d_name) < limit) ++n;
    ::closedir(d);
    return n;
}

// The state letter of /proc/PID/stat: R, S, T (stopped), Z ...; '?' if gone.
inline char proc_state(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto paren = all.rfind(')');
    return paren == std::string::npos || paren + 2 >= all.size() ? '?' : all[paren + 2];
}

// SIGSTOP; true once the process is seen stopped (its state polled, with a deadline).
inline bool stop_process(pid_t pid) {
    ::kill(pid, SIGSTOP);
    auto deadline = steady::now() + 2s;
    while (steady::now() < deadline) {
        if (proc_state(pid) == 'T') return true;
        std::this_thread::sleep_for(1ms);
    }
    return false;
}

inline void continue_process(pid_t pid) {
    ::kill(pid, SIGCONT);
}

// Raises this process's soft descriptor limit to want (as far as the hard limit allows).
inline void raise_nofile(rlim_t want) {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : std::min(want, rl.rlim_max);
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
}

// False in a sanitizer build (test/run exports SANITIZE): ASan's quarantine and
// shadow memory make resident-size bounds meaningless there.
inline bool memory_bounds_apply() {
    const char* s = std::getenv("SANITIZE");
    return !s || !*s;
}

// ---- sockets ----

// A blocking TCP connection to 127.0.0.1:port. rcvbuf > 0 sets SO_RCVBUF before
// connect, so the window the server sees is small from the start. Throws on failure.
inline int connect_raw(int port, int rcvbuf = 0) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc;
    do
        rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        int err = errno;
        ::close(fd);
        throw std::runtime_error(std::string("connect: ") + std::strerror(err));
    }
    return fd;
}

// "127.0.0.1:40212": how the server names this connection.
inline std::string local_name(int fd) {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    char buf[INET_ADDRSTRLEN] = "?";
    ::inet_ntop(AF_INET, &sa.sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(sa.sin_port));
}

// close() sends a reset (RST) instead of a FIN.
inline void reset_close(int fd) {
    linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::close(fd);
}

// A blocking send gives up after t (so a sending thread can notice it should stop).
inline void send_timeout(int fd, duration t) {
    timeval tv{static_cast<time_t>(t.count() / 1000),
               static_cast<suseconds_t>(t.count() % 1000 * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// How a stream ended: what arrived, and whether the end was a clean close (read()
// returned 0), an error such as a reset, or the timeout.
struct stream_end {
    std::string data;
    bool clean = false;
    int err = 0;
    bool timed_out = false;
};

inline stream_end read_to_end(int fd, duration timeout) {
    stream_end r;
    auto deadline = steady::now() + timeout;
    for (;;) {
        auto left = ms_until(deadline);
        if (left == 0ms) {
            r.timed_out = true;
            return r;
        }
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        char buf[65536];
        ssize_t k = ::read(fd, buf, sizeof buf);
        if (k > 0) {
            r.data.append(buf, static_cast<std::size_t>(k));
        } else if (k == 0) {
            r.clean = true;
            return r;
        } else if (errno != EINTR && errno != EAGAIN) {
            r.err = errno;
            return r;
        }
    }
}

// line_client's twin over a socket made by connect_raw (optionally with a small
// receive buffer), which can also end with a reset.
class sock_client {
  public:
    explicit sock_client(int port, int rcvbuf = 0)
        : fd_(connect_raw(port, rcvbuf)), name_(local_name(fd_)) {
        in_.reset(fd_);
    }
    ~sock_client() { close(); }
    sock_client(const sock_client&) = delete;
    sock_client& operator=(const sock_client&) = delete;

    int fd() const { return fd_; }
    const std::string& name() const { return name_; }
    line_reader& in() { return in_; }

    void send(std::string_view bytes) {
        if (!try_send(bytes))
            throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    }
    void send_line(std::string_view line) { send(std::string(line) + "\n"); }
    // False when the connection failed (no exception: for senders racing a close).
    bool try_send(std::string_view bytes) {
        while (!bytes.empty()) {
            ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }
    std::optional<std::string> read_line(duration timeout = default_timeout) {
        return in_.line(timeout);
    }
    std::optional<std::string> read_message(duration timeout = default_timeout) {
        return in_.until([](const std::string& s) { return s.rfind("*** ", 0) != 0; }, timeout);
    }
    std::optional<std::string> next_starting(std::string_view prefix,
                                             duration timeout = default_timeout) {
        return in_.until([&](const std::string& l) { return l.rfind(prefix, 0) == 0; }, timeout);
    }
    bool closed_by_server(duration timeout = default_timeout) { return in_.eof(timeout); }
    // Closed with a FIN and no reset behind it (a reset after the FIN still reads as
    // a clean end, but leaves its error on the socket): nothing the server sent can
    // have been lost.
    bool closed_cleanly(duration timeout = default_timeout) {
        return in_.eof(timeout) && in_.end_error() == 0 && socket_error() == 0;
    }
    // The socket's pending error (SO_ERROR; EPIPE or ECONNRESET once reset), cleared.
    int socket_error() const {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
        return err;
    }
    void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    void reset() {
        if (fd_ >= 0) reset_close(fd_);
        fd_ = -1;
    }

  private:
    int fd_;
    std::string name_;
    line_reader in_;
};

// ---- talkd through another program ----

// talkd -p 0 ARGS, started as PREFIX... talkd -p 0 ARGS (prlimit execs talkd, so the
// pid is talkd's). Unlike talk_server it keeps the log lines before "listening on":
// the start-up warnings.
class scenario_server {
  public:
    explicit scenario_server(const std::vector<std::string>& args,
                             const std::vector<std::string>& prefix = {})
        : proc_(command(args, prefix)) {
        for (;;) {
            auto l = proc_.err().line(10000ms);
            if (!l)
                throw std::runtime_error("talkd did not start listening: " + proc_.err().rest());
            if (l->find("listening on") != std::string::npos) {
                listening_ = *l;
                break;
            }
            startup_.push_back(*l);
        }
        port_ = std::atoi(listening_.c_str() + listening_.rfind(':') + 1);
    }

    int port() const { return port_; }
    pid_t pid() const { return proc_.pid(); }
    const std::vector<std::string>& startup_log() const { return startup_; }
    line_reader& console() { return proc_.out(); }
    line_reader& log() { return proc_.err(); }
    std::optional<std::string> console_line_starting(std::string_view prefix,
                                                     duration timeout = default_timeout) {
        return console().until([&](const std::string& s) { return s.rfind(prefix, 0) == 0; },
                               timeout);
    }
    void type(std::string_view line) { proc_.type(line); }
    void signal(int sig) { proc_.signal(sig); }
    std::optional<int> wait(duration timeout = default_timeout) { return proc_.wait(timeout); }
    bool running() { return proc_.running(); }
    long cpu_ticks() const { return proc_.cpu_ticks(); }

  private:
    static std::vector<std::string> command(const std::vector<std::string>& args,
                                            const std::vector<std::string>& prefix) {
        std::vector<std::string> argv = prefix;
        argv.push_back(talkd_path());
        argv.push_back("-p");
        argv.push_back("0");
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    }
    child_process proc_;
    int port_ = -1;
    std::string listening_;
    std::vector<std::string> startup_;
};

inline const std::vector<std::string> prlimit_64 = {"/usr/bin/prlimit", "--nofile=64:64", "--"};

// ---- terminal safety ----

// True when s can reach a terminal without acting on it: no C0 control but TAB, no
// DEL, well-formed UTF-8 with no C1 control, line/paragraph separator or bidi control.
inline bool terminal_safe(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c == '\t' || (c >= 0x20 && c < 0x7F)) {
            ++i;
            continue;
        }
        if (c < 0x20 || c == 0x7F) return false;
        std::size_t len = c >= 0xF5 ? 0 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (len == 0 || i + len > s.size()) return false;
        char32_t cp = c & (0xFF >> (len + 1));
        for (std::size_t k = 1; k < len; ++k) {
            auto b = static_cast<unsigned char>(s[i + k]);
            if ((b & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (b & 0x3F);
        }
        if ((cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
            (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069))
            return false;
        i += len;
    }
    return true;
}

}  // namespace talk::testing::scenario
