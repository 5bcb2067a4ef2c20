// event_server<Backend>: talkd's single-threaded server over one backend.
// Included only by server.cpp, which instantiates it once per backend.
// The pass structure is described in include/talk/server.hpp.
#pragma once

#include <sys/resource.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <poll.h>
#include <sysexits.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "talk/backend/select_backend.hpp"
#include "talk/command.hpp"
#include "talk/compose.hpp"
#include "talk/console.hpp"
#include "talk/event_loop.hpp"
#include "talk/hub.hpp"
#include "talk/line_buffer.hpp"
#include "talk/net.hpp"
#include "talk/operator.hpp"
#include "talk/options.hpp"
#include "talk/server.hpp"
#include "talk/services.hpp"
#include "talk/signals.hpp"
#include "talk/text.hpp"
#include "talk/version.hpp"

namespace talk {

using namespace std::chrono_literals;

inline constexpr std::size_t max_read = 1u << 20;  // the largest --max-input honoured
inline constexpr int max_iov = 64;
inline constexpr std::size_t fd_reserve = 32;  // descriptors kept for everything but clients
inline constexpr std::size_t default_max_clients = 10000;
inline constexpr auto linger_time = 5s;        // a closing connection's time to take its output
inline constexpr auto shutdown_grace = 1s;     // SIGINT/SIGTERM: time to flush every queue
inline constexpr auto foreground_check = 1s;   // in the background: how often to look for fg
inline constexpr std::size_t console_backlog = 1u << 20;

// A client plus what only the transport knows about it.
struct connection : client {
    using client::client;

    enum class phase : unsigned char {
        open,      // reading lines, writing output
        flushing,  // closing: writing what is queued; input read and thrown away
        draining,  // write side shut down; reading until the peer closes, briefly
        done,      // forgotten by the loop; closed and freed after the pass
    };
    int fd = -1;
    phase state = phase::open;
    bool read_eof = false;  // the peer will send no more
    timer_queue::id linger = 0;          // closing: the most time its output gets
    timer_queue::id throttle_timer = 0;  // flood control: when to read it again
    timer_queue::id deadline_timer = 0;  // the next unfinished-line or idle check
    clock::time_point deadline_at{};
};

template <backend Backend>
class event_server {
public:
    explicit event_server(const server_options& opt)
        : opt_(opt),
          console_(console_backlog),
          log_(console_backlog),
          hub_(opt.limits, console_),
          read_size_(std::min(opt.max_input, max_read)),
          scratch_(new char[read_size_]) {}

    ~event_server() { stop(); }

    int run() {
        if (int rc = start(); rc != 0) return rc;
        while (!done_) {
            ++passes_;
            loop_.run_once([this](int fd, unsigned mask) { dispatch(fd, mask); },
                           hub_.pending().empty() ? -1 : 0, [this](const wait_info& w) {
                               hub_.set_now(w.woke);
                               trace_wait(w);
                           });
            if (int err = loop_.last_wait().error) {
                log_.add(fmt::format("talkd: {} wait failed: {}", Backend::name, std::strerror(err)));
                stop();
                return EX_OSERR;
            }
            after_pass();
        }
        stop();
        return 0;
    }

private:
    // ---- start and stop ----

    int start() {
        out_ = open_console_output(1);
        err_ = open_console_output(2);
        std::string error;
        if (!signals::install(error)) return fail(EX_OSERR, error);

        listen_fd_ = net::listen_tcp(opt_.bind, opt_.port, error);
        if (listen_fd_ < 0) return fail(EX_UNAVAILABLE, "cannot listen: " + error);
        if (int err = loop_.watch(listen_fd_, io_read))
            return fail(EX_OSERR, fmt::format("cannot watch the listening socket: {}", std::strerror(err)));
        if (int err = loop_.watch(signals::wake_fd(), io_read))
            return fail(EX_OSERR, fmt::format("cannot watch the signal pipe: {}", std::strerror(err)));
        reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        set_client_limit();

        identity_ = {"talkd", version, Backend::name};
        service_ = make_service(opt_.service, hub_, identity_);
        hub_.attach(*service_);

        open_console();

        log_.add(fmt::format("talkd: listening on {} ({})", net::local_endpoint(listen_fd_).text,
                             Backend::name));
        flush_console();
        return 0;
    }

