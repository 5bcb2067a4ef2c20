// One client's output: the messages waiting until its socket takes them.
//
//   ring_  [ . . {chunk,off,len} {chunk,off,len} . . ]     a power-of-two ring
//                 ^ head_ (partly written)
//
// Each entry is a slice of a shared msg_chunk and holds one reference on it.
// push() of a slice that continues the last entry in the same chunk lengthens that
// entry instead, so a burst costs one entry. gather() fills an iovec array for one
// writev/sendmsg; consume() drops what the kernel took and releases the chunks no
// longer needed. An idle queue owns no memory.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

#include "talk/message.hpp"

namespace talk {

class out_queue {
public:
    out_queue() = default;
    ~out_queue() { clear(); }
    out_queue(const out_queue&) = delete;
    out_queue& operator=(const out_queue&) = delete;

    void push(const msg_slice& s) {
        if (s.len == 0) return;
        bytes_ += s.len;
        if (count_ > 0) {
            entry& last = ring_[(head_ + count_ - 1) & (cap_ - 1)];
            if (last.chunk == s.chunk && last.off + last.len == s.off) {
                last.len += s.len;
                return;
            }
        }
        if (count_ == cap_) grow();
        ring_[(head_ + count_) & (cap_ - 1)] = {s.chunk, s.off, s.len};
        ++count_;
        ref(s.chunk);
    }

    std::size_t bytes() const { return bytes_; }
    bool empty() const { return count_ == 0; }
    // The chunk the oldest queued message is in (queues fill in time order), or null.
    const msg_chunk* oldest_chunk() const { return count_ ? ring_[head_].chunk : nullptr; }
    std::size_t entries() const { return count_; }

    // Describes up to max_iov entries, at most max_bytes in all, from the front.
    // Returns the number of iovecs filled.
    int gather(iovec* iov, int max_iov, std::size_t max_bytes) const;

    // Drops n bytes from the front (n <= bytes()).
    void consume(std::size_t n);

    // Drops everything.
    void clear();

    // Drops everything not yet started, keeping only the rest of a line the kernel
    // has partly taken, so that the peer never sees a line cut short.
    void drop_unstarted();

private:
    struct entry {
        msg_chunk* chunk;
        std::uint32_t off;
        std::uint32_t len;
    };
    void grow();

    entry* ring_ = nullptr;
    std::uint32_t cap_ = 0;
    std::uint32_t head_ = 0;
    std::uint32_t count_ = 0;
    std::size_t bytes_ = 0;
    bool head_started_ = false;  // the kernel took part of the head entry
};

}  // namespace talk
