#include "talk/out_queue.hpp"

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <cstring>
#include <new>

namespace talk {

namespace {
constexpr std::uint32_t min_ring = 4;
constexpr std::uint32_t keep_ring = 64;  // an emptied ring larger than this is freed
}  // namespace

void out_queue::grow() {
    std::uint32_t cap = cap_ ? cap_ * 2 : min_ring;
    auto* ring = static_cast<entry*>(std::malloc(sizeof(entry) * cap));
    if (!ring) throw std::bad_alloc();
    for (std::uint32_t i = 0; i < count_; ++i) ring[i] = ring_[(head_ + i) & (cap_ - 1)];
    std::free(ring_);
    ring_ = ring;
    cap_ = cap;
    head_ = 0;
}

int out_queue::gather(iovec* iov, int max_iov, std::size_t max_bytes) const {
    int n = 0;
    std::size_t total = 0;
    for (std::uint32_t i = 0; i < count_ && n < max_iov && total < max_bytes; ++i) {
        const entry& e = ring_[(head_ + i) & (cap_ - 1)];
        std::size_t len = std::min<std::size_t>(e.len, max_bytes - total);
        iov[n].iov_base = e.chunk->data() + e.off;
        iov[n].iov_len = len;
        total += len;
        ++n;
    }
    return n;
}

void out_queue::consume(std::size_t n) {
    assert(n <= bytes_);
    bytes_ -= n;
    while (n > 0) {
        entry& e = ring_[head_];
        if (n < e.len) {
            e.off += static_cast<std::uint32_t>(n);
            e.len -= static_cast<std::uint32_t>(n);
            // A merged entry holds many lines: only a cut inside one is a started line.
            head_started_ = e.chunk->data()[e.off - 1] != '\n';
            return;
        }
        n -= e.len;
        head_started_ = false;
        unref(e.chunk);
        head_ = (head_ + 1) & (cap_ - 1);
        --count_;
    }
    if (count_ == 0) {
        head_ = 0;
        if (cap_ > keep_ring) {
            std::free(ring_);
            ring_ = nullptr;
            cap_ = 0;
        }
    }
}

void out_queue::clear() {
    for (std::uint32_t i = 0; i < count_; ++i) unref(ring_[(head_ + i) & (cap_ - 1)].chunk);
    std::free(ring_);
    ring_ = nullptr;
    cap_ = count_ = head_ = 0;
    bytes_ = 0;
    head_started_ = false;
}

void out_queue::drop_unstarted() {
    if (count_ == 0) return;
    if (!head_started_) {
        clear();
        return;
    }
    entry kept = ring_[head_];
    const char* p = kept.chunk->data() + kept.off;
    if (auto* nl = static_cast<const char*>(std::memchr(p, '\n', kept.len)))
        kept.len = static_cast<std::uint32_t>(nl - p + 1);
    for (std::uint32_t i = 1; i < count_; ++i) unref(ring_[(head_ + i) & (cap_ - 1)].chunk);
    ring_[head_] = kept;
    count_ = 1;
    bytes_ = kept.len;
}

}  // namespace talk