    int fail(int status, const std::string& what) {
        log_.add("talkd: " + what);
        stop();
        return status;
    }

    // Raises the soft descriptor limit as far as the clients need and the hard limit
    // allows, and caps the clients to what the descriptors (and select) can take.
    void set_client_limit() {
        std::size_t wanted = opt_.max_clients ? opt_.max_clients : default_max_clients;
        rlimit rl{};
        ::getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < wanted + fd_reserve) {
            rlimit raised = rl;
            raised.rlim_cur = rl.rlim_max == RLIM_INFINITY ? wanted + fd_reserve
                                                           : std::min<rlim_t>(rl.rlim_max, wanted + fd_reserve);
            if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
        }
        std::size_t by_fds = rl.rlim_cur > fd_reserve ? rl.rlim_cur - fd_reserve : 1;
        const char* by = "the descriptor limit";
        if constexpr (std::is_same_v<Backend, select_backend>) {
            if (by_fds > FD_SETSIZE - fd_reserve) {
                by_fds = FD_SETSIZE - fd_reserve;
                by = "select's FD_SETSIZE";
            }
        }
        max_clients_ = std::min(wanted, by_fds);
        if (max_clients_ < wanted)
            log_.add(fmt::format("talkd: serving at most {} clients ({} allows no more)",
                                 max_clients_, by));
    }

    void stop() {
        if (stopped_) return;
        stopped_ = true;
        for (connection* c : conns_)
            if (c && c->state != connection::phase::done) finish(*c);
        reap();
        if (listen_fd_ >= 0) ::close(listen_fd_);
        if (reserve_fd_ >= 0) ::close(reserve_fd_);
        listen_fd_ = reserve_fd_ = -1;
        release(in_);
        final_flush(err_, log_);
        final_flush(out_, console_);
        release(out_);
        release(err_);
    }

    // ---- dispatch ----

    void dispatch(int fd, unsigned mask) {
        if (static_cast<std::size_t>(fd) < conns_.size() && conns_[fd]) {
            connection& c = *conns_[fd];
            if (mask & io_read) read_client(c);
            if ((mask & io_write) && c.state != connection::phase::done) write_client(c);
        } else if (fd == listen_fd_) {
            accept_some();
        } else if (fd == signals::wake_fd()) {
            if (int sig = signals::take(); sig && !stopping_) begin_shutdown(signal_name(sig));
        } else if (fd == in_.fd) {
            read_console();
        } else if (fd == out_.fd || fd == err_.fd) {
            flush_console();
        }
    }

    void after_pass() {
        auto settled = [this](client& cl) { begin_close(static_cast<connection&>(cl)); };
        hub_.settle(settled);
        writing_.swap(hub_.pending());  // writes may queue more; that waits for the next pass
        for (client* cl : writing_) {
            cl->pending = false;
            write_client(static_cast<connection&>(*cl));
        }
        writing_.clear();
        hub_.settle(settled);  // clients whose write just failed
        reap();
        flush_console();
        hub_.arena().recycle();
        if (stopping_ && live_ == 0) done_ = true;
    }

    // ---- connections ----

    void accept_some() {
        for (int i = 0; i < opt_.max_accepts; ++i) {
            sockaddr_storage peer{};
            int fd = net::accept_client(listen_fd_, peer);
            if (fd >= 0) {
                add_client(fd, peer);
                continue;
            }
            int err = -fd;
            if (err == EAGAIN || err == EWOULDBLOCK) return;
            if (err == ECONNABORTED || err == EPROTO || err == EPERM) continue;  // gone already
            if (err == EMFILE || err == ENFILE) {
                shed_with_reserve(err);
                if (reserve_fd_ < 0) pause_accepting();
                return;
            }
            log_.add(fmt::format("talkd: accept: {}", std::strerror(err)));
            pause_accepting();  // ENOBUFS, ENOMEM: retrying at once would spin
            return;
        }
    }

