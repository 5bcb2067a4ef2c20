// --backend=threads: the lecture's concurrent server, kept as the baseline the event
// loop must beat. One blocking thread per client, and the same hub and services as
// the event loop, under one mutex:
//
//   main thread     poll(listener, signal pipe), accept, start a thread per client
//   client thread   read() blocks; lock; hub.feed(); take the output; unlock; write
//   console thread  getline(stdin) blocks; lock; operator line or command; unlock
//   printer thread  writes console and log lines in order, so no client waits on it
//
// What differs from the event loop is who waits. Here every connection has a thread
// parked in read() with a stack of its own, and a message to a room is written by
// the sender's thread, one blocking send() per recipient. Output taken from the hub
// goes to a per-connection outbox; the first thread to find the outbox idle writes
// it, and threads arriving meanwhile only append (a combining writer), so bytes stay
// in order and a slow reader never holds the lock. It does hold the thread writing
// to it: each send() waits at most the send timeout, and a reader that falls
// --max-queue behind is dropped, but one that reads just fast enough to keep up
// keeps that thread writing for it, its own client unread meanwhile. That is the
// model's weakness, and the event loop's reason to exist. Each line is handled as it
// is read: one send per recipient per message, where the event loop writes each
// recipient once per pass.
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "talk/command.hpp"
#include "talk/console.hpp"
#include "talk/line_framer.hpp"
#include "talk/hub.hpp"
#include "talk/line_buffer.hpp"
#include "talk/net.hpp"
#include "talk/operator.hpp"
#include "talk/server.hpp"
#include "talk/services.hpp"
#include "talk/signals.hpp"
#include "talk/text.hpp"
#include "talk/version.hpp"

namespace talk {

namespace {

using namespace std::chrono_literals;

constexpr std::size_t thread_stack = 256u << 10;  // a client thread needs little
constexpr auto send_timeout = 10s;                // a reader stuck this long is dropped
constexpr auto shutdown_grace = 1s;
constexpr auto linger_time = 5s;                  // a closing client's time to take its output

struct tconn : client {
    using client::client;
    int fd = -1;
    std::mutex out_mu;     // guards everything below
    std::condition_variable idle;  // signalled when a writer finishes
    std::string outbox;    // taken from the hub's queue, not yet written
    bool writing = false;  // a thread is writing the outbox right now
    bool closed = false;   // the hub settled it: write what is left, then shut down
    bool broken = false;   // a write failed or timed out
    bool shut = false;     // shutdown() done
    bool released = false; // fd closed by the client's thread: its number is not ours
};

using conn_ptr = std::shared_ptr<tconn>;

class threads_server {
public:
    explicit threads_server(const server_options& opt)
        : opt_(opt), console_(1u << 20), log_(1u << 20), hub_(opt.limits, console_) {}

    int run() {
        std::string error;
        if (!signals::install(error)) return fail(EX_OSERR, error);
        listen_fd_ = net::listen_tcp(opt_.bind, opt_.port, error);
        if (listen_fd_ < 0) return fail(EX_UNAVAILABLE, "cannot listen: " + error);
        service_ = make_service(opt_.service, hub_, {"talkd", version, "threads"});
        hub_.attach(*service_);
        max_clients_ = opt_.max_clients ? opt_.max_clients : 10000;
        raise_fd_limit();
        // A blocked read() cannot see a deadline pass, so it wakes every quarter of
        // the shortest one to look (between 100 ms and 5 s).
        std::chrono::milliseconds shortest{0};
        for (auto t : {opt_.limits.line_timeout, opt_.limits.idle_timeout})
            if (t.count() > 0 && (shortest.count() == 0 || t < shortest)) shortest = t;
        if (shortest.count() > 0) tick_ = std::clamp<std::chrono::milliseconds>(shortest / 4, 100ms, 5000ms);

        std::thread(&threads_server::printer, this).detach();
        {
            std::lock_guard lock(hub_mu_);
            log_.add(fmt::format("talkd: listening on {} (threads)", net::local_endpoint(listen_fd_).text));
        }
        print_changed_.notify_one();
        std::string why_not;  // the same rule as the event loop's console
        if (console_input_wanted(why_not) || console_in_background()) {
            std::thread(&threads_server::console_reader, this).detach();
        }
        if (!why_not.empty()) note("talkd: console input off: " + why_not);

        accept_loop();
        shut_down();
        return 0;
    }

private:
    int fail(int status, const std::string& what) {
        std::fprintf(stderr, "talkd: %s\n", what.c_str());
        return status;
    }

    void raise_fd_limit() {
        rlimit rl{};
        ::getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }

    // ---- accepting ----

