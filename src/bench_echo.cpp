// talkbench echo and idle: request/response round trips.
//
//   echo   C connections, each sending a request, waiting for it to come back, and
//          sending the next: C requests in flight, a closed loop.
//   idle   one such connection, plus K idle ones that only keep the server's loop
//          watching K more descriptors: what a wait costs as the watched set grows.
//
// Before the first request every idle connection proves the server has accepted and
// registered it with one round trip of its own (talk: a line echoed; redis: PING),
// so the measurement runs with all K descriptors in the server's watched set.
//
// The clock is read once per read() call; that reading is both the arrival time of
// the response and the send time of the next request, which goes out at once.
#include <sysexits.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "talk/bench/modes.hpp"

namespace talk::bench {

namespace {

enum role : unsigned char { active, idle_conn };

constexpr std::string_view ping_cmd = "*1\r\n$4\r\nPING\r\n";
constexpr std::string_view idle_line = "talkbench idle\n";

class echo_run {
public:
    echo_run(const options& o, const target& t, report& r)
        : opt_(o),
          rep_(r),
          active_count_(o.mode == mode::idle ? 1 : o.connections),
          pool_(t, std::size_t(active_count_) + o.idle),
          frame_(framing::echo(o.proto, o.size)),
          layout_(layout::for_counts(active_count_ - 1, o.requests - 1)) {}

    int run();

private:
    enum class stage { connecting, running, done };

    void on_event(int fd, unsigned mask);
    void on_read(conn& c);
    std::size_t input(conn& c, std::string_view data, std::uint64_t now);
    void response(conn& c, std::string_view payload, std::uint64_t now);
    void send_request(conn& c, std::uint64_t now);
    void closed(conn& c, std::string_view why);
    void server_error(std::string_view what);
    void finish(bool timed_out);

    const options& opt_;
    report& rep_;
    std::uint32_t active_count_;
    pool pool_;
    framing frame_;
    layout layout_;
    stage stage_ = stage::connecting;
    std::string fatal_;
    int fatal_status_ = 0;

    std::vector<std::uint32_t> answered_;  // per active connection
    std::vector<conn*> actives_;
    std::string request_;                  // the request being built, reused
    std::uint64_t done_ = 0;               // answered requests
    std::uint64_t expected_ = 0;
    std::uint32_t finished_ = 0;           // active connections with all answers

