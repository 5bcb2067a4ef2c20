// Socket and descriptor calls, in one place. EINTR is retried here, errno is taken at
// once, and hot-path I/O answers with a small status instead of throwing.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace talk::net {

// What a non-blocking read or write did.
enum class io { done, again, eof, error };

struct io_result {
    io status;
    std::size_t n = 0;  // bytes moved, when done
    int err = 0;        // errno, when error
};

io_result read_some(int fd, char* buf, std::size_t cap);
// Writes to a socket without ever raising SIGPIPE (sendmsg with MSG_NOSIGNAL).
io_result send_some(int fd, const iovec* iov, int iovcnt);
// Plain write(2), for the console's pipes and terminals.
io_result write_some(int fd, const char* buf, std::size_t len);

// An address as talkd shows it. IPv4-mapped IPv6 addresses are shown as IPv4.
struct endpoint {
    std::string host;        // "127.0.0.1", "::1"
    std::uint16_t port = 0;
    std::string text;        // "127.0.0.1:36588", "[::1]:36588"
};

endpoint describe(const sockaddr* sa);
endpoint local_endpoint(int fd);  // getsockname
endpoint peer_endpoint(int fd);   // getpeername

// A listening, non-blocking TCP socket on addr:port. An empty addr means every
// address: IPv6 dual-stack (accepting IPv4 as mapped addresses), or IPv4 only where
// IPv6 is unavailable. Returns the descriptor, or -1 with `error` set to one line
// naming what failed ("bind [::]:8888: Address already in use").
int listen_tcp(std::string_view addr, std::uint16_t port, std::string& error);

// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC, EINTR retried. Returns the descriptor
// and fills peer, or returns -errno.
int accept_client(int listen_fd, sockaddr_storage& peer);

// A TCP connection to host:port (name or address, resolved with getaddrinfo), in
// blocking mode. Returns the descriptor, or -1 with `error` set to one line, and
// `exit_code` to the sysexits code that fits (EX_NOHOST, EX_UNAVAILABLE, EX_OSERR).
int connect_tcp(std::string_view host, std::string_view port, std::string& error, int& exit_code);

bool set_nonblocking(int fd, bool on);

// TCP_NODELAY: the server already gathers a pass's output into one write, so
// Nagle's algorithm could only hold a small write back until the peer's delayed
// ACK (tens of milliseconds).
void set_nodelay(int fd);

// Sends one line and closes the connection at once, our side shut down and what the
// client already sent read away (up to 64 KiB), so the close is a FIN rather than a
// RST: for connections turned away at accept that cannot be watched while they linger
// (out of descriptors, a descriptor too large for select).
void refuse(int fd, std::string_view line);

}  // namespace talk::net
