// talkbench fanout: P senders, N receivers, K idle connections; every receiver must
// get every sender's messages, complete and in order.
//
// Stages:
//   connecting  idle connections first (talk: each moves to a room of its own, so
//               the messages do not reach it and the lobby's arrival notices stay
//               few), then receivers and senders; each finishes its handshake
//               (talk: the welcome line; redis: the subscribe confirmation, PONG)
//   probing     talk only: sender 0 sends one line and waits until every receiver
//               has it. The server has then registered everyone, and every notice
//               it queued during setup is behind each receiver, not in the run.
//   running     senders send; receivers check and time every delivery
//
// Pacing: with a window W, sender s may have W messages sent but not yet delivered
// to receiver 0 (the pacing receiver); a delivery to receiver 0 reopens the window
// and the sender is topped up right after that read. With a rate R, a 1 ms timer of
// the loop lets each sender send up to R * elapsed messages, so a sender that falls
// behind catches up in a burst rather than silently lowering the rate.
//
// The per-delivery path is: a look for the comma after "From <who>" where the last
// line had it (memchr when it is not there), a jump over the payload's known
// length, three fixed-width numbers converted 8 digits at a time, one compare with
// the sequence number expected, one histogram add. No allocation, and the clock is
// read once per read() call, not per line. A seen-bitmap for a (receiver, sender)
// pair is made only when its order first breaks.
#include <sysexits.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "talk/bench/modes.hpp"

namespace talk::bench {

namespace {

using namespace std::chrono_literals;

enum role : unsigned char { receiver, sender, idle_conn };

constexpr std::string_view probe_text = "talkbench probe";
constexpr std::string_view idle_room = "tbidle-";
constexpr std::string_view subscribe_cmd = "*2\r\n$9\r\nSUBSCRIBE\r\n$9\r\ntalkbench\r\n";
constexpr std::string_view ping_cmd = "*1\r\n$4\r\nPING\r\n";
constexpr std::size_t pump_bytes = 64u << 10;  // formatted per write
constexpr int pump_rounds = 4;                 // writes per sender per event, for fairness

const char* role_name(unsigned char r) {
    return r == receiver ? "receiver" : r == sender ? "sender" : "idle connection";
}

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && std::memcmp(s.data(), prefix.data(), prefix.size()) == 0;
}

class fanout {
public:
    fanout(const options& o, const target& t, report& r)
        : opt_(o),
          rep_(r),
          pool_(t, std::size_t(o.receivers) + o.senders + o.idle),
          frame_(framing::publish(o.proto, o.size)),
          layout_(layout::for_counts(o.senders - 1, o.messages - 1)),
          n_(o.receivers),
          p_(o.senders),
          m_(o.messages) {}

    int run();

private:
    enum class stage { connecting, probing, running, done };

    void on_event(int fd, unsigned mask);
    void connected(conn& c);
    void on_read(conn& c);
    void on_write(conn& c);
    std::size_t talk_input(conn& c, std::string_view data, std::uint64_t now);
    std::size_t redis_input(conn& c, std::string_view data, std::uint64_t now);
    void talk_line(conn& c, std::string_view line, std::uint64_t now);
    bool deliver(conn& c, std::string_view payload, std::uint64_t now);
    struct pair_state;
    bool irregular(pair_state& st, std::uint32_t seq);
    void server_error(std::string_view what);
    void closed(conn& c, std::string_view why);
    bool send(conn& c, std::string_view bytes);
    void ready(conn& c);

    void start_probe();
    void start_run();
    void pump(std::uint32_t s);
    void pump_woken();
    void tick();
    bool complete() const {
        return unique_ == expected_ && (opt_.proto != protocol::redis || replies_ == std::uint64_t(p_) * m_);
    }
    void finish(bool timed_out);

