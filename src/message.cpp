#include "talk/message.hpp"

#include <cstring>
#include <new>

namespace talk {

message_arena::~message_arena() {
    // Queues must be emptied before the arena goes; the current chunk and the spare
    // are the arena's own.
    for (msg_chunk* c : retired_) unref(c);
    if (cur_) unref(cur_);
    if (spare_) {
        ::operator delete(spare_);
        spare_ = nullptr;
    }
}

msg_chunk* message_arena::allocate(std::size_t cap) {
    msg_chunk* c;
    if (cap == chunk_size_ && spare_) {
        c = spare_;
        spare_ = nullptr;
    } else {
        c = static_cast<msg_chunk*>(::operator new(sizeof(msg_chunk) + cap));
    }
    c->refs = 1;  // the arena's reference as current chunk
    c->size = 0;
    c->cap = static_cast<std::uint32_t>(cap);
    c->serial = ++serial_;
    c->arena = this;
    bytes_ += sizeof(msg_chunk) + cap;
    ++chunks_;
    return c;
}

void message_arena::release(msg_chunk* c) {
    bytes_ -= sizeof(msg_chunk) + c->cap;
    --chunks_;
    if (c->cap == chunk_size_ && !spare_)
        spare_ = c;
    else
        ::operator delete(c);
}

char* message_arena::reserve(std::size_t max) {
    if (!cur_ || cur_->cap - cur_->size < max) {
        // The old chunk keeps the arena's reference until recycle(): a message just
        // committed there may not be in any queue yet (its first recipient was
        // dropped, say, while the rest of the room is still to come).
        if (cur_) retired_.push_back(cur_);
        cur_ = allocate(max > chunk_size_ ? max : chunk_size_);
    }
    reserved_ = max;
    return cur_->data() + cur_->size;
}

msg_slice message_arena::commit(std::size_t len) {
    assert(cur_ && len <= reserved_);
    msg_slice s{cur_, cur_->size, static_cast<std::uint32_t>(len)};
    cur_->size += static_cast<std::uint32_t>(len);
    reserved_ = 0;
    return s;
}

msg_slice message_arena::copy(std::string_view s) {
    std::memcpy(reserve(s.size()), s.data(), s.size());
    return commit(s.size());
}

void message_arena::recycle() {
    for (msg_chunk* c : retired_) unref(c);
    retired_.clear();
    if (cur_ && cur_->refs == 1) cur_->size = 0;
}

}  // namespace talk
