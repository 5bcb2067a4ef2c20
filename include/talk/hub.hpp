// The hub: the I/O-free heart of talkd. Clients, the lines they send, the messages
// they are sent, and the requests to close them.
//
//   transport (server or test)           hub                          service (chat, echo, ...)
//   bytes read from a socket --feed()--> line framer --line()-------> decides who gets what
//                                        out_queue per client <----- send()
//   writes each pending() queue <------
//   closes what settle() hands back <--- close requests <----------- close()
//
// No descriptor or syscall appears here, so a whole chat session can be driven by a
// unit test or a fuzzer without a network. The server is one transport; it owns the
// sockets and the loop, and calls the hub in between.
//
// Time: the hub never reads a clock. The transport tells it the time once per pass
// (set_now), so deadlines and flood control behave the same under a test's or a
// fuzzer's clock.
//
// Rules that keep the dispatch pass safe:
//   - send() to a closing client does nothing; close() only marks and queues the
//     request, so a service iterating its members is never re-entered.
//   - settle() tells the service about closed clients (left()) outside of any other
//     service call, then hands each to the transport to tear down.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "talk/line_buffer.hpp"
#include "talk/line_framer.hpp"
#include "talk/clock.hpp"
#include "talk/command.hpp"
#include "talk/compose.hpp"
#include "talk/message.hpp"
#include "talk/out_queue.hpp"

namespace talk {

// Bounds on what one peer can make the server hold or do. Zero turns off the ones
// marked "0: off".
struct limits {
    std::size_t max_line = 4096;               // bytes in one line, CR LF not counted
    std::size_t max_queue = 1u << 20;          // output queued for one client: dropped past it
    std::size_t soft_queue = 256u << 10;       // ... or past this for soft_queue_time
    std::chrono::seconds soft_queue_time{10};
    std::size_t max_total_queue = 64u << 20;   // all queued output: the largest queue goes first
    std::chrono::seconds line_timeout{60};     // an unfinished line, from its first byte (0: off)
    std::chrono::seconds idle_timeout{0};      // no input at all (0: off)
    double flood_rate = 200;                   // lines per second per client (0: off)
    double flood_burst = 1000;                 // lines at once before the rate applies
    bool flood_disconnect = false;             // disconnect a flooder instead of slowing it
    // An over-long line is skipped to its end; one that has no end in this many
    // bytes gets its sender disconnected.
    std::size_t max_skip() const { return 1024 * max_line; }
};

enum class close_mode {
    flush,  // write what is queued, then close (quit, end of input)
    drop,   // discard what is queued, write only the last line given, then close
    abort,  // close at once without writing (the connection failed)
};

struct client {
    client(std::uint64_t client_id, std::size_t max_line) : id(client_id), framer(max_line) {}

    std::uint64_t id;
    std::string host;        // peer address: "127.0.0.1", "::1" (IPv4-mapped shown as IPv4)
    std::uint16_t port = 0;  // peer port
    std::string peer;        // "127.0.0.1:36588" or "[::1]:36588"
    std::string local;       // the server's address as this client reached it, same form

    line_framer framer;
    out_queue out;

    // Owned by the hub.
    bool closing = false;  // close requested: no more lines in, no more messages out
    close_mode mode = close_mode::flush;
    std::string reason;     // why, for the console and the log
    bool pending = false;   // on the hub's pending-output list
    std::size_t slot = 0;   // index in the hub's client list

    // Flood control: a token bucket of lines. While throttled the transport does not
    // read from the client, and the input it already read waits in `held` (at most
    // one line and one read), so TCP itself slows the sender down.
    double tokens = 0;
    clock::time_point refilled{};
    bool throttled = false;
    std::string held;

    clock::time_point last_input{};    // for the idle timeout
    clock::time_point line_started{};  // first byte of an unfinished line; {} if none
    clock::time_point over_soft{};     // since when the queue is over the soft limit; {} if not
};

class service;

struct hub_stats {
    std::uint64_t dropped = 0;      // clients the server disconnected (limits, kicks)
    std::uint64_t connections = 0;  // clients ever opened
    std::uint64_t lines_in = 0;     // complete lines received
    std::uint64_t bytes_in = 0;     // counted by the transport
    std::uint64_t bytes_out = 0;    // counted by the transport
    std::uint64_t messages = 0;     // messages formatted (once each, however many recipients)
    std::uint64_t deliveries = 0;   // messages queued to a recipient
};

class hub {
public:
    hub(const limits& lim, line_buffer& console) : limits_(lim), console_(console) {
        // The hard limit is checked where the soft one is: soft may not exceed it.
        if (limits_.soft_queue > limits_.max_queue) limits_.soft_queue = limits_.max_queue;
    }
    hub(const hub&) = delete;
    hub& operator=(const hub&) = delete;

    // The transport's clock, set once per pass.
    void set_now(clock::time_point t) { now_ = t; }
    clock::time_point now() const { return now_; }