    void accept_loop() {
        net::set_nonblocking(listen_fd_, false);
        while (!stopping_) {
            pollfd p[2] = {{listen_fd_, POLLIN, 0}, {signals::wake_fd(), POLLIN, 0}};
            if (::poll(p, 2, -1) < 0 && errno != EINTR) break;
            if (p[1].revents) {
                if (int sig = signals::take()) {
                    stop_signal_ = sig;
                    break;
                }
            }
            if (!(p[0].revents & POLLIN)) continue;
            sockaddr_storage peer{};
            int fd = net::accept_client(listen_fd_, peer);
            if (fd < 0) {
                if (-fd == EMFILE || -fd == ENFILE) std::this_thread::sleep_for(100ms);
                continue;
            }
            net::set_nonblocking(fd, false);  // this model blocks, on purpose
        net::set_nodelay(fd);
            start_client(fd, peer);
        }
    }

    void start_client(int fd, const sockaddr_storage& peer) {
        std::unique_lock lock(hub_mu_);
        if (hub_.clients().size() >= max_clients_ || stopping_) {
            lock.unlock();
            net::refuse(fd, "ERR server-full try again later");
            return;
        }
        auto c = std::make_shared<tconn>(next_id_++, opt_.limits.max_line);
        c->fd = fd;
        net::endpoint p = net::describe(reinterpret_cast<const sockaddr*>(&peer));
        c->host = std::move(p.host);
        c->port = p.port;
        c->peer = std::move(p.text);
        c->local = net::local_endpoint(fd).text;
        timeval snd{std::chrono::duration_cast<std::chrono::seconds>(send_timeout).count(), 0};
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
        if (tick_.count() > 0) {  // read() returns now and then, so deadlines are checked
            timeval rcv{static_cast<time_t>(tick_.count() / 1000),
                        static_cast<suseconds_t>(tick_.count() % 1000 * 1000)};
            ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
        }
        conns_[c.get()] = c;
        ++threads_;

        auto* arg = new conn_ptr(c);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, thread_stack);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t t;
        int rc = pthread_create(&t, &attr, &threads_server::client_main, new std::pair(this, arg));
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            conns_.erase(c.get());
            --threads_;
            delete arg;
            lock.unlock();
            net::refuse(fd, "ERR server-full no thread for you; try again later");
            return;
        }
        if (opt_.verbose) log_.add(fmt::format("talkd: accepted {} on fd {} (thread)", c->peer, fd));
        hub_.set_now(clock::now());
        hub_.open(*c);
        post(lock);
    }

    static void* client_main(void* p) {
        auto* args = static_cast<std::pair<threads_server*, conn_ptr*>*>(p);
        threads_server* self = args->first;
        conn_ptr c = *args->second;
        delete args->second;
        delete args;
        self->serve(c);
        return nullptr;
    }

    // ---- one client's thread ----

