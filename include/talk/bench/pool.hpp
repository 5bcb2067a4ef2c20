// talkbench's connections and the one event loop that drives them.
//
// Every mode opens its connections through a pool: non-blocking connects, at most
// `max_pending` of them not yet ready at a time, so a server's accept queue never
// overflows (an overflow turns into SYN retries one second apart) and the notices
// talkd sends on every arrival are read as they come instead of piling up.
//
// Reads go through one shared 64 KiB buffer: a connection keeps only the unfinished
// tail of its last read (usually part of one line), so ten thousand connections cost
// ten thousand short strings, not ten thousand big buffers. A parser is handed the
// tail and the new bytes as one contiguous view, and hands back what it did not use.
#pragma once

#include <sys/socket.h>
#include <sysexits.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "talk/backend/backends.hpp"
#include "talk/bench/wire.hpp"
#include "talk/event_loop.hpp"
#include "talk/net.hpp"

namespace talk::bench {

#if TALK_HAVE_EPOLL
using loop_type = event_loop<epoll_backend>;
#else
using loop_type = event_loop<poll_backend>;
#endif

// Where the server is. Only loopback addresses are accepted: a load generator
// pointed at someone else's machine is an attack, and a benchmark across a network
// measures the network.
struct target {
    sockaddr_storage addr{};
    socklen_t len = 0;
    std::string text;  // "127.0.0.1 port 8888"
};
bool resolve_loopback(const std::string& host, const std::string& port, target& out, std::string& error);

// Raises the soft RLIMIT_NOFILE to the hard limit when `needed` descriptors do not
// fit under it. False, with error set, when even the hard limit is too low.
bool ensure_descriptors(std::size_t needed, std::string& error);

struct conn {
    enum class phase : unsigned char { waiting, connecting, greeting, ready, closed };
    int fd = -1;
    phase state = phase::waiting;
    unsigned char kind = 0;   // the mode's role for it
    std::uint32_t index = 0;  // its number within that role
    std::string tail;         // input after the last complete line or frame
    std::string out;          // output the socket has not taken yet
    std::size_t out_off = 0;  // how much of `out` it has taken
};

class pool {
public:
    static constexpr std::size_t read_size = 64u << 10;
    static constexpr std::size_t max_tail = 64u << 10;  // an unfinished line longer than this is an error

    pool(const target& t, std::size_t count, std::size_t max_pending = 128);
    ~pool();
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;

    loop_type& loop() { return loop_; }

    // Adds a connection to be opened later, in the order added.
    conn& add(unsigned char kind, std::uint32_t index);
    std::vector<conn>& conns() { return conns_; }
    conn* at(int fd) {
        return fd >= 0 && static_cast<std::size_t>(fd) < by_fd_.size() && by_fd_[fd] != none
                   ? &conns_[by_fd_[fd]]
                   : nullptr;
    }

    // Starts connects while fewer than max_pending are under way. Returns false, with
    // error set, when a connect fails at once.
    bool open_more(std::string& error);
    // A connecting descriptor became writable: 0 when connected (the connection is
    // then greeting and watched for reading), else the errno of the failure.
    int finish_connect(conn& c);
    // The mode's handshake for c is done.
    void mark_ready(conn& c);
    std::size_t ready() const { return ready_; }
    bool all_ready() const { return ready_ == conns_.size(); }

    // One read from c. When status is done, `data` is c's tail followed by what was
    // read; the caller parses it and calls keep() with what is left over.
    struct input {
        net::io status;
        std::string_view data;
        int err = 0;
    };
    input read(conn& c);
    void keep(conn& c, std::string_view rest) {
        if (!rest.empty() || !c.tail.empty()) c.tail.assign(rest.data(), rest.size());
    }
    // Reads once and throws the bytes away (idle connections).
    net::io_result discard(conn& c);

    // Queues bytes on c and writes what the socket takes now. False when the
    // connection failed (then err holds errno).
    bool send(conn& c, std::string_view bytes, int& err);
    // Writes what is queued; watches c for writability while some is left.
    bool flush(conn& c, int& err);
    bool output_pending(const conn& c) const { return c.out_off < c.out.size(); }

    // Stops watching c and closes it.
    void close(conn& c);
    void close_all();

    // One pass of a run, the same for every mode: open more connections while
    // connecting, wait (until the deadline, at most 100 ms) and dispatch events to
    // on_event(fd, mask). Returns false when the run must stop: timed_out set when
    // the deadline passed, or fatal and status set when the wait failed.
    template <class OnEvent>
    bool pass(bool connecting, std::uint64_t deadline, OnEvent&& on_event, bool& timed_out,
              std::string& fatal, int& status);

private:
    static constexpr std::uint32_t none = UINT32_MAX;
    void update_interest(conn& c);

    target target_;
    loop_type loop_;
    std::vector<conn> conns_;
    std::vector<std::uint32_t> by_fd_;
    std::size_t next_ = 0;     // the next connection to open
    std::size_t pending_ = 0;  // opened, not ready
    std::size_t ready_ = 0;
    std::size_t max_pending_;
    std::vector<char> scratch_;
};

template <class OnEvent>
bool pool::pass(bool connecting, std::uint64_t deadline, OnEvent&& on_event, bool& timed_out,
                std::string& fatal, int& status) {
    if (connecting && !open_more(fatal)) status = EX_UNAVAILABLE;
    if (status) return false;
    std::uint64_t now = now_ns();
    if (now >= deadline) {
        timed_out = true;
        return false;
    }
    int wait_ms = static_cast<int>(std::min<std::uint64_t>((deadline - now) / 1'000'000 + 1, 100));
    loop_.run_once(on_event, wait_ms);
    if (int err = loop_.last_wait().error) {
        fatal = fmt::format("wait failed: {}", std::strerror(err));
        status = EX_OSERR;
    }
    return status == 0;
}

}  // namespace talk::bench