    void attach(service& s) { service_ = &s; }
    const talk::limits& limits() const { return limits_; }
    message_arena& arena() { return arena_; }
    line_buffer& console() { return console_; }
    hub_stats& stats() { return stats_; }
    const std::vector<client*>& clients() const { return clients_; }

    // ---- for the transport ----

    // A new connection: console line, then the service's welcome.
    void open(client& c);
    // Bytes received from c: framed into lines and handed to the service. Input
    // after a /quit is ignored. A client over its flood allowance is throttled:
    // the rest of its input is held and c.throttled set, and the transport stops
    // reading from it until resume() says otherwise.
    void feed(client& c, std::string_view bytes);
    // Runs the lines held back from a throttled client as far as its allowance now
    // goes. Returns true when c is no longer throttled.
    bool resume(client& c);
    // How long until a throttled client may send its next line.
    clock::duration throttle_delay(const client& c) const;
    // Closes c if its unfinished line or its silence has passed its deadline;
    // otherwise returns when to look again (clock::time_point::max(): never).
    clock::time_point check_deadlines(client& c);
    // The transport wrote n bytes of c's queue (after c.out.consume(n)).
    void wrote(client& c, std::size_t n) {
        stats_.bytes_out += n;
        if (c.out.bytes() <= limits_.soft_queue) c.over_soft = {};
    }
    // c's socket did not take all it was offered: c is behind. Past the hard limit,
    // or past the soft one for too long, it is dropped. Judged here, after a write,
    // and not when messages are queued: a burst queued in one pass is no sign of a
    // slow reader until the socket has refused some of it.
    void backlogged(client& c) {
        if (c.out.bytes() > limits_.soft_queue) queue_pressure(c);
    }
    // c sent its last byte (EOF): an unterminated last line counts, then c closes
    // once its output is written.
    void feed_eof(client& c);
    // A line the operator typed on the console.
    void operator_line(std::string_view text);

    // Clients with output queued since the list was last cleared. The transport
    // writes each and clears client::pending and the list.
    std::vector<client*>& pending() { return pending_; }

    // Finishes close requests: the service forgets each client (and may tell
    // others), the console says so, then on_closed(c) lets the transport close it.
    template <class F>
    void settle(F&& on_closed) {
        for (std::size_t i = 0; i < closing_.size(); ++i) {
            client& c = *closing_[i];
            forget(c);
            on_closed(c);
        }
        closing_.clear();
    }

    // ---- for services ----

    // Queues m for c (nothing if c is closing). Memory is watched here: past the
    // budget for all queues, the longest queue is dropped (see backlogged() for the
    // limits of one queue).
    void send(client& c, const msg_slice& m) {
        if (c.closing) return;
        c.out.push(m);
        ++stats_.deliveries;
        if (!c.pending) {
            c.pending = true;
            pending_.push_back(&c);
        }
        if (arena_.bytes() > limits_.max_total_queue) [[unlikely]]
            over_budget();
    }

    // Formats `line` plus a newline as a message of its own and queues it for c.
    void reply(client& c, std::string_view line);

    // Sends m to every client except `except`.
    void broadcast(const msg_slice& m, const client* except = nullptr);

    // The operator's line as the lecture's client shows it: "From <server ip:port as
    // that client reached it>, <text>". Formatted once per distinct server address.
    void broadcast_from_server(std::string_view text);

    // Asks for c to be closed. With close_mode::drop, c's queue is discarded first;
    // `last_line`, if any, is the last thing c is sent (an ERR line saying why).
    void close(client& c, close_mode mode, std::string_view reason,
               std::string_view last_line = {});

private:
    void frame(client& c, std::string_view bytes);
    bool take_token(client& c);
    void queue_pressure(client& c);
    void over_budget();
    void forget(client& c);

    talk::limits limits_;
    line_buffer& console_;
    service* service_ = nullptr;
    message_arena arena_;
    std::vector<client*> clients_;
    std::vector<client*> pending_;
    std::vector<client*> closing_;
    hub_stats stats_;
    clock::time_point now_ = clock::now();
    std::size_t evicted_at_ = 0;  // arena bytes at the last eviction
};

// What a service is: the protocol spoken over the lines. Called by the hub, never
// re-entered, and never given a descriptor.
class service {
public:
    virtual ~service() = default;
    // c connected (the hub already printed "Connected to").
    virtual void joined(client&) {}
    // c sent a complete line (without its line end; raw bytes, not yet sanitised).
    virtual void line(client& c, std::string_view text) = 0;
    // c is closing (c.reason says why): forget it. Others may still be told.
    virtual void left(client&) {}
    // The operator typed a line that is not a command.
    virtual void operator_line(std::string_view text) = 0;
    // The operator typed a console command the server does not handle itself
    // (/who, /kick ...). Replies go to the console. False: not known here.
    virtual bool operator_command(const command&) { return false; }
    // A short account for the console's /stats ("3 rooms"), or empty.
    virtual std::string stats() const { return {}; }
};

}  // namespace talk