    // Stops watching the listener for a moment; the kernel keeps queueing connections.
    void pause_accepting() {
        loop_.watch(listen_fd_, io_none);
        loop_.timers().add_after(100ms, [this] {
            if (listen_fd_ >= 0) loop_.watch(listen_fd_, io_read);
        });
    }

    // Out of descriptors: the pending connection would keep the listener readable
    // and the loop spinning. The reserved descriptor is given up for a moment, so
    // the connection can be accepted, told, and closed (libev's and muduo's trick).
    void shed_with_reserve(int err) {
        if (reserve_fd_ >= 0) ::close(reserve_fd_);
        sockaddr_storage peer{};
        int fd = net::accept_client(listen_fd_, peer);
        if (fd >= 0) net::refuse(fd, "ERR server-full no free descriptors; try again later");
        reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        log_.add(fmt::format("talkd: accept: {}: refused a connection", std::strerror(err)));
    }

    void add_client(int fd, const sockaddr_storage& peer) {
        if (!loop_.can_watch(fd)) {
            net::refuse(fd, fmt::format("ERR server-full descriptor {} is beyond what {} can watch",
                                        fd, Backend::name));
            log_.add(fmt::format("talkd: refused {}: descriptor {} too large for {}",
                                 net::describe(reinterpret_cast<const sockaddr*>(&peer)).text, fd,
                                 Backend::name));
            return;
        }
        if (hub_.clients().size() >= max_clients_) {
            turn_away(fd, peer, fmt::format("ERR server-full {} connected; try again later",
                                            counted(max_clients_, "client")));
            return;
        }
        if (int err = loop_.watch(fd, io_read)) {  // ENOMEM from epoll_ctl, say
            net::refuse(fd, "ERR server-full try again later");
            log_.add(fmt::format("talkd: cannot watch a new connection: {}", std::strerror(err)));
            return;
        }
        net::set_nodelay(fd);
        auto* c = new connection(next_id_++, opt_.limits.max_line);
        c->fd = fd;
        net::endpoint p = net::describe(reinterpret_cast<const sockaddr*>(&peer));
        c->host = std::move(p.host);
        c->port = p.port;
        c->peer = std::move(p.text);
        c->local = net::local_endpoint(fd).text;
        if (static_cast<std::size_t>(fd) >= conns_.size()) conns_.resize(fd + 1, nullptr);
        conns_[fd] = c;
        ++live_;
        trace(1, "talkd: accepted {} on fd {} ({})", c->peer, fd, counted(hub_.clients().size() + 1, "client"));
        hub_.open(*c);
        arm_deadline(*c);
    }

    // The server is full: the connection gets the same close as any the server
    // decides (its ERR line, our side shut down, a moment to read it, then the
    // close), but the hub and the service never see it.
    void turn_away(int fd, const sockaddr_storage& peer, std::string_view line) {
        std::string who = net::describe(reinterpret_cast<const sockaddr*>(&peer)).text;
        trace(1, "talkd: refused {}: server full", who);
        if (loop_.watch(fd, io_read) != 0) {
            net::refuse(fd, line);
            return;
        }
        auto* c = new connection(next_id_++, opt_.limits.max_line);
        c->fd = fd;
        c->peer = std::move(who);
        c->closing = true;  // not the hub's: nothing is sent to it or closed through it
        c->out.push(compose(hub_.arena(), line));
        if (static_cast<std::size_t>(fd) >= conns_.size()) conns_.resize(fd + 1, nullptr);
        conns_[fd] = c;
        ++live_;
        start_flushing(*c);
        write_client(*c);
    }