    const options& opt_;
    report& rep_;
    pool pool_;
    framing frame_;
    layout layout_;
    std::string push_prefix_;  // redis: a message push up to its payload
    std::size_t comma_at_ = 20;  // talk: where "From 127.0.0.1:40000, " has its comma
    std::uint32_t n_, p_, m_;
    std::uint64_t expected_ = 0;
    stage stage_ = stage::connecting;
    std::string fatal_;  // why the run cannot go on (setup failed)
    int fatal_status_ = 0;

    std::vector<conn*> senders_;
    std::vector<std::uint32_t> next_seq_;  // per sender: the next to send
    std::vector<std::uint32_t> acked_;     // per sender: delivered to receiver 0
    std::vector<std::uint32_t> woken_;     // senders whose window reopened
    std::vector<char> is_woken_;
    std::uint32_t rate_due_ = 0;           // rate mode: messages each sender may have sent

    // Per (receiver, sender): the seq expected next and, once anything arrived out of
    // place, a bitmap of the seqs seen. While a pair is in order every seq below
    // `next` has arrived once, and that is all there is to know.
    struct pair_state {
        std::uint32_t next = 0;
        std::int32_t bitmap = -1;  // index in bitmaps_, -1 while in order
    };
    std::vector<pair_state> pairs_;
    std::vector<std::vector<std::uint64_t>> bitmaps_;
    std::vector<char> probed_;
    std::uint32_t probed_count_ = 0;
    std::uint64_t unique_ = 0, replies_ = 0;

    run_span span_{rep_, opt_.server_pid};
    std::uint64_t t_last_delivery_ = 0;
};

int fanout::run() {
    expected_ = std::uint64_t(n_) * p_ * m_;
    pairs_.assign(std::size_t(n_) * p_, {});
    push_prefix_ = fmt::format("*3\r\n$7\r\nmessage\r\n${}\r\n{}\r\n${}\r\n", channel.size(), channel,
                               opt_.size);
    probed_.assign(n_, 0);
    next_seq_.assign(p_, 0);
    acked_.assign(p_, 0);
    is_woken_.assign(p_, 0);
    woken_.reserve(p_);

    for (std::uint32_t i = 0; i < opt_.idle; ++i) pool_.add(idle_conn, i);
    for (std::uint32_t i = 0; i < n_; ++i) pool_.add(receiver, i);
    for (std::uint32_t i = 0; i < p_; ++i) senders_.push_back(&pool_.add(sender, i));

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
            if (opt_.proto == protocol::talk)
                start_probe();
            else
                start_run();
        }
        if (stage_ == stage::probing && probed_count_ == n_) start_run();
        // A disconnect or an error reply means deliveries will be missing: report
        // now rather than wait for the timeout.
        if (stage_ == stage::running && (complete() || rep_.disconnects > 0 || rep_.errors > 0))
            stage_ = stage::done;
    }
    if (fatal_status_ && stage_ != stage::running) {
        fmt::print(stderr, "talkbench: {}\n", fatal_);
        return fatal_status_;
    }
    if (fatal_status_) fmt::print(stderr, "talkbench: {}\n", fatal_);
    finish(timed_out);
    return 0;
}

void fanout::on_event(int fd, unsigned mask) {
    conn* c = pool_.at(fd);
    if (!c) return;
    if (c->state == conn::phase::connecting) {
        connected(*c);
        return;
    }
    if (mask & io_read) on_read(*c);
    if ((mask & io_write) && c->fd >= 0) on_write(*c);
}

void fanout::connected(conn& c) {
    if (int err = pool_.finish_connect(c)) {
        fatal_ = fmt::format("cannot connect {} {}: {}", role_name(c.kind), c.index, std::strerror(err));
        fatal_status_ = EX_UNAVAILABLE;
        return;
    }
    if (opt_.proto == protocol::talk) {
        // Receivers and senders are ready at the welcome line. An idle connection
        // leaves the lobby for a room of its own at once, so it receives nothing
        // from the run: in talk every lobby member gets every message.
        if (c.kind == idle_conn) send(c, fmt::format("/join {}{}\n", idle_room, c.index));
    } else {
        send(c, c.kind == receiver ? subscribe_cmd : ping_cmd);
    }
}

