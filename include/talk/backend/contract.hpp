// The backend contract: what select, poll and epoll have in common.
//
// A backend is the only code in talk that knows which readiness syscall is in use.
// Everything above it speaks this vocabulary and nothing else:
//
//   io_read, io_write   interest bits (what to watch) and readiness bits (what fired)
//   ready_event         one descriptor that is ready, with the bits that fired
//
// Every backend is a small class with the same members (the concept below checks them):
//
//   static constexpr std::string_view name;       "select", "poll" or "epoll"
//   bool can_watch(int fd) const;
//       false when this backend cannot watch fd at all (select: fd >= FD_SETSIZE).
//   int update(int fd, unsigned old_mask, unsigned new_mask);
//       start (old == io_none), change, or stop (new == io_none) watching fd.
//       The caller passes the mask it asked for last time, so a backend keeps no
//       shadow copy of the loop's view that could drift from it (libev does the same).
//       Returns 0, or an errno value when the kernel refused (epoll: EPERM for a
//       regular file or /dev/null); the descriptor is then not watched.
//   int wait(std::span<ready_event> out, int timeout_ms);
//       blocks until a watched descriptor is ready or timeout_ms passes (-1: no
//       timeout, 0: just look). Fills at most out.size() events and returns how
//       many; 0 on timeout or when a signal interrupted the wait (EINTR is normal:
//       after SIGSTOP/SIGCONT epoll_wait returns it); a negative errno on failure.
//       An error or hang-up on a descriptor is reported as io_read | io_write, so
//       that the ordinary read or write path meets it (EOF, ECONNRESET, EPIPE) and
//       handles it in one place.
//   std::size_t watched() const;
//       how many descriptors are watched (the trace prints it).
//
// Backends are level-triggered: a descriptor stays ready until its data is read or
// its buffer has room. Edge-triggered epoll is faster to get wrong than to run.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>
#include <string_view>

namespace talk {

enum io_mask : unsigned {
    io_none = 0,
    io_read = 1u << 0,
    io_write = 1u << 1,
};

struct ready_event {
    int fd;
    unsigned mask;  // io_read and/or io_write
};

template <class B>
concept backend = requires(B b, const B cb, int fd, unsigned mask, std::span<ready_event> out) {
    { B::name } -> std::convertible_to<std::string_view>;
    { cb.can_watch(fd) } -> std::same_as<bool>;
    { b.update(fd, mask, mask) } -> std::same_as<int>;
    { b.wait(out, 0) } -> std::same_as<int>;
    { cb.watched() } -> std::same_as<std::size_t>;
};

}  // namespace talk