    void read_client(connection& c) {
        net::io_result r = net::read_some(c.fd, scratch_.get(), read_size_);
        trace_io("read", c, r);
        switch (r.status) {
            case net::io::done:
                hub_.stats().bytes_in += r.n;
                if (c.state != connection::phase::open) break;  // closing: input is ignored
                hub_.feed(c, {scratch_.get(), r.n});
                if (c.throttled) throttle(c);
                arm_deadline(c);
                break;
            case net::io::again:
                break;
            case net::io::eof:
                if (c.state == connection::phase::open) {
                    hub_.feed_eof(c);  // a half-close: its lines count, then it closes
                } else if (c.state == connection::phase::draining || c.out.empty()) {
                    finish(c);
                }
                c.read_eof = true;
                update_interest(c);
                break;
            case net::io::error:
                if (c.state == connection::phase::open)
                    hub_.close(c, close_mode::abort, std::strerror(r.err));
                else
                    finish(c);
                break;
        }
    }

    void write_client(connection& c) {
        if (c.state == connection::phase::done) return;
        if (!c.out.empty()) {
            iovec iov[max_iov];
            int n = c.out.gather(iov, max_iov, opt_.max_write);
            std::size_t offered = 0;
            for (int i = 0; i < n; ++i) offered += iov[i].iov_len;
            net::io_result r = net::send_some(c.fd, iov, n);
            trace_io("write", c, r);
            if (r.status == net::io::error) {
                if (c.state == connection::phase::open) {
                    hub_.close(c, close_mode::abort, std::strerror(r.err));
                } else {
                    finish(c);
                }
                return;
            }
            if (r.status == net::io::done) {
                c.out.consume(r.n);
                hub_.wrote(c, r.n);
            }
            if (r.n < offered && c.state == connection::phase::open) hub_.backlogged(c);
        }
        if (c.state == connection::phase::flushing && c.out.empty()) {
            if (c.read_eof) {
                finish(c);
                return;
            }
            // Shut the write side so the peer sees EOF after the last line, but keep
            // reading until it closes too: closing a socket with unread input sends a
            // reset, which can destroy the last lines before the peer reads them.
            ::shutdown(c.fd, SHUT_WR);
            c.state = connection::phase::draining;
        }
        update_interest(c);
    }

    void update_interest(connection& c) {
        if (c.state == connection::phase::done) return;
        bool open = c.state == connection::phase::open;
        unsigned want = c.read_eof || (open && c.throttled) ? io_none : io_read;
        if (!c.out.empty() && c.state != connection::phase::draining) want |= io_write;
        loop_.watch(c.fd, want);
    }

    // Called from settle(): the hub and the service have forgotten c.
    void begin_close(connection& c) {
        trace(1, "talkd: closing {} on fd {}: {}", c.peer, c.fd, c.reason);
        if (c.mode == close_mode::abort || c.state == connection::phase::done) {
            finish(c);
            return;
        }
        start_flushing(c);
    }

    // Closing: the output still queued gets linger_time to go out.
    void start_flushing(connection& c) {
        c.state = connection::phase::flushing;
        c.linger = loop_.timers().add_after(linger_time, [this, &c] {
            c.linger = 0;
            finish(c);
        });
        update_interest(c);
    }

    // Flood control: c is not read until its allowance has a line again. TCP's own
    // flow control then slows the sender down, and nobody else waits.
    void throttle(connection& c) {
        update_interest(c);
        if (c.throttle_timer) return;
        c.throttle_timer = loop_.timers().add_after(hub_.throttle_delay(c), [this, &c] {
            c.throttle_timer = 0;
            hub_.set_now(clock::now());
            if (c.state != connection::phase::open) return;
            if (hub_.resume(c)) {
                update_interest(c);
                arm_deadline(c);
            } else {
                throttle(c);
            }
        });
    }

    // Keeps a timer at c's next deadline (unfinished line, idle), never later than
    // the one already armed; check_deadlines() closes c when one has passed.
    void arm_deadline(connection& c) {
        clock::time_point next = hub_.check_deadlines(c);
        if (next == clock::time_point::max()) return;
        if (c.deadline_timer) {
            if (c.deadline_at <= next) return;  // an earlier look is due anyway
            loop_.timers().cancel(c.deadline_timer);
        }
        c.deadline_at = next;
        c.deadline_timer = loop_.timers().add(next, [this, &c] {
            c.deadline_timer = 0;
            hub_.set_now(clock::now());
            if (c.state == connection::phase::open) arm_deadline(c);
        });
    }