bool fanout::send(conn& c, std::string_view bytes) {
    int err = 0;
    if (pool_.send(c, bytes, err)) return true;
    closed(c, std::strerror(err));
    return false;
}

void fanout::ready(conn& c) { pool_.mark_ready(c); }

void fanout::on_write(conn& c) {
    int err = 0;
    if (!pool_.flush(c, err)) {
        closed(c, std::strerror(err));
        return;
    }
    if (c.kind == sender && stage_ == stage::running && !pool_.output_pending(c)) pump(c.index);
}

void fanout::on_read(conn& c) {
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
    std::uint64_t now = now_ns();  // once per read: every line in it arrived by now
    std::size_t used = opt_.proto == protocol::talk ? talk_input(c, in.data, now)
                                                    : redis_input(c, in.data, now);
    if (c.fd < 0) return;
    pool_.keep(c, in.data.substr(used));
    if (!woken_.empty()) pump_woken();
}

std::size_t fanout::talk_input(conn& c, std::string_view data, std::uint64_t now) {
    const char* p = data.data();
    const char* end = p + data.size();
    const std::size_t size = opt_.size;
    const bool receiving = c.kind == receiver && c.state == conn::phase::ready;
    while (p < end) {
        if (receiving) {
            // "From <who>, " and a payload of exactly --size bytes ending the line:
            // the line's end is known once the comma is found. Anything else (a
            // notice, the probe, a line of another length) takes the general path.
            // <who> holds no comma, and every sender's <who> is as long as the
            // last one's but for the port's digits: look where the comma was.
            std::size_t left = static_cast<std::size_t>(end - p);
            if (left > comma_at_ + 2 + size && std::memcmp(p, "From ", 5) == 0) {
                const char* comma = p + comma_at_;
                if (*comma != ',') {
                    comma = static_cast<const char*>(
                        std::memchr(p + 5, ',', std::min<std::size_t>(left - 5, 128)));
                    if (comma) comma_at_ = static_cast<std::size_t>(comma - p);
                }
                if (comma && static_cast<std::size_t>(end - comma) > size + 2 && comma[1] == ' ' &&
                    comma[2 + size] == '\n' && deliver(c, {comma + 2, size}, now)) {
                    p = comma + 3 + size;
                    continue;
                }
            }
        }
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        if (!nl) break;
        std::string_view line(p, static_cast<std::size_t>(nl - p));
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        p = nl + 1;
        talk_line(c, line, now);
    }
    return static_cast<std::size_t>(p - data.data());
}

void fanout::talk_line(conn& c, std::string_view line, std::uint64_t now) {
    if (c.kind == receiver && !line.empty() && line[0] == 'F') {
        relayed r = parse_relayed(line);
        if (r.ok) {
            if (!r.payload.empty() && r.payload[0] == 'b') {
                if (!deliver(c, r.payload, now)) ++rep_.malformed;
            } else if (r.payload == probe_text && !probed_[c.index]) {
                probed_[c.index] = 1;
                ++probed_count_;
            }
            return;  // anything else is someone else's chat (the operator's, say)
        }
    }
    if (starts_with(line, "ERR ")) {
        server_error(fmt::format("{} {}: {}", role_name(c.kind), c.index, line));
        return;
    }
    if (c.state != conn::phase::greeting || !starts_with(line, "*** ")) return;
    bool in = c.kind != idle_conn
                  ? starts_with(line, "*** Welcome")
                  : line.find(fmt::format(" joined {}{} ", idle_room, c.index)) != std::string_view::npos;
    if (in) ready(c);
}

