// Splits a byte stream into lines. Pure: no I/O, no allocation on the fast path.
//
// A line ends at LF; a CR right before the LF is dropped (so `nc` and `nc -C` agree).
// A line may arrive in any number of pieces, and one piece may hold many lines.
// Lines that end inside a piece are handed out as views into that piece, with no
// copy; only an unfinished tail is copied, into partial_.
//
// A line longer than max_line bytes (not counting CR LF) is never buffered past that
// bound: the moment it crosses it, on_too_long() is called once, the bytes so far are
// thrown away, and everything up to the next LF is skipped.
//
//     line_framer f(4096);
//     std::size_t used = f.feed(bytes,
//         [&](std::string_view line) { ...; return true; },   // false: stop here
//         [&] { ... });                                       // a line was too long
//
// feed() returns how many bytes it consumed: all of them, unless on_line returned
// false, in which case it stops right after that line's LF and the caller keeps the
// rest (input after /quit is ignored; a throttled client's input waits).
#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

namespace talk {

class line_framer {
public:
    explicit line_framer(std::size_t max_line) : max_line_(max_line) {}

    template <class OnLine, class OnTooLong>
    std::size_t feed(std::string_view in, OnLine&& on_line, OnTooLong&& on_too_long) {
        const char* const begin = in.data();
        const char* p = begin;
        const char* const end = begin + in.size();
        while (p < end) {
            auto* lf = static_cast<const char*>(std::memchr(p, '\n', end - p));
            if (!lf) {
                keep_tail(std::string_view(p, end - p), on_too_long);
                return in.size();
            }
            std::string_view piece(p, lf - p);
            p = lf + 1;
            if (discarding_) {  // the end of a line already reported as too long
                discarding_ = false;
                skipped_ = 0;
                continue;
            }
            bool go_on = true;
            if (partial_.empty()) {
                go_on = deliver(piece, on_line, on_too_long);
            } else if (partial_.size() + piece.size() > max_line_ + 1) {
                partial_.clear();  // too long even with a CR dropped: never join it
                on_too_long();
            } else {
                partial_.append(piece);
                go_on = deliver(partial_, on_line, on_too_long);
                partial_.clear();
            }
            if (!go_on) return p - begin;
        }
        return in.size();
    }

    // End of input: an unterminated last line is still a line.
    template <class OnLine, class OnTooLong>
    void finish(OnLine&& on_line, OnTooLong&& on_too_long) {
        if (!discarding_ && !partial_.empty()) deliver(std::string_view(partial_), on_line, on_too_long);
        partial_.clear();
        discarding_ = false;
        skipped_ = 0;
    }

    // Bytes of an unfinished line held here (0 while skipping an over-long line).
    std::size_t partial_size() const { return partial_.size(); }
    // Bytes of the over-long line being skipped so far (0 when not skipping).
    std::size_t skipped() const { return skipped_; }
    bool in_line() const { return !partial_.empty() || discarding_; }
    std::size_t max_line() const { return max_line_; }

    // Gives back the tail's memory when it grew large and is now idle.
    void shrink() {
        if (partial_.empty() && partial_.capacity() > 256) std::string().swap(partial_);
    }

private:
    template <class OnLine, class OnTooLong>
    bool deliver(std::string_view line, OnLine& on_line, OnTooLong& on_too_long) {
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.size() > max_line_) {
            on_too_long();
            return true;
        }
        return on_line(line);
    }

    template <class OnTooLong>
    void keep_tail(std::string_view tail, OnTooLong& on_too_long) {
        if (discarding_) {
            skipped_ += tail.size();
            return;
        }
        // max_line_ + 1 leaves room for a CR whose LF has not arrived yet.
        if (partial_.size() + tail.size() > max_line_ + 1) {
            skipped_ = partial_.size() + tail.size();
            partial_.clear();
            discarding_ = true;
            on_too_long();
            return;
        }
        partial_.append(tail);
    }

    std::string partial_;
    std::size_t max_line_;
    std::size_t skipped_ = 0;
    bool discarding_ = false;
};

}  // namespace talk
