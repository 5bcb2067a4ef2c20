// Fuzz target: a whole chat session, hub + chat service, with no socket.
//
// The fuzzer's input is a little program for a transport that behaves like talkd's
// (src/event_server.hpp): up to 8 clients connect, send bytes, stop reading, get
// throttled, time out, quit, are kicked or reset, while the clock moves under the
// program's control. The limits are small so that every limit path is reached.
//
// Input: byte 0 is flags (bit 0: disconnect flooders instead of throttling them);
// then instructions, each an opcode byte (low 4 bits: the operation, high 4 bits:
// a small argument A) and operands. K is a byte choosing a live client (modulo
// their number), N a length byte, DATA the next N bytes (fewer at the end).
//
//   0  connect                 a new client (A bit 0: over IPv6)
//   1  send K N DATA           bytes from client K
//   2  line K N DATA           the same plus "\n"
//   3  eof K                   client K closes its sending side
//   4  operator N DATA         the operator types DATA (plus "\n" unless A bit 0)
//   5  wait HI LO              the clock moves on HI*256+LO ms
//   6  resume K                flood control: run K's held lines (A bit 0: first wait
//                              as long as throttle_delay() says, then K must progress)
//   7  deadlines K             check_deadlines(K) (A bit 0: of every client; no K)
//   8  drain K                 write all of K's queue, even if K is not reading
//   9  drain-some K HI LO      write that many bytes of K's queue
//   10 toggle-reading K        K stops (or starts again) reading its output
//   11 reset K                 the connection fails: close(K, abort)
//   12 repeat K C N DATA       DATA sent C+1 times (A bit 0: each with "\n")
//   13 kick K N DATA           the operator types "/kick <K's address> DATA"
//   14 msg J K N DATA          J sends "/msg <K's address> DATA\n"
//   15 drain-all               write every queue once
//
// After each instruction the transport's pass ends as talkd's does: settle(); each
// client settled is written out (unless reset: even one that stopped reading, to see
// that its queue ends with a whole line) and destroyed; the pending list is cleared;
// every reading client's queue is written; the console is read; the arena recycled.
// The invariants, checked on every pass:
//   - every line a client receives starts with "From ", "To ", "* ", "*** " or
//     "ERR ", and every console line with one of its known prefixes;
//   - all of them are safe for a terminal: UTF-8 with no control byte but TAB, no
//     C1 control, no line separator, no bidirectional control;
//   - a queue holds whole lines; an open client's queue is at most max_queue once
//     its write was refused (a client that stopped reading); a
//     dropped client gets at most the rest of a started line, then an ERR line;
//   - a client with new output is on the pending list;
//   - the hub's clients are exactly the live ones, each at its slot, none closing;
//   - a throttled client gets on once throttle_delay() has passed;
// and at the end, once every client is gone: only the lobby is left, and no message
// chunk outlives the queues. FUZZ_TRACE=1 in the environment prints what each
// client and the console receive.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sys/uio.h>

#include "check.hpp"
#include "talk/command.hpp"
#include "talk/hub.hpp"
#include "talk/line_framer.hpp"
#include "talk/services.hpp"
#include "talk/text.hpp"

using fuzz::check;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t max_clients = 8;
constexpr std::size_t max_repeat_bytes = 1u << 20;  // bytes all "repeat" instructions may send in one run

talk::limits fuzz_limits(bool flood_disconnect) {
    talk::limits l;
    l.max_line = 64;
    l.max_queue = 4096;
    l.soft_queue = 1024;
    l.soft_queue_time = 1s;
    l.max_total_queue = 256u << 10;
    l.flood_rate = 5;
    l.flood_burst = 3;
    l.flood_disconnect = flood_disconnect;
    l.line_timeout = 2s;
    l.idle_timeout = 5s;
    return l;
}

// The program being run.
struct reader {
    const std::uint8_t* data;
    std::size_t size;
    std::size_t pos = 0;

    bool done() const { return pos >= size; }
    std::uint8_t byte() { return pos < size ? data[pos++] : 0; }
    std::string_view bytes(std::size_t n) {
        n = std::min(n, size - pos);
        std::string_view s(reinterpret_cast<const char*>(data + pos), n);
        pos += n;
        return s;
    }
};