    void serve(const conn_ptr& c) {
        std::vector<char> buf(opt_.max_input);
        for (;;) {
            ssize_t n = ::read(c->fd, buf.data(), buf.size());
            int err = errno;
            std::unique_lock lock(hub_mu_);
            if (c->closing) break;  // closed by the hub (quit, kick, limit): stop reading
            hub_.set_now(clock::now());
            if (n > 0) {
                hub_.stats().bytes_in += static_cast<std::size_t>(n);
                // As the lecture's server does: each line is handled when it is read,
                // its message sent to every recipient before the next line is looked
                // at. (The event loop instead gathers a whole pass of messages and
                // writes each recipient once; that batching is its own advantage.)
                std::string_view rest(buf.data(), static_cast<std::size_t>(n));
                while (!rest.empty() && !c->closing) {
                    std::size_t lf = rest.find('\n');
                    std::size_t take = lf == std::string_view::npos ? rest.size() : lf + 1;
                    hub_.feed(*c, rest.substr(0, take));
                    rest.remove_prefix(take);
                    while (c->throttled && !c->closing) {  // flood control: this thread just waits
                        auto delay = hub_.throttle_delay(*c);
                        post(lock);
                        std::this_thread::sleep_for(delay);
                        lock.lock();
                        hub_.set_now(clock::now());
                        hub_.resume(*c);
                    }
                    if (lf != std::string_view::npos && !rest.empty()) {
                        post(lock);
                        lock.lock();
                    }
                }
                hub_.check_deadlines(*c);
            } else if (n == 0) {
                hub_.feed_eof(*c);
            } else if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) {
                hub_.check_deadlines(*c);  // the receive tick: a silent client
            } else {
                hub_.close(*c, close_mode::abort, std::strerror(err));
            }
            post(lock);
            if (n == 0) break;
        }
        // Let the last output go out (a writer may be at it) for a while; then shut
        // the socket, so that a writer still blocked in send() returns at once, and
        // close only once no writer holds the descriptor: closed earlier, its number
        // could be reused by the next connection under that writer's feet.
        {
            std::unique_lock out(c->out_mu);
            c->idle.wait_for(out, linger_time, [&] { return (!c->writing && c->outbox.empty()) || c->broken; });
            ::shutdown(c->fd, SHUT_RDWR);
            c->idle.wait(out, [&] { return !c->writing; });
            c->released = true;  // a writer arriving later must not touch the number
        }
        ::close(c->fd);
        std::lock_guard lock(hub_mu_);
        conns_.erase(c.get());
        --threads_;
        gone_.notify_all();
    }

    // ---- after every hub call ----

    // Settles close requests and moves the output the hub queued into the outboxes,
    // under the lock; then unlocks and writes outside it.
    void post(std::unique_lock<std::mutex>& lock) {
        std::vector<conn_ptr> ready = collect();
        lock.unlock();
        flush(std::move(ready));
    }

    // Under the lock. Settles before and after taking the output, as the event loop's
    // pass does, so that no close request is left for a later caller: a client's
    // thread that sees its client closing may then exit at once.
    std::vector<conn_ptr> collect() {
        std::vector<conn_ptr> ready;
        auto settled = [&](client& cl) {
            auto& c = static_cast<tconn&>(cl);
            if (opt_.verbose) log_.add(fmt::format("talkd: closing {} on fd {}: {}", c.peer, c.fd, c.reason));
            std::lock_guard out(c.out_mu);
            c.closed = true;
            if (c.mode != close_mode::flush) c.outbox.clear();
            if (c.mode == close_mode::abort) c.broken = true;
            ready.push_back(conns_.at(&c));
        };
        hub_.settle(settled);
        for (client* cl : hub_.pending()) {
            auto& c = static_cast<tconn&>(*cl);
            cl->pending = false;
            iovec iov[64];
            std::lock_guard out(c.out_mu);
            while (!c.out.empty()) {
                int k = c.out.gather(iov, 64, SIZE_MAX);
                std::size_t n = 0;
                for (int i = 0; i < k; ++i) {
                    c.outbox.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
                    n += iov[i].iov_len;
                }
                c.out.consume(n);
                hub_.wrote(c, n);
            }
            // Only output piling up behind a write in progress means a slow reader.
            if (c.writing && c.outbox.size() > opt_.limits.max_queue && !c.closing) {
                c.outbox.clear();
                hub_.close(c, close_mode::abort,
                           fmt::format("output over {} bytes: not reading", opt_.limits.max_queue));
            }
            ready.push_back(conns_.at(&c));
        }
        hub_.pending().clear();
        hub_.settle(settled);
        hub_.arena().recycle();
        if (!console_.empty() || !log_.empty()) print_changed_.notify_one();
        return ready;
    }

    // Outside the lock: writes each outbox. Connections whose write failed are
    // closed and the consequences (their room told) written in turn, in a loop: a
    // thousand clients vanishing at once is a thousand rounds, not a thousand frames
    // of recursion on a small thread stack.
    void flush(std::vector<conn_ptr> ready) {
        while (!ready.empty()) {
            std::vector<conn_ptr> failed;
            for (const conn_ptr& c : ready)
                if (!deliver(c)) failed.push_back(c);
            if (failed.empty()) return;
            std::unique_lock lock(hub_mu_);
            for (const conn_ptr& c : failed) hub_.close(*c, close_mode::abort, "write failed or timed out");
            ready = collect();
        }
    }

    // The combining writer: whoever finds the outbox idle writes it, until empty.
    // Returns false when the write failed and the hub has not heard of it yet.
    bool deliver(const conn_ptr& c) {
        std::unique_lock out(c->out_mu);
        if (c->writing) return true;  // the thread at it will send what was appended
        if (c->released) return true;  // gone; the hub closed it before its thread ended
        c->writing = true;
        while (!c->outbox.empty() && !c->broken) {
            std::string chunk;
            chunk.swap(c->outbox);
            out.unlock();
            bool ok = send_all(c->fd, chunk);
            out.lock();
            if (!ok) c->broken = true;
        }
        c->writing = false;
        c->idle.notify_all();
        if ((c->closed || c->broken) && !c->shut) {
            c->shut = true;  // the client's own thread wakes from read() and closes
            ::shutdown(c->fd, c->broken ? SHUT_RDWR : SHUT_WR);
            if (c->closed) ::shutdown(c->fd, SHUT_RD);
        }
        return !(c->broken && !c->closed);
    }

    static bool send_all(int fd, std::string_view s) {
        while (!s.empty()) {
            ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;  // an error, or SO_SNDTIMEO passed
            s.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    // ---- the console ----

    // Reads stdin a line at a time. A terminal whose foreground job is another is
    // not read (the read would fail with EIO, or take the shell's input): the thread
    // looks again every second, until fg, as the event loop does.
    void console_reader() {
        line_framer framer(4096);
        char buf[4096];
        bool waiting = console_in_background();
        for (;;) {
            if (console_in_background()) {
                if (!waiting) note("talkd: console input off: in the background (until fg)");
                waiting = true;
                std::this_thread::sleep_for(1s);
                continue;
            }
            if (waiting) {
                waiting = false;
                note("talkd: console input on: in the foreground");
            }
            pollfd p{0, POLLIN, 0};
            if (::poll(&p, 1, 1000) <= 0) continue;  // timeout or EINTR: look again
            if (console_in_background()) continue;
            ssize_t n = ::read(0, buf, sizeof buf);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (n < 0 && errno == EIO && console_in_background()) continue;  // until fg
            if (n <= 0) {
                note(fmt::format("talkd: console input off: {}",
                                 n == 0 ? "end of input" : std::strerror(errno)));
                return;
            }
            framer.feed(
                {buf, static_cast<std::size_t>(n)},
                [this](std::string_view line) { return operator_line(line); },
                [this] { note("talkd: console line too long; ignored"); });
        }
    }

    // One line the operator typed; false once the server is stopping.
    bool operator_line(std::string_view line) {
        std::unique_lock lock(hub_mu_);
        if (stopping_) return false;
        hub_.set_now(clock::now());
        switch (operator_input(hub_, *service_, line)) {
            case operator_action::none: break;
            case operator_action::stats:
                print_stats(hub_, *service_, {"threads", opt_.service, started_, 0, threads_});
                break;
            case operator_action::shutdown:
                stop_requested_ = true;
                ::raise(SIGTERM);  // the same path as a signal: wakes the accept loop
                break;
        }
        post(lock);
        return true;
    }

    // A line for the log when -v is on.
    void note(std::string_view line) {
        if (!opt_.verbose) return;
        std::lock_guard lock(hub_mu_);
        log_.add(std::string(line));
        print_changed_.notify_one();
    }

    // Writes console and log lines in order, blocking; nobody else waits for it.
    void printer() {
        std::unique_lock lock(hub_mu_);
        for (;;) {
            print_changed_.wait(lock, [&] { return !console_.empty() || !log_.empty() || printer_stop_; });
            std::string out(console_.pending()), err(log_.pending());
            console_.consume(out.size());
            log_.consume(err.size());
            bool stop = printer_stop_ && out.empty() && err.empty();
            lock.unlock();
            if (!out.empty()) write_all(1, out);
            if (!err.empty()) write_all(2, err);
            lock.lock();
            if (stop) {
                printer_done_ = true;
                gone_.notify_all();
                return;
            }
        }
    }

    static void write_all(int fd, std::string_view s) {
        while (!s.empty()) {
            ssize_t n = ::write(fd, s.data(), s.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            s.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    // ---- shutting down ----

    void shut_down() {
        std::unique_lock lock(hub_mu_);
        stopping_ = true;
        log_.add(stop_requested_ ? std::string("talkd: /shutdown on the console: shutting down")
                                 : fmt::format("talkd: {}: shutting down", signal_name(stop_signal_)));
        ::close(listen_fd_);
        std::vector<client*> everyone = hub_.clients();
        for (client* c : everyone) {
            hub_.reply(*c, "*** server shutting down");
            hub_.close(*c, close_mode::flush, "server shutting down");
        }
        post(lock);
        lock.lock();
        gone_.wait_for(lock, shutdown_grace, [&] { return threads_ == 0; });
        printer_stop_ = true;
        print_changed_.notify_one();
        gone_.wait_for(lock, 500ms, [&] { return printer_done_; });
    }

    server_options opt_;
    line_buffer console_, log_;
    hub hub_;
    std::unique_ptr<service> service_;
    int listen_fd_ = -1;
    std::size_t max_clients_ = 0;
    std::chrono::milliseconds tick_{0};
    int stop_signal_ = 0;  // the signal that ended accept_loop()

    std::mutex hub_mu_;  // the hub, the service, conns_ and the counters below
    std::unordered_map<const client*, conn_ptr> conns_;
    std::size_t threads_ = 0;
    clock::time_point started_ = clock::now();
    std::uint64_t next_id_ = 1;
    bool stopping_ = false;
    bool stop_requested_ = false;
    bool printer_stop_ = false;
    bool printer_done_ = false;
    std::condition_variable print_changed_, gone_;
};

}  // namespace

int run_threads_server(const server_options& opt) {
    // Never destroyed: when run() returns, threads still blocked in read() or
    // getline() may be using it until the process exits.
    static threads_server* srv = new threads_server(opt);
    return srv->run();
}

}  // namespace talk