std::size_t fanout::redis_input(conn& c, std::string_view data, std::uint64_t now) {
    std::size_t used = 0;
    const std::size_t size = opt_.size, prefix = push_prefix_.size();
    const bool receiving = c.kind == receiver && c.state == conn::phase::ready;
    while (used < data.size()) {
        if (receiving && data.size() - used >= prefix + size + 2) {
            // The push every message arrives in differs only in its payload.
            const char* p = data.data() + used;
            if (std::memcmp(p, push_prefix_.data(), prefix) == 0 && p[prefix + size] == '\r' &&
                p[prefix + size + 1] == '\n') {
                if (!deliver(c, {p + prefix, size}, now)) ++rep_.malformed;
                used += prefix + size + 2;
                continue;
            }
        }
        resp_value v;
        long n = parse_resp(data.substr(used), v);
        if (n == 0) break;
        if (n < 0) {
            server_error(fmt::format("{} {}: the server's reply is not RESP", role_name(c.kind), c.index));
            return data.size();
        }
        used += static_cast<std::size_t>(n);
        if (v.type == '*' && v.items == 3 && v.item[0] == "message") {
            if (c.kind == receiver && !deliver(c, v.item[2], now)) ++rep_.malformed;
        } else if (v.type == ':') {
            if (c.kind == sender && stage_ == stage::running) ++replies_;
        } else if (v.type == '-') {
            server_error(fmt::format("{} {}: -{}", role_name(c.kind), c.index, v.item[0]));
        } else if (c.state == conn::phase::greeting) {
            if (c.kind == receiver ? v.type == '*' && v.items >= 2 && v.item[0] == "subscribe"
                                   : v.type == '+' && v.item[0] == "PONG")
                ready(c);
        }
    }
    return used;
}

// A payload for receiver c: checked, counted, timed. False when it is not a
// well-formed benchmark payload (the caller decides what that line was).
bool fanout::deliver(conn& c, std::string_view payload, std::uint64_t now) {
    stamp s;
    if (payload.size() != opt_.size || !parse_payload(payload, 'b', layout_, s) || s.from >= p_ ||
        s.seq >= m_)
        return false;
    pair_state& st = pairs_[std::size_t(c.index) * p_ + s.from];
    if (st.bitmap < 0 && s.seq == st.next)
        ++st.next;
    else if (!irregular(st, s.seq))
        return true;
    ++unique_;
    rep_.latency.add(now > s.ns ? now - s.ns : 0);
    t_last_delivery_ = now;
    if (c.index == 0 && opt_.rate == 0 && opt_.window != 0) {
        ++acked_[s.from];
        if (!is_woken_[s.from]) {
            is_woken_[s.from] = 1;
            woken_.push_back(s.from);
        }
    }
    return true;
}

// A delivery to a pair whose order broke, now or before: the bitmap tells a late
// message from a duplicate. False for a duplicate.
bool fanout::irregular(pair_state& st, std::uint32_t seq) {
    if (st.bitmap < 0) {
        // Until now everything below `next` arrived once, in order.
        st.bitmap = static_cast<std::int32_t>(bitmaps_.size());
        auto& fresh = bitmaps_.emplace_back((m_ + 63) / 64, 0);
        for (std::uint32_t i = 0; i < st.next; ++i) fresh[i >> 6] |= std::uint64_t{1} << (i & 63);
    }
    std::uint64_t& word = bitmaps_[st.bitmap][seq >> 6];
    std::uint64_t bit = std::uint64_t{1} << (seq & 63);
    if (word & bit) {
        ++rep_.duplicates;
        return false;
    }
    word |= bit;
    if (seq != st.next) ++rep_.out_of_order;  // in order means exactly the previous + 1
    st.next = seq + 1;
    return true;
}

void fanout::server_error(std::string_view what) {
    if (rep_.errors++ == 0) fmt::print(stderr, "talkbench: the server said: {}\n", what);
}

void fanout::closed(conn& c, std::string_view why) {
    if (c.fd < 0) return;
    std::string who = fmt::format("{} {}", role_name(c.kind), c.index);
    pool_.close(c);
    if (stage_ == stage::connecting || stage_ == stage::probing) {
        fatal_ = fmt::format("{} lost during setup: {}", who, why);
        fatal_status_ = EX_UNAVAILABLE;
        return;
    }
    if (rep_.disconnects++ == 0) fmt::print(stderr, "talkbench: {} disconnected: {}\n", who, why);
}