// FUZZ_TRACE=1 in the environment: every line received is printed, to see what a
// seed or a crash does (build/test/fuzz-replay-chat FILE).
const bool tracing = std::getenv("FUZZ_TRACE") != nullptr;

FUZZ_CHECKER void trace(const char* who, std::uint64_t id, std::string_view line) {
    if (!tracing) return;
    if (id)
        std::fprintf(stderr, "%s %llu| ", who, static_cast<unsigned long long>(id));
    else
        std::fprintf(stderr, "%s| ", who);
    for (unsigned char c : line) {
        if (c >= 0x20 && c < 0x7F)
            std::fputc(c, stderr);
        else
            std::fprintf(stderr, "\\x%02X", c);
    }
    std::fputc('\n', stderr);
}

FUZZ_CHECKER bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

FUZZ_CHECKER bool shown_as_code(char32_t cp) {
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

// What a terminal must be safe to show: UTF-8, no control byte but TAB, no C1 control,
// line separator or bidirectional control.
FUZZ_CHECKER void check_safe(std::string_view line, const char* what) {
    const char* p = line.data();
    const char* const end = p + line.size();
    while (p < end) {
        unsigned char c = static_cast<unsigned char>(*p);
        check(c == '\t' || (c >= 0x20 && c != 0x7F), what, line);
        std::size_t len = c < 0x80 ? 1 : talk::utf8_sequence_length(std::string_view(p, end - p));
        check(len > 0, what, line);
        char32_t cp = len == 1 ? c : c & (0xFF >> (len + 1));
        for (std::size_t j = 1; j < len; ++j) cp = (cp << 6) | (static_cast<unsigned char>(p[j]) & 0x3F);
        check(!shown_as_code(cp), what, line);
        p += len;
    }
}

FUZZ_CHECKER void check_client_line(std::string_view line) {
    check(starts_with(line, "From ") || starts_with(line, "To ") || starts_with(line, "* ") ||
              starts_with(line, "*** ") || starts_with(line, "ERR "),
          "a client's line starts with From, To, *, *** or ERR", line);
    check_safe(line, "a client's line is safe for a terminal");
}

FUZZ_CHECKER void check_console_line(std::string_view line) {
    check(starts_with(line, "Connected to : ") || starts_with(line, "Disconnected : ") ||
              starts_with(line, "Dropped ") || starts_with(line, "From ") || starts_with(line, "* ") ||
              starts_with(line, "*** ") || starts_with(line, "ERR ") ||
              starts_with(line, "talkd: "),  // line_buffer's own note of lines it dropped
          "a console line starts with a known prefix", line);
    check_safe(line, "a console line is safe for a terminal");
}

// Checks each complete line of text; returns the bytes they take (up to the last LF).
FUZZ_CHECKER std::size_t check_lines(std::string_view text, bool console, std::uint64_t id) {
    std::size_t start = 0;
    for (std::size_t lf; (lf = text.find('\n', start)) != std::string_view::npos; start = lf + 1) {
        std::string_view line = text.substr(start, lf - start);
        trace(console ? "console" : "client", id, line);
        if (console)
            check_console_line(line);
        else
            check_client_line(line);
    }
    return start;
}

// One connection as the transport sees it.
struct conn : talk::client {
    using client::client;
    bool reading = true;       // its queue is written at the end of every pass
    bool eof_waiting = false;  // it sent EOF while throttled: read once it is resumed
    bool dead = false;         // settled: the hub and the service forgot it
    std::string rx;            // received bytes after its last complete line
    std::size_t seen = 0;      // queued bytes at the end of the last pass
};

class session {
public:
    explicit session(bool flood_disconnect)
        : limits_(fuzz_limits(flood_disconnect)), hub_(limits_, console_) {
        hub_.set_now(now_);
        svc_ = talk::make_service("chat", hub_, talk::server_identity{"talkd", "0.1.0", "fuzz"});
        check(svc_ != nullptr, "the chat service exists");
        hub_.attach(*svc_);
    }

    ~session() {
        for (auto& p : peers_) hub_.close(*p, talk::close_mode::abort, "fuzz: end of the program");
        end_pass();
        check(peers_.empty() && hub_.clients().empty(), "every client is gone at the end");
        check(svc_->stats() == "1 room", "only the lobby is left when everyone is gone", svc_->stats());
        check(hub_.arena().chunks() <= 1, "no message chunk outlives the queues");
        check(hub_.stats().connections == next_id_ - 1, "every connection counted");
    }

    session(const session&) = delete;
    session& operator=(const session&) = delete;

    void run(reader& in) {
        while (!in.done()) {
            step(in);
            end_pass();
        }
    }

private:
    // Operands are always read, even when there is no client to act on, so that
    // the rest of the program means the same.
    void step(reader& in) {
        const std::uint8_t op = in.byte();
        const bool flag = (op >> 4) & 1;
        constexpr std::size_t all = std::numeric_limits<std::size_t>::max();
        switch (op & 15) {
            case 0: connect(flag); break;
            case 1:
            case 2: {
                conn* p = pick(in);
                std::string data(in.bytes(in.byte()));
                if ((op & 15) == 2) data += '\n';
                if (p) send(*p, data);
                break;
            }
            case 3: if (conn* p = pick(in)) eof(*p); break;
            case 4: operator_bytes(std::string(in.bytes(in.byte())) + (flag ? "" : "\n")); break;
            case 5: {
                unsigned ms = in.byte() << 8;
                ms |= in.byte();
                advance(std::chrono::milliseconds(ms));
                break;
            }
            case 6: if (conn* p = pick(in)) resume(*p, flag); break;
            case 7:
                if (flag) {
                    for (auto& p : peers_) deadlines(*p);
                } else if (conn* p = pick(in)) {
                    deadlines(*p);
                }
                break;
            case 8: if (conn* p = pick(in)) drain(*p, all); break;
            case 9: {
                conn* p = pick(in);
                std::size_t n = in.byte() << 8;
                n |= in.byte();
                if (p) drain(*p, n);
                break;
            }
            case 10: if (conn* p = pick(in)) p->reading = !p->reading; break;
            case 11: if (conn* p = pick(in)) hub_.close(*p, talk::close_mode::abort, "reset"); break;
            case 12: {
                conn* p = pick(in);
                std::size_t times = 1 + in.byte();
                std::string data(in.bytes(in.byte()));
                if (flag) data += '\n';
                for (std::size_t i = 0; p && i < times && repeated_ + data.size() <= max_repeat_bytes; ++i) {
                    repeated_ += data.size();
                    send(*p, data);
                    if (p->closing) break;
                }
                break;
            }
            case 13: {
                conn* p = pick(in);
                std::string_view why = in.bytes(in.byte());
                if (p) operator_bytes("/kick " + p->peer + (why.empty() ? "" : " ") + std::string(why) + "\n");
                break;
            }
            case 14: {
                conn* from = pick(in);
                conn* to = pick(in);
                std::string_view text = in.bytes(in.byte());
                if (from && to) send(*from, "/msg " + to->peer + " " + std::string(text) + "\n");
                break;
            }
            case 15:
                for (auto& p : peers_) drain(*p, all);
                break;
        }
    }

    conn* pick(reader& in) {
        std::uint8_t k = in.byte();
        return peers_.empty() ? nullptr : peers_[k % peers_.size()].get();
    }

    void connect(bool v6) {
        if (peers_.size() >= max_clients || stopping_) return;
        auto p = std::make_unique<conn>(next_id_++, limits_.max_line);
        p->port = static_cast<std::uint16_t>(1000 + p->id);
        p->host = v6 ? "::1" : "127.0.0.1";
        p->peer = v6 ? "[::1]:" + std::to_string(p->port) : "127.0.0.1:" + std::to_string(p->port);
        p->local = v6 ? "[::1]:4000" : "127.0.0.1:4000";
        conn& c = *p;
        peers_.push_back(std::move(p));
        hub_.open(c);
        deadlines(c);
    }

    // Bytes read from p's socket; as talkd does, the deadlines are looked at after.
    void send(conn& p, std::string_view bytes) {
        if (p.eof_waiting) return;  // nothing comes after EOF
        hub_.feed(p, bytes);
        check(p.framer.partial_size() <= limits_.max_line + 1, "a client's unfinished line is bounded");
        deadlines(p);
    }

    // EOF from p. A throttled client is not read, so talkd only sees its EOF once
    // flood control lets it go on.
    void eof(conn& p) {
        if (p.throttled) {
            p.eof_waiting = true;
            return;
        }
        hub_.feed_eof(p);
        check(p.closing, "EOF closes a client");
    }

    void resume(conn& p, bool wait_first) {
        if (wait_first && p.throttled) {
            auto delay = hub_.throttle_delay(p);
            check(delay >= delay.zero() && delay <= 1s, "the throttle delay is at most 1/rate");
            advance(delay);
            std::size_t held = p.held.size();
            std::uint64_t lines_in = hub_.stats().lines_in;
            if (!hub_.resume(p) && p.held.size() >= held && hub_.stats().lines_in == lines_in) {
                // Rounding may leave the allowance a hair short of a line: one more ms.
                advance(1ms);
                held = p.held.size();
                check(hub_.resume(p) || p.held.size() < held,
                      "a throttled client gets on once throttle_delay() has passed");
            }
        } else {
            bool free = hub_.resume(p);
            check(free == !p.throttled || p.closing, "resume() says whether the client is still throttled");
        }
        if (!p.throttled && !p.closing && p.eof_waiting) {
            p.eof_waiting = false;
            eof(p);
        }
        if (!p.closing) deadlines(p);
    }

    void deadlines(conn& p) {
        if (p.dead) return;
        talk::clock::time_point next = hub_.check_deadlines(p);
        check(next == talk::clock::time_point::max() || next > now_, "the next deadline is in the future");
    }

    void advance(talk::clock::duration d) {
        now_ += d;
        hub_.set_now(now_);
    }

    // The operator's console input, framed as talkd frames it.
    void operator_bytes(std::string_view bytes) {
        operator_framer_.feed(
            bytes,
            [&](std::string_view line) {
                operator_line(line);
                return true;
            },
            [] {});
    }

    // What talkd does with a line typed on its console (event_server::operator_input).
    void operator_line(std::string_view line) {
        auto cmd = talk::parse_command(line);
        if (!cmd) {
            hub_.operator_line(talk::message_text(line));
        } else if (cmd->is("stats")) {
            console_.add("*** stats: " + std::to_string(hub_.clients().size()) + " clients in " + svc_->stats());
        } else if (cmd->is("shutdown")) {
            if (stopping_) return;
            stopping_ = true;
            std::vector<talk::client*> everyone = hub_.clients();
            for (talk::client* c : everyone) {
                hub_.reply(*c, "*** server shutting down");
                hub_.close(*c, talk::close_mode::flush, "server shutting down");
            }
        } else if (!svc_->operator_command(*cmd)) {
            console_.add(talk::sanitize("ERR unknown-command /" + std::string(cmd->name) + " (try /help)"));
        }
    }

    // Writes up to n bytes of p's queue: what a socket would take. (This and
    // end_pass() are the transport and the checks, not the code under test: no
    // coverage, as for the checks.)
    // The bytes taken are also added to *taken, if given.
    FUZZ_CHECKER void drain(conn& p, std::size_t n, std::string* taken = nullptr) {
        while (n > 0 && !p.out.empty()) {
            iovec iov[64];
            int count = p.out.gather(iov, 64, n);
            std::size_t took = 0;
            for (int i = 0; i < count; ++i) {
                p.rx.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
                if (taken) taken->append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
                took += iov[i].iov_len;
            }
            check(took > 0 && took <= n && took <= p.out.bytes(), "gather() describes part of the queue");
            p.out.consume(took);
            hub_.wrote(p, took);
            n -= took;
        }
        p.rx.erase(0, check_lines(p.rx, false, p.id));
        if (p.out.empty()) check(p.rx.empty(), "a queue holds whole lines", p.rx);
    }

    // The end of a pass of talkd's loop.
    FUZZ_CHECKER void end_pass() {
        // talkd writes every client with new output; one that stopped reading takes
        // none of it, and its queue is judged against the limits (hub::backlogged).
        for (talk::client* c : hub_.pending()) {
            auto* p = static_cast<conn*>(c);
            if (!p->reading && !p->closing) hub_.backlogged(*p);
        }
        hub_.settle([&](talk::client& c) {
            conn& p = static_cast<conn&>(c);
            check(!p.dead, "a client is settled once");
            check(c.closing, "only a closing client is settled");
            p.dead = true;
            // Flush and drop: what is queued is written (talkd gives it 5 s, and the
            // fuzzer lets even a client that stopped reading take it all, to see
            // that no line is cut short). Abort: nothing more is written.
            if (c.mode == talk::close_mode::flush) {
                drain(p, std::numeric_limits<std::size_t>::max());
            } else if (c.mode == talk::close_mode::drop) {
                // Dropped: at most the rest of a line already started, then the
                // ERR line saying why.
                std::string last;
                drain(p, std::numeric_limits<std::size_t>::max(), &last);
                check(std::count(last.begin(), last.end(), '\n') <= 2, "a dropped client's queue is dropped",
                      last);
                std::string_view text = last;
                if (!text.empty()) text.remove_suffix(1);  // the final LF
                std::size_t lf = text.rfind('\n');
                check(starts_with(lf == std::string_view::npos ? text : text.substr(lf + 1), "ERR "),
                      "a dropped client is told why", last);
            }
            c.out.clear();
        });
        for (talk::client* c : hub_.pending()) {
            check(c->pending, "a client on the pending list is marked pending");
            c->pending = false;
        }
        // Output queued during the pass must have put its client on the pending list,
        // or talkd would never write it.
        for (auto& p : peers_)
            if (!p->dead && p->out.bytes() > p->seen)
                check(std::find(hub_.pending().begin(), hub_.pending().end(), p.get()) != hub_.pending().end(),
                      "a client with new output is on the pending list");
        hub_.pending().clear();
        std::erase_if(peers_, [](const std::unique_ptr<conn>& p) { return p->dead; });

        for (auto& p : peers_) {
            if (p->reading) drain(*p, std::numeric_limits<std::size_t>::max());
            p->seen = p->out.bytes();
        }
        while (!hub_.console().empty()) {
            std::string_view text = console_.pending();
            check(check_lines(text, true, 0) == text.size(), "the console holds whole lines", text);
            console_.consume(text.size());
        }
        hub_.arena().recycle();
        if (tracing && hub_.arena().chunks() != traced_chunks_) {
            traced_chunks_ = hub_.arena().chunks();
            std::fprintf(stderr, "arena| %zu chunks, %zu bytes\n", traced_chunks_, hub_.arena().bytes());
        }

        // Invariants of the pass.
        check(hub_.clients().size() == peers_.size(), "the hub's clients are the live ones");
        for (std::size_t i = 0; i < hub_.clients().size(); ++i)
            check(hub_.clients()[i]->slot == i, "a client's slot is its index in the hub");
        for (auto& p : peers_) {
            check(std::find(hub_.clients().begin(), hub_.clients().end(), p.get()) != hub_.clients().end(),
                  "every live client is the hub's");
            check(!p->closing, "settle() leaves no client closing");
            // A client whose socket refused output is dropped once its queue passes
            // max_queue (hub::backlogged); only a closing one gets a last line past it
            // (see the settle() above).
            check(p->out.bytes() <= limits_.max_queue, "an open client's queue is at most max_queue");
            check(!p->reading || p->out.empty(), "a reading client's queue is written");
            check(!p->pending, "the pending list was cleared");
        }
    }

    talk::limits limits_;
    talk::line_buffer console_{1u << 20};
    talk::hub hub_;
    std::unique_ptr<talk::service> svc_;
    std::vector<std::unique_ptr<conn>> peers_;  // live clients, oldest first
    talk::line_framer operator_framer_{4096};
    talk::clock::time_point now_ = talk::clock::time_point(1h);  // never {}: that means "unset"
    std::uint64_t next_id_ = 1;
    std::size_t repeated_ = 0;
    std::size_t traced_chunks_ = 0;
    bool stopping_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    reader in{data + 1, size - 1};
    session s(data[0] & 1);
    s.run(in);
    return 0;
}