    // c is done: the loop forgets it now, reap() closes and frees it after the pass.
    void finish(connection& c) {
        if (c.state == connection::phase::done) return;
        c.state = connection::phase::done;
        loop_.watch(c.fd, io_none);
        for (timer_queue::id* t : {&c.linger, &c.throttle_timer, &c.deadline_timer}) {
            if (*t) loop_.timers().cancel(*t);
            *t = 0;
        }
        reap_.push_back(&c);
    }

    void reap() {
        for (connection* c : reap_) {
            trace(1, "talkd: closed {} on fd {}", c->peer, c->fd);
            ::close(c->fd);
            conns_[c->fd] = nullptr;
            --live_;
            delete c;
        }
        reap_.clear();
    }

    // ---- signals ----

    void begin_shutdown(std::string_view why) {
        stopping_ = true;
        log_.add(fmt::format("talkd: {}: shutting down", why));
        loop_.watch(listen_fd_, io_none);
        ::close(listen_fd_);
        listen_fd_ = -1;
        stop_console_input();
        std::vector<client*> everyone = hub_.clients();
        for (client* c : everyone) {
            hub_.reply(*c, "*** server shutting down");
            hub_.close(*c, close_mode::flush, "server shutting down");
        }
        loop_.timers().add_after(shutdown_grace, [this] {
            for (connection* c : conns_)
                if (c && c->state != connection::phase::done) finish(*c);
        });
    }

    // ---- the console ----

    // stdin as the operator's console, when there is one to read. A terminal whose
    // foreground job is another (talkd started with &, or put there with Ctrl-Z and
    // bg) is left alone and looked at again every second, until fg.
    void open_console() {
        std::string why_not;
        in_ = open_console_input(why_not);
        if (in_.fd >= 0) {
            if (int err = loop_.watch(in_.fd, io_read)) {
                why_not = err == EPERM
                              ? fmt::format("stdin is not something {} can watch", Backend::name)
                              : fmt::format("stdin cannot be watched ({})", std::strerror(err));
                release(in_);
            }
        }
        if (in_.fd >= 0) return;
        trace(1, "talkd: console input off: {}", why_not);
        if (console_in_background()) wait_for_foreground();
    }

    void wait_for_foreground() {
        loop_.timers().add_after(foreground_check, [this] {
            if (stopping_ || in_.fd >= 0) return;
            if (console_in_background()) {
                wait_for_foreground();
                return;
            }
            trace(1, "talkd: console input on: in the foreground");
            open_console();
        });
    }

    void read_console() {
        char buf[4096];
        net::io_result r = net::read_some(in_.fd, buf, sizeof buf);
        if (r.status == net::io::again) return;
        if (r.status == net::io::error && r.err == EIO && console_in_background()) {
            stop_console_input();  // sent to the background (Ctrl-Z, bg): until fg
            trace(1, "talkd: console input off: in the background (until fg)");
            wait_for_foreground();
            return;
        }
        if (r.status != net::io::done) {
            trace(1, "talkd: console input off: {}",
                  r.status == net::io::eof ? "end of input" : std::strerror(r.err));
            stop_console_input();
            return;
        }
        in_framer_.feed(
            {buf, r.n},
            [this](std::string_view line) {
                operator_input(line);
                return true;
            },
            [this] { log_.add("talkd: console line too long; ignored"); });
    }

    // A line the operator typed: a console command, or text for every client.
    void operator_input(std::string_view line) {
        switch (talk::operator_input(hub_, *service_, line)) {
            case operator_action::none: break;
            case operator_action::stats:
                print_stats(hub_, *service_, {Backend::name, opt_.service, started_, passes_, 0});
                break;
            case operator_action::shutdown:
                if (!stopping_) begin_shutdown("/shutdown on the console");
                break;
        }
    }

    void stop_console_input() {
        if (in_.fd < 0) return;
        loop_.watch(in_.fd, io_none);
        release(in_);
    }

    // The log first: its lines (a signal, a trace) tend to say why the console's
    // lines of the same pass happened.
    void flush_console() {
        flush_sink(err_, log_);
        flush_sink(out_, console_);
    }

