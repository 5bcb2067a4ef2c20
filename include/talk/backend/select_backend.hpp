// select(2): the oldest and most portable readiness call, and the one with the most traps.
//
// - select overwrites the sets it is given, so every wait copies the master sets first.
// - An fd_set is a fixed bitmap of FD_SETSIZE (1024) bits. FD_SET of a larger
//   descriptor writes past its end: a fortified glibc aborts, an unfortified build
//   silently corrupts the stack. can_watch() says no, and update() refuses, so the
//   caller must turn such a connection away instead.
// - The kernel and this code both scan every descriptor up to the highest one watched,
//   ready or not: the cost of a wait grows with the number of connections. That linear
//   cost is what the idle-scaling benchmark shows.
// - The highest descriptor is tracked so the scan stops there; removing it searches
//   downwards for the next one still watched.
#pragma once

#include <sys/select.h>

#include <cerrno>
#include <cstddef>
#include <span>
#include <string_view>

#include "talk/backend/contract.hpp"

namespace talk {

class select_backend {
public:
    static constexpr std::string_view name = "select";

    select_backend() noexcept {
        FD_ZERO(&read_set_);
        FD_ZERO(&write_set_);
    }

    bool can_watch(int fd) const noexcept { return fd >= 0 && fd < FD_SETSIZE; }

    int update(int fd, unsigned old_mask, unsigned new_mask) noexcept {
        if (!can_watch(fd)) return EINVAL;
        set_bit(read_set_, fd, new_mask & io_read);
        set_bit(write_set_, fd, new_mask & io_write);
        if (old_mask == io_none && new_mask != io_none) {
            ++count_;
            if (fd > max_fd_) max_fd_ = fd;
        } else if (old_mask != io_none && new_mask == io_none) {
            --count_;
            while (max_fd_ >= 0 && !FD_ISSET(max_fd_, &read_set_) &&
                   !FD_ISSET(max_fd_, &write_set_))
                --max_fd_;
        }
        return 0;
    }

    int wait(std::span<ready_event> out, int timeout_ms) noexcept {
        fd_set rd = read_set_;  // select writes its answer into these
        fd_set wr = write_set_;
        timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        int n = ::select(max_fd_ + 1, &rd, &wr, nullptr, timeout_ms < 0 ? nullptr : &tv);
        if (n < 0) return errno == EINTR ? 0 : -errno;
        std::size_t k = 0;
        for (int fd = 0; fd <= max_fd_ && n > 0 && k < out.size(); ++fd) {
            unsigned mask = (FD_ISSET(fd, &rd) ? io_read : 0u) | (FD_ISSET(fd, &wr) ? io_write : 0u);
            if (mask == io_none) continue;
            out[k++] = {fd, mask};
            n -= (mask & io_read ? 1 : 0) + (mask & io_write ? 1 : 0);  // select counts bits
        }
        return static_cast<int>(k);
    }

    std::size_t watched() const noexcept { return count_; }

private:
    static void set_bit(fd_set& set, int fd, bool on) noexcept {
        if (on)
            FD_SET(fd, &set);
        else
            FD_CLR(fd, &set);
    }

    fd_set read_set_;
    fd_set write_set_;
    int max_fd_ = -1;
    std::size_t count_ = 0;
};

static_assert(backend<select_backend>);

}  // namespace talk