void fanout::start_probe() {
    stage_ = stage::probing;
    send(*senders_[0], fmt::format("{}\n", probe_text));
}

void fanout::start_run() {
    stage_ = stage::running;
    span_.start(now_ns());
    if (opt_.rate > 0) {
        tick();
        return;
    }
    for (std::uint32_t s = 0; s < p_; ++s) pump(s);
}

void fanout::tick() {
    if (stage_ != stage::running) return;
    double elapsed = static_cast<double>(now_ns() - span_.first_send()) / 1e9;
    // The message scheduled at elapsed time t is number floor(t * rate): the first
    // goes at once.
    rate_due_ = static_cast<std::uint32_t>(std::min<double>(m_, elapsed * opt_.rate + 1));
    for (std::uint32_t s = 0; s < p_; ++s) pump(s);
    if (rate_due_ < m_) pool_.loop().timers().add_after(1ms, [this] { tick(); });
}

void fanout::pump_woken() {
    for (std::uint32_t s : woken_) {
        is_woken_[s] = 0;
        pump(s);
    }
    woken_.clear();
}

void fanout::pump(std::uint32_t s) {
    conn& c = *senders_[s];
    if (c.fd < 0 || pool_.output_pending(c)) return;  // the socket is full: on_write pumps again
    std::uint32_t limit = m_;
    if (opt_.rate > 0)
        limit = std::min(limit, rate_due_);
    else if (opt_.window != 0)
        limit = static_cast<std::uint32_t>(
            std::min<std::uint64_t>(limit, std::uint64_t(acked_[s]) + opt_.window));
    std::uint32_t& next = next_seq_[s];
    if (next >= limit) return;

    const std::string_view before = frame_.before(), after = frame_.after();
    const std::size_t frame = before.size() + opt_.size + after.size();
    const std::uint32_t per_write = static_cast<std::uint32_t>(std::max<std::size_t>(1, pump_bytes / frame));
    std::uint64_t now = now_ns();  // one stamp per pump: these are sent together
    for (int round = 0; round < pump_rounds && next < limit; ++round) {
        std::uint32_t count = std::min(per_write, limit - next);
        c.out.resize(std::size_t(count) * frame);  // keeps its capacity: no allocation after the first
        c.out_off = 0;
        char* p = c.out.data();
        for (std::uint32_t i = 0; i < count; ++i) {
            std::memcpy(p, before.data(), before.size());
            p = format_payload(p + before.size(), opt_.size, 'b', layout_, {s, next++, now});
            std::memcpy(p, after.data(), after.size());
            p += after.size();
        }
        int err = 0;
        if (!pool_.flush(c, err)) {
            closed(c, std::strerror(err));
            return;
        }
        if (pool_.output_pending(c)) return;
    }
}

void fanout::finish(bool timed_out) {
    std::uint64_t now = now_ns();
    rep_.mode = "fanout";
    rep_.protocol = opt_.proto == protocol::talk ? "talk" : "redis";
    rep_.connections = std::uint64_t(n_) + p_ + opt_.idle;
    rep_.senders = p_;
    rep_.receivers = n_;
    rep_.idle = opt_.idle;
    rep_.size = opt_.size;
    rep_.window = opt_.rate > 0 ? 0 : opt_.window;
    rep_.rate = opt_.rate;
    rep_.messages = m_;
    rep_.expected = expected_;
    rep_.deliveries = unique_;
    rep_.lost = expected_ - unique_;
    rep_.timed_out = timed_out;
    span_.finish(now, unique_ == expected_ ? t_last_delivery_ : now);
}

}  // namespace

int run_fanout(const options& opt, const target& where, report& out) {
    fanout f(opt, where, out);
    return f.run();
}

}  // namespace talk::bench
