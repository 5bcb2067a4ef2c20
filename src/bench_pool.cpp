#include "talk/bench/pool.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace talk::bench {

namespace {

bool is_loopback(const sockaddr* sa) {
    if (sa->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

}  // namespace

bool resolve_loopback(const std::string& host, const std::string& port, target& out, std::string& error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
        error = fmt::format("cannot resolve {} port {}: {}", host, port,
                            rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc));
        return false;
    }
    // Every address the name has must be loopback: a name that also resolves
    // elsewhere is not one to aim a load generator at.
    bool ok = true;
    for (addrinfo* ai = res; ai; ai = ai->ai_next)
        if (!is_loopback(ai->ai_addr)) ok = false;
    if (ok) {
        std::memcpy(&out.addr, res->ai_addr, res->ai_addrlen);
        out.len = res->ai_addrlen;
        out.text = fmt::format("{} port {}", net::describe(res->ai_addr).host, port);
    } else {
        error = fmt::format("{} is not a loopback address (127.0.0.0/8 or ::1): talkbench only loads "
                            "servers on this machine",
                            host);
    }
    ::freeaddrinfo(res);
    return ok;
}

bool ensure_descriptors(std::size_t needed, std::string& error) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return true;  // nothing known: try anyway
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= needed) return true;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < needed) {
        error = fmt::format("{} descriptors needed, but the hard limit (ulimit -Hn) is {}", needed,
                            static_cast<unsigned long long>(rl.rlim_max));
        return false;
    }
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        error = fmt::format("cannot raise the descriptor limit to {}: {}", needed, std::strerror(errno));
        return false;
    }
    return true;
}

pool::pool(const target& t, std::size_t count, std::size_t max_pending)
    : target_(t), max_pending_(max_pending), scratch_(max_tail + read_size) {
    conns_.reserve(count);  // never reallocated: handlers hold references
}

pool::~pool() { close_all(); }

conn& pool::add(unsigned char kind, std::uint32_t index) {
    conn& c = conns_.emplace_back();
    c.kind = kind;
    c.index = index;
    return c;
}

bool pool::open_more(std::string& error) {
    while (pending_ < max_pending_ && next_ < conns_.size()) {
        conn& c = conns_[next_];
        int fd = ::socket(target_.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            error = fmt::format("socket: {} (connection {} of {})", std::strerror(errno), next_ + 1,
                                conns_.size());
            return false;
        }
        // Messages are small and latency is measured: no Nagle delay on our side.
        int on = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        int rc;
        do rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&target_.addr), target_.len);
        while (rc < 0 && errno == EINTR);
        if (rc < 0 && errno != EINPROGRESS) {
            error = fmt::format("cannot connect to {}: {} (connection {} of {})", target_.text,
                                std::strerror(errno), next_ + 1, conns_.size());
            ::close(fd);
            return false;
        }
        if (int err = loop_.watch(fd, io_write)) {
            error = fmt::format("cannot watch descriptor {}: {}", fd, std::strerror(err));
            ::close(fd);
            return false;
        }
        c.fd = fd;
        c.state = conn::phase::connecting;
        if (static_cast<std::size_t>(fd) >= by_fd_.size()) by_fd_.resize(fd + 1024, none);
        by_fd_[fd] = static_cast<std::uint32_t>(next_);
        ++next_;
        ++pending_;
    }
    return true;
}

int pool::finish_connect(conn& c) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err != 0) return err;
    c.state = conn::phase::greeting;
    update_interest(c);
    return 0;
}

void pool::mark_ready(conn& c) {
    if (c.state == conn::phase::ready) return;
    c.state = conn::phase::ready;
    ++ready_;
    --pending_;
}

pool::input pool::read(conn& c) {
    if (c.tail.size() > max_tail) return {net::io::error, {}, EMSGSIZE};
    char* buf = scratch_.data();
    std::memcpy(buf, c.tail.data(), c.tail.size());
    net::io_result r = net::read_some(c.fd, buf + c.tail.size(), read_size);
    if (r.status != net::io::done) return {r.status, {}, r.err};
    return {net::io::done, {buf, c.tail.size() + r.n}, 0};
}

net::io_result pool::discard(conn& c) { return net::read_some(c.fd, scratch_.data(), scratch_.size()); }

bool pool::send(conn& c, std::string_view bytes, int& err) {
    if (c.out_off == c.out.size()) {
        c.out.clear();
        c.out_off = 0;
    }
    c.out.append(bytes);
    return flush(c, err);
}

bool pool::flush(conn& c, int& err) {
    bool had = false;
    while (c.out_off < c.out.size()) {
        had = true;
        iovec iov{c.out.data() + c.out_off, c.out.size() - c.out_off};
        net::io_result r = net::send_some(c.fd, &iov, 1);
        if (r.status == net::io::done) {
            c.out_off += r.n;
            continue;
        }
        if (r.status == net::io::again) break;
        err = r.status == net::io::error ? r.err : EPIPE;
        return false;
    }
    if (c.out_off == c.out.size()) {
        c.out.clear();
        c.out_off = 0;
    }
    if (had) update_interest(c);
    return true;
}

void pool::update_interest(conn& c) {
    if (c.fd < 0) return;
    unsigned want = c.state == conn::phase::connecting ? io_write : io_read;
    if (c.out_off < c.out.size()) want |= io_write;
    loop_.watch(c.fd, want);
}

void pool::close(conn& c) {
    if (c.fd < 0) return;
    loop_.watch(c.fd, io_none);
    by_fd_[c.fd] = none;
    ::close(c.fd);
    c.fd = -1;
    if (c.state != conn::phase::ready && c.state != conn::phase::closed && c.state != conn::phase::waiting)
        --pending_;
    if (c.state == conn::phase::ready) --ready_;
    c.state = conn::phase::closed;
}

void pool::close_all() {
    for (conn& c : conns_) close(c);
}

}  // namespace talk::bench
