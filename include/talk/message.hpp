// Formatted output, written once and shared by every queue that holds it.
//
//   msg_chunk   [ refs size cap arena | "From a, hi\n" "From b, yo\n" "* c waves\n" ....free.... ]
//                                       ^-- slice --^  ^-- slice --^
//
// A message is formatted once, straight into the arena's current chunk, right after
// the previous one. A recipient's queue (out_queue) holds slices {chunk, offset,
// length} and one reference on the chunk per queue entry. Nothing is copied or
// allocated per recipient: delivering a message to a thousand clients costs a
// thousand slice appends, and a slice that starts where a queue's last entry ends
// merely lengthens that entry, so a burst of messages to a room becomes one entry
// per recipient and one write() each.
//
// Lifetime: a chunk lives while any queue entry refers to it; the arena holds one
// more reference on its current chunk, and on every chunk it filled since the last
// recycle(). So a slice from commit() that no queue took is valid until the arena's
// next recycle(), which the server calls once per loop iteration after all queues
// have taken what they need.
//
// The arena counts the bytes its chunks hold: with messages shared, that, and not
// clients x queue size, is what all the queues together cost in memory.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace talk {

class message_arena;

struct msg_chunk {
    std::uint32_t refs;
    std::uint32_t size;    // bytes used
    std::uint32_t cap;     // bytes of storage after the header
    std::uint64_t serial;  // allocation order: a lower serial holds older messages
    message_arena* arena;
    char* data() { return reinterpret_cast<char*>(this + 1); }
};

struct msg_slice {
    msg_chunk* chunk = nullptr;
    std::uint32_t off = 0;
    std::uint32_t len = 0;
    std::string_view view() const { return {chunk->data() + off, len}; }
    bool empty() const { return len == 0; }
};

class message_arena {
public:
    static constexpr std::size_t default_chunk = 64 * 1024;

    explicit message_arena(std::size_t chunk_size = default_chunk) : chunk_size_(chunk_size) {}
    ~message_arena();
    message_arena(const message_arena&) = delete;
    message_arena& operator=(const message_arena&) = delete;

    // Room for a message of at most `max` bytes; write it there, then commit().
    char* reserve(std::size_t max);
    // Makes the `len` bytes written at the last reserve() a message.
    msg_slice commit(std::size_t len);
    // A message made of the bytes of s.
    msg_slice copy(std::string_view s);

    // Once per loop iteration, when no slice outside a queue is held any more: lets
    // go of the chunks filled since the last call (freed unless a queue holds them),
    // and rewinds the current chunk if no queue refers to it, so a quiet server
    // reuses one chunk.
    void recycle();

    std::size_t bytes() const { return bytes_; }  // storage held by live chunks
    std::size_t chunks() const { return chunks_; }

    // Called by unref() when the last reference goes.
    void release(msg_chunk* c);

private:
    msg_chunk* allocate(std::size_t cap);

    std::size_t chunk_size_;
    msg_chunk* cur_ = nullptr;
    msg_chunk* spare_ = nullptr;  // one free chunk kept to avoid malloc churn
    std::vector<msg_chunk*> retired_;  // filled since the last recycle(), still referenced
    std::size_t bytes_ = 0;
    std::size_t chunks_ = 0;
    std::size_t reserved_ = 0;
    std::uint64_t serial_ = 0;
};

inline void ref(msg_chunk* c) { ++c->refs; }
inline void unref(msg_chunk* c) {
    assert(c->refs > 0);
    if (--c->refs == 0) c->arena->release(c);
}

}  // namespace talk