    // Writes what the sink has pending without blocking; watches the descriptor while
    // a backlog remains. A sink whose reader is gone (EPIPE) is closed for good.
    void flush_sink(console_fd& fd, line_buffer& buf) {
        while (!buf.empty() && fd.fd >= 0) {
            std::string_view p = buf.pending();
            net::io_result r = net::write_some(fd.fd, p.data(), p.size());
            if (r.status == net::io::done) {
                buf.consume(r.n);
            } else if (r.status == net::io::again) {
                break;
            } else {
                loop_.watch(fd.fd, io_none);
                release(fd);
            }
        }
        if (fd.fd < 0) {
            buf.consume(buf.pending().size());
        } else if (fd.watchable) {
            loop_.watch(fd.fd, buf.empty() ? io_none : io_write);
        }
    }

    // At exit: the console gets a last moment to take its backlog.
    static void final_flush(console_fd& fd, line_buffer& buf) {
        auto deadline = std::chrono::steady_clock::now() + 500ms;
        while (!buf.empty() && fd.fd >= 0) {
            std::string_view p = buf.pending();
            net::io_result r = net::write_some(fd.fd, p.data(), p.size());
            if (r.status == net::io::done) {
                buf.consume(r.n);
                continue;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (r.status != net::io::again || left <= 0ms) break;
            pollfd p1{fd.fd, POLLOUT, 0};
            ::poll(&p1, 1, static_cast<int>(left.count()));
        }
    }

    // ---- the trace (-v, -vv, -vvv) ----

    template <class... Args>
    void trace(int level, fmt::format_string<Args...> f, Args&&... args) {
        if (opt_.verbose >= level) [[unlikely]]
            log_.add(fmt::format(f, std::forward<Args>(args)...));
    }

    void trace_wait(const wait_info& w) {
        if (opt_.verbose < 2) [[likely]]
            return;
        log_.add(fmt::format("talkd: wait {}: {} watched, {} ready after {:.3f} ms (timeout {})",
                             Backend::name, w.watched, w.ready, w.waited.count() / 1000.0,
                             w.timeout_ms < 0 ? std::string("none")
                                              : fmt::format("{} ms", w.timeout_ms)));
    }

    void trace_io(const char* what, const connection& c, const net::io_result& r) {
        if (opt_.verbose < 2) [[likely]]
            return;
        std::string result;
        switch (r.status) {
            case net::io::done: result = fmt::format("{} bytes", r.n); break;
            case net::io::again: result = "would block"; break;
            case net::io::eof: result = "end of input"; break;
            case net::io::error: result = std::strerror(r.err); break;
        }
        log_.add(fmt::format("talkd: {} fd {} ({}): {}", what, c.fd, c.peer, result));
        if (opt_.verbose >= 3)
            log_.add(fmt::format("talkd:   fd {}: {} bytes queued in {} entries, {} bytes of a line "
                                 "buffered; {} message chunks hold {} bytes",
                                 c.fd, c.out.bytes(), c.out.entries(), c.framer.partial_size(),
                                 hub_.arena().chunks(), hub_.arena().bytes()));
    }

    server_options opt_;
    line_buffer console_;  // stdout: the lecture's console lines
    line_buffer log_;      // stderr: diagnostics and the trace
    hub hub_;
    server_identity identity_;
    std::unique_ptr<service> service_;
    event_loop<Backend> loop_;

    int listen_fd_ = -1;
    int reserve_fd_ = -1;
    console_fd in_, out_, err_;
    line_framer in_framer_{4096};

    std::vector<connection*> conns_;  // by descriptor
    std::vector<connection*> reap_;
    std::vector<client*> writing_;
    std::size_t live_ = 0;  // connections not yet freed
    std::size_t max_clients_ = default_max_clients;
    std::uint64_t next_id_ = 1;
    std::uint64_t passes_ = 0;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    bool stopping_ = false;
    bool done_ = false;
    bool stopped_ = false;

    std::size_t read_size_;
    std::unique_ptr<char[]> scratch_;  // every read lands here; only partial lines are kept
};

}  // namespace talk
