// Lines waiting for a reader that may be slow: the server's console (stdout) and its
// diagnostics (stderr). Bounded: when the reader falls behind by more than `max`
// bytes, new lines are dropped and counted, and once the backlog is written a
// note says how many were lost. A paused terminal (Ctrl-S) or a full pipe must
// never stall the server or grow its memory.
//
//   buf_  [ already written | pending ........ ]
//                           ^ head_
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace talk {

class line_buffer {
public:
    explicit line_buffer(std::size_t max) : max_(max) {}

    // Queues line plus a newline; drops it when the backlog is full.
    void add(std::string_view line) {
        if (buf_.size() - head_ + line.size() + 1 > max_) {
            ++dropped_;
            return;
        }
        if (head_ > 0 && head_ >= buf_.size() / 2) {  // compact before growing
            buf_.erase(0, head_);
            head_ = 0;
        }
        buf_.append(line);
        buf_.push_back('\n');
    }

    std::string_view pending() const { return {buf_.data() + head_, buf_.size() - head_}; }
    bool empty() const { return head_ == buf_.size(); }

    // Marks n bytes of pending() as written.
    void consume(std::size_t n) {
        head_ += n;
        if (head_ < buf_.size()) return;
        buf_.clear();
        head_ = 0;
        if (dropped_ > 0) {
            std::string note = "talkd: " + std::to_string(dropped_) +
                               " lines dropped here: this output was not read fast enough";
            dropped_ = 0;
            add(note);
        }
        if (buf_.capacity() > max_ / 4 && buf_.empty()) std::string().swap(buf_);
    }

    std::size_t dropped() const { return dropped_; }

private:
    std::string buf_;
    std::size_t head_ = 0;
    std::size_t max_;
    std::size_t dropped_ = 0;
};

}  // namespace talk
