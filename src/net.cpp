#include "talk/net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sysexits.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace talk::net {

namespace {

io_result result_of(ssize_t n, int err) {
    if (n > 0) return {io::done, static_cast<std::size_t>(n), 0};
    if (n == 0) return {io::eof, 0, 0};
    if (err == EAGAIN || err == EWOULDBLOCK) return {io::again, 0, 0};
    return {io::error, 0, err};
}

std::string describe_error(int err) { return std::strerror(err); }

// One socket bound and listening on sa, or -1 with error and err set.
int listen_on(const sockaddr* sa, socklen_t len, std::string& error, int& err) {
    int fd = ::socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    err = errno;
    std::string where = describe(sa).text;
    if (fd < 0) {
        error = fmt::format("socket for {}: {}", where, describe_error(err));
        return -1;
    }
    int on = 1, off = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);  // quick restarts
    if (sa->sa_family == AF_INET6)  // "::" also accepts IPv4, whatever the system default
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    int rc = ::bind(fd, sa, len);
    const char* call = "bind";
    if (rc == 0) {
        rc = ::listen(fd, 511);
        call = "listen";
    }
    if (rc < 0) {
        err = errno;
        error = fmt::format("{} {}: {}", call, where, describe_error(err));
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

io_result read_some(int fd, char* buf, std::size_t cap) {
    ssize_t n;
    do n = ::read(fd, buf, cap);
    while (n < 0 && errno == EINTR);
    return result_of(n, errno);
}

io_result send_some(int fd, const iovec* iov, int iovcnt) {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<decltype(msg.msg_iovlen)>(iovcnt);
    ssize_t n;
    do n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n == 0) return {io::again, 0, 0};  // nothing taken: not an end of file
    return result_of(n, errno);
}

io_result write_some(int fd, const char* buf, std::size_t len) {
    ssize_t n;
    do n = ::write(fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n == 0) return {io::again, 0, 0};
    return result_of(n, errno);
}

endpoint describe(const sockaddr* sa) {
    endpoint e;
    char buf[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
        e.host = buf;
        e.port = ntohs(in->sin_port);
        e.text = fmt::format("{}:{}", e.host, e.port);
    } else if (sa->sa_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        e.port = ntohs(in6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            ::inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, sizeof buf);
            e.host = buf;
            e.text = fmt::format("{}:{}", e.host, e.port);
        } else {
            ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
            e.host = buf;
            e.text = fmt::format("[{}]:{}", e.host, e.port);
        }
    } else {
        e.host = "?";
        e.text = "?";
    }
    return e;
}

endpoint local_endpoint(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return {"?", 0, "?"};
    return describe(reinterpret_cast<sockaddr*>(&ss));
}

endpoint peer_endpoint(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return {"?", 0, "?"};
    return describe(reinterpret_cast<sockaddr*>(&ss));
}

int listen_tcp(std::string_view addr, std::uint16_t port, std::string& error) {
    if (addr.empty()) {
        sockaddr_in6 any6{};
        any6.sin6_family = AF_INET6;
        any6.sin6_addr = in6addr_any;
        any6.sin6_port = htons(port);
        int err = 0;
        int fd = listen_on(reinterpret_cast<sockaddr*>(&any6), sizeof any6, error, err);
        if (fd >= 0 || err == EADDRINUSE || err == EACCES) return fd;
        sockaddr_in any4{};  // no IPv6 here: IPv4 only
        any4.sin_family = AF_INET;
        any4.sin_addr.s_addr = htonl(INADDR_ANY);
        any4.sin_port = htons(port);
        return listen_on(reinterpret_cast<sockaddr*>(&any4), sizeof any4, error, err);
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string host(addr), service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
        error = fmt::format("cannot resolve bind address {}: {}", host, ::gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = listen_on(ai->ai_addr, ai->ai_addrlen, error, err);
    ::freeaddrinfo(res);
    return fd;
}

int accept_client(int listen_fd, sockaddr_storage& peer) {
    for (;;) {
        socklen_t len = sizeof peer;
        int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &len,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) return fd;
        if (errno != EINTR) return -errno;
    }
}

int connect_tcp(std::string_view host_sv, std::string_view port_sv, std::string& error, int& exit_code) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string host(host_sv), port(port_sv);
    if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
        error = fmt::format("cannot resolve {}: {}", host,
                            rc == EAI_SYSTEM ? describe_error(errno) : ::gai_strerror(rc));
        exit_code = EX_NOHOST;
        return -1;
    }
    int fd = -1, err = 0;
    for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int rc;
        do rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
        while (rc < 0 && errno == EINTR);
        if (rc < 0) {
            err = errno;
            ::close(fd);
            fd = -1;
        }
    }
    ::freeaddrinfo(res);
    if (fd < 0) {
        error = fmt::format("cannot connect to {} port {}: {}", host, port, describe_error(err));
        exit_code = err == ECONNREFUSED || err == ETIMEDOUT || err == EHOSTUNREACH ||
                            err == ENETUNREACH
                        ? EX_UNAVAILABLE
                        : EX_OSERR;
    }
    return fd;
}

bool set_nonblocking(int fd, bool on) {
    int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0) return false;
    int want = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return want == fl || ::fcntl(fd, F_SETFL, want) == 0;
}

void set_nodelay(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void refuse(int fd, std::string_view line) {
    std::string msg(line);
    msg.push_back('\n');
    iovec iov{msg.data(), msg.size()};
    send_some(fd, &iov, 1);  // a new socket's buffer is empty: this fits
    ::shutdown(fd, SHUT_WR);
    // Closing with unread input makes the kernel send RST, which can cost the client
    // the line just sent. Such a connection cannot linger (no descriptor to spare, or
    // none the backend can watch), so read away what has already arrived, bounded,
    // without waiting for more.
    char sink[4096];
    for (int i = 0; i < 16; ++i) {
        ssize_t n = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    ::close(fd);
}

}  // namespace talk::net