    run_span span_{rep_, opt_.server_pid};
    std::uint64_t t_last_ = 0;
};

int echo_run::run() {
    expected_ = std::uint64_t(active_count_) * opt_.requests;
    answered_.assign(active_count_, 0);
    for (std::uint32_t i = 0; i < opt_.idle; ++i) pool_.add(idle_conn, i);
    for (std::uint32_t i = 0; i < active_count_; ++i) actives_.push_back(&pool_.add(active, i));
    request_.resize(frame_.overhead() + opt_.size);

    const std::uint64_t t_begin = now_ns();
    span_.begin(t_begin);
    const std::uint64_t deadline = t_begin + static_cast<std::uint64_t>(opt_.timeout_s * 1e9);
    bool timed_out = false;
    while (stage_ != stage::done) {
        if (!pool_.pass(stage_ == stage::connecting, deadline,
                        [this](int fd, unsigned mask) { on_event(fd, mask); }, timed_out, fatal_,
                        fatal_status_))
            break;
        if (stage_ == stage::connecting && pool_.all_ready()) {
            stage_ = stage::running;
            span_.start(now_ns());
            for (conn* c : actives_) send_request(*c, span_.first_send());
        }
        if (stage_ == stage::running &&
            (finished_ == active_count_ || rep_.disconnects > 0 || rep_.errors > 0))
            stage_ = stage::done;
    }
    if (fatal_status_) {
        fmt::print(stderr, "talkbench: {}\n", fatal_);
        return fatal_status_;
    }
    finish(timed_out);
    return 0;
}

void echo_run::on_event(int fd, unsigned mask) {
    conn* c = pool_.at(fd);
    if (!c) return;
    if (c->state == conn::phase::connecting) {
        if (int err = pool_.finish_connect(*c)) {
            fatal_ = fmt::format("cannot connect: {}", std::strerror(err));
            fatal_status_ = EX_UNAVAILABLE;
            return;
        }
        int err = 0;
        if (c->kind == active) {
            pool_.mark_ready(*c);  // its first request is its handshake
        } else if (!pool_.send(*c, opt_.proto == protocol::talk ? idle_line : ping_cmd, err)) {
            closed(*c, std::strerror(err));
        }
        return;
    }
    if (mask & io_read) on_read(*c);
    if ((mask & io_write) && c->fd >= 0) {
        int err = 0;
        if (!pool_.flush(*c, err)) closed(*c, std::strerror(err));
    }
}

void echo_run::on_read(conn& c) {
    if (c.kind == idle_conn && c.state == conn::phase::ready) {
        net::io_result r = pool_.discard(c);
        if (r.status == net::io::eof) closed(c, "closed by the server");
        if (r.status == net::io::error) closed(c, std::strerror(r.err));
        return;
    }
    pool::input in = pool_.read(c);
    if (in.status == net::io::again) return;
    if (in.status != net::io::done) {
        closed(c, in.status == net::io::eof ? "closed by the server" : std::strerror(in.err));
        return;
    }
    std::uint64_t now = now_ns();
    std::size_t used = input(c, in.data, now);
    if (c.fd >= 0) pool_.keep(c, in.data.substr(used));
}

std::size_t echo_run::input(conn& c, std::string_view data, std::uint64_t now) {
    if (opt_.proto == protocol::talk) {
        const char* p = data.data();
        const char* end = p + data.size();
        while (p < end) {
            auto* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
            if (!nl) break;
            std::string_view line(p, static_cast<std::size_t>(nl - p));
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            p = nl + 1;
            if (c.kind == idle_conn) {
                pool_.mark_ready(c);  // its line came back (or a chat server greeted it)
            } else if (line.rfind("*** ", 0) == 0) {
                server_error(fmt::format("\"{}\": a chat server; echo and idle need talkd --service=echo",
                                         line.substr(0, 60)));
            } else if (line.rfind("ERR ", 0) == 0) {
                server_error(line);
            } else {
                response(c, line, now);
            }
        }
        return static_cast<std::size_t>(p - data.data());
    }
    std::size_t used = 0;
    while (used < data.size()) {
        resp_value v;
        long n = parse_resp(data.substr(used), v);
        if (n == 0) break;
        if (n < 0) {
            server_error("the server's reply is not RESP");
            return data.size();
        }
        used += static_cast<std::size_t>(n);
        if (v.type == '-')
            server_error(fmt::format("-{}", v.item[0]));
        else if (c.kind == idle_conn)
            pool_.mark_ready(c);
        else if (v.type == '$')
            response(c, v.item[0], now);
        else
            ++rep_.malformed;
    }
    return used;
}

void echo_run::response(conn& c, std::string_view payload, std::uint64_t now) {
    if (stage_ != stage::running) {
        ++rep_.malformed;  // nothing was asked yet
        return;
    }
    stamp s;
    std::uint32_t& got = answered_[c.index];
    if (payload.size() != opt_.size || !parse_payload(payload, 'e', layout_, s) || s.from != c.index) {
        ++rep_.malformed;
        return;
    }
    if (s.seq != got) {  // one request in flight: the answer must be to it
        ++(s.seq < got ? rep_.duplicates : rep_.out_of_order);
        return;
    }
    rep_.latency.add(now > s.ns ? now - s.ns : 0);
    ++done_;
    t_last_ = now;
    if (++got == opt_.requests)
        ++finished_;
    else
        send_request(c, now);
}

void echo_run::send_request(conn& c, std::uint64_t now) {
    std::string_view before = frame_.before(), after = frame_.after();
    char* p = request_.data();
    std::memcpy(p, before.data(), before.size());
    p = format_payload(p + before.size(), opt_.size, 'e', layout_, {c.index, answered_[c.index], now});
    std::memcpy(p, after.data(), after.size());
    int err = 0;
    if (!pool_.send(c, request_, err)) closed(c, std::strerror(err));
}

void echo_run::server_error(std::string_view what) {
    if (rep_.errors++ == 0) fmt::print(stderr, "talkbench: the server said: {}\n", what);
}

void echo_run::closed(conn& c, std::string_view why) {
    if (c.fd < 0) return;
    std::string who = fmt::format("{} connection {}", c.kind == active ? "active" : "idle", c.index);
    pool_.close(c);
    if (stage_ == stage::connecting) {
        fatal_ = fmt::format("{} lost during setup: {}", who, why);
        fatal_status_ = EX_UNAVAILABLE;
        return;
    }
    if (rep_.disconnects++ == 0) fmt::print(stderr, "talkbench: {} disconnected: {}\n", who, why);
}

void echo_run::finish(bool timed_out) {
    std::uint64_t now = now_ns();
    rep_.mode = opt_.mode == mode::idle ? "idle" : "echo";
    rep_.protocol = opt_.proto == protocol::talk ? "talk" : "redis";
    rep_.connections = std::uint64_t(active_count_) + opt_.idle;
    rep_.senders = rep_.receivers = active_count_;
    rep_.idle = opt_.idle;
    rep_.size = opt_.size;
    rep_.window = 1;
    rep_.messages = opt_.requests;
    rep_.expected = expected_;
    rep_.deliveries = done_;
    rep_.lost = expected_ - done_;
    rep_.timed_out = timed_out;
    span_.finish(now, finished_ == active_count_ ? t_last_ : now);
}

}  // namespace

int run_echo(const options& opt, const target& where, report& out) {
    echo_run e(opt, where, out);
    return e.run();
}

}  // namespace talk::bench
