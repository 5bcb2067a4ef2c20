// epoll(7), Linux: the kernel keeps the interest list, so a wait costs in proportion
// to the descriptors that are ready, not to the ones watched.
//
// - The interest list lives in the kernel, changed by epoll_ctl. The old and new
//   masks the loop passes pick the operation: ADD from nothing, DEL to nothing, MOD
//   otherwise. No shadow copy of the interest set is kept here.
// - epoll watches open files, not descriptor numbers: a descriptor must be removed
//   (DEL) before it is closed, or a dup of it keeps reporting events for a number that
//   now means something else. The loop forgets a descriptor before closing it.
// - epoll_ctl(ADD) fails with EPERM for regular files and /dev/null, which are always
//   "ready". A server started as `talkd ... </dev/null` meets this on stdin; update()
//   returns the errno and the caller treats that stdin as closed.
// - epoll_wait returns EINTR after SIGSTOP/SIGCONT even with SA_RESTART; select and
//   poll restart. It is reported as an empty wait, like a timeout.
// - Level-triggered mode, the default: no event is lost if a handler reads only part
//   of what is waiting (the server caps reads and writes per wakeup for fairness).
#pragma once

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

#include "talk/backend/contract.hpp"

namespace talk {

class epoll_backend {
public:
    static constexpr std::string_view name = "epoll";

    epoll_backend() : ep_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (ep_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    }
    ~epoll_backend() { ::close(ep_); }
    epoll_backend(const epoll_backend&) = delete;
    epoll_backend& operator=(const epoll_backend&) = delete;

    bool can_watch(int fd) const noexcept { return fd >= 0; }

    int update(int fd, unsigned old_mask, unsigned new_mask) noexcept {
        if (old_mask == new_mask) return 0;
        epoll_event ev{};
        ev.events = (new_mask & io_read ? EPOLLIN : 0u) | (new_mask & io_write ? EPOLLOUT : 0u);
        ev.data.fd = fd;
        int op = old_mask == io_none ? EPOLL_CTL_ADD
                 : new_mask == io_none ? EPOLL_CTL_DEL
                                       : EPOLL_CTL_MOD;
        if (::epoll_ctl(ep_, op, fd, &ev) < 0) return errno;
        if (op == EPOLL_CTL_ADD) ++count_;
        if (op == EPOLL_CTL_DEL) --count_;
        return 0;
    }

    int wait(std::span<ready_event> out, int timeout_ms) {
        if (events_.size() < out.size()) events_.resize(out.size());
        int n = ::epoll_wait(ep_, events_.data(), static_cast<int>(out.size()), timeout_ms);
        if (n < 0) return errno == EINTR ? 0 : -errno;
        for (int i = 0; i < n; ++i) {
            std::uint32_t e = events_[i].events;
            unsigned mask = 0;
            if (e & EPOLLIN) mask |= io_read;
            if (e & EPOLLOUT) mask |= io_write;
            if (e & (EPOLLERR | EPOLLHUP)) mask |= io_read | io_write;
            out[i] = {events_[i].data.fd, mask};
        }
        return n;
    }

    std::size_t watched() const noexcept { return count_; }

private:
    int ep_;
    std::size_t count_ = 0;
    std::vector<epoll_event> events_;
};

static_assert(backend<epoll_backend>);

}  // namespace talk
