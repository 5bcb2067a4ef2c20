// poll(2): no FD_SETSIZE limit, but still a scan of every watched descriptor per wait.
//
// - The pollfd array is dense: it holds only watched descriptors, so the kernel and
//   the result scan touch as many entries as there are connections, not max_fd of them.
// - index_ maps a descriptor to its slot. Removing a descriptor moves the last slot
//   into the hole and fixes that moved descriptor's index (the bug Beej's pollserver
//   carried for years was skipping or misreading exactly this moved entry).
// - The kernel rewrites every revents on each call, so stale bits cannot leak from
//   one wait into the next.
// - POLLHUP, POLLERR and POLLNVAL arrive whether asked for or not. They are reported
//   as readable and writable: the read path then sees EOF or the error and closes
//   the connection, instead of the loop spinning on an event nobody handles.
#pragma once

#include <poll.h>

#include <cerrno>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "talk/backend/contract.hpp"

namespace talk {

class poll_backend {
public:
    static constexpr std::string_view name = "poll";

    bool can_watch(int fd) const noexcept { return fd >= 0; }

    int update(int fd, unsigned old_mask, unsigned new_mask) {
        if (fd < 0) return EINVAL;
        if (old_mask == io_none) {
            if (new_mask == io_none) return 0;
            if (static_cast<std::size_t>(fd) >= index_.size()) index_.resize(fd + 1, -1);
            index_[fd] = static_cast<int>(fds_.size());
            fds_.push_back({fd, events_for(new_mask), 0});
            return 0;
        }
        int slot = index_[fd];
        if (new_mask != io_none) {
            fds_[slot].events = events_for(new_mask);
            return 0;
        }
        fds_[slot] = fds_.back();  // swap-remove, then fix the moved entry's index
        index_[fds_[slot].fd] = slot;
        fds_.pop_back();
        index_[fd] = -1;
        return 0;
    }

    int wait(std::span<ready_event> out, int timeout_ms) noexcept {
        int n = ::poll(fds_.data(), fds_.size(), timeout_ms);
        if (n < 0) return errno == EINTR ? 0 : -errno;
        std::size_t k = 0;
        for (std::size_t i = 0; i < fds_.size() && n > 0 && k < out.size(); ++i) {
            short re = fds_[i].revents;
            if (re == 0) continue;
            --n;
            unsigned mask = 0;
            if (re & (POLLIN | POLLPRI)) mask |= io_read;
            if (re & POLLOUT) mask |= io_write;
            if (re & (POLLHUP | POLLERR | POLLNVAL)) mask |= io_read | io_write;
            out[k++] = {fds_[i].fd, mask};
        }
        return static_cast<int>(k);
    }

    std::size_t watched() const noexcept { return fds_.size(); }

private:
    static short events_for(unsigned mask) noexcept {
        return static_cast<short>((mask & io_read ? POLLIN : 0) | (mask & io_write ? POLLOUT : 0));
    }

    std::vector<pollfd> fds_;  // dense: one entry per watched descriptor
    std::vector<int> index_;   // fd -> slot in fds_, -1 when not watched
};

static_assert(backend<poll_backend>);

}  // namespace talk
