// Fuzz target: talk::line_framer against a naive reference splitter.
//
// Input:  byte 0   max_line = 1 + (b & 63); bit 6: call finish() at the end;
//                  bit 7: on_line may return false (stop early, as a throttled
//                  client or /quit does), the rest being fed again like hub::frame
//         byte 1   which lines stop: line i stops when bit (i % 8) is set
//         then     chunks, each a length byte n and the next n bytes (fewer at the end)
//
// The reference cuts the whole stream at every LF, drops one CR before it, and calls
// a line longer than max_line "too long". The framer must report exactly that
// sequence (a too-long line as one on_too_long() call), whatever the chunking, and
// keep at most max_line + 1 bytes of an unfinished line. (So a delivered line may
// still end in CR: "x\r\r\n" is the line "x\r", as line_framer.hpp documents; only
// one CR before the LF is dropped.)
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "talk/line_framer.hpp"

using fuzz::check;

namespace {

struct event {
    bool too_long = false;
    std::string line;
    std::size_t end = 0;  // stream offset just after the line's LF; 0: no LF (unterminated)
};

FUZZ_CHECKER std::vector<event> reference(std::string_view s, std::size_t max_line, bool finish) {
    std::vector<event> out;
    std::size_t pos = 0;
    auto add = [&](std::string_view raw, std::size_t end) {
        if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
        if (raw.size() > max_line)
            out.push_back({true, {}, end});
        else
            out.push_back({false, std::string(raw), end});
    };
    for (;;) {
        std::size_t lf = s.find('\n', pos);
        if (lf == std::string_view::npos) break;
        add(s.substr(pos, lf - pos), lf + 1);
        pos = lf + 1;
    }
    std::string_view tail = s.substr(pos);
    if (finish) {
        if (!tail.empty()) add(tail, 0);
    } else if (tail.size() > max_line + 1) {
        out.push_back({true, {}, 0});  // reported the moment it crossed the bound
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::size_t max_line = 1 + (data[0] & 63);
    const bool finish = data[0] & 0x40;
    const bool may_stop = data[0] & 0x80;
    const std::uint8_t stop_mask = data[1];

    std::vector<std::string_view> chunks;
    std::string stream;
    for (std::size_t i = 2; i < size;) {
        std::size_t n = data[i++];
        if (n > size - i) n = size - i;
        chunks.emplace_back(reinterpret_cast<const char*>(data + i), n);
        stream.append(chunks.back());
        i += n;
    }
    const std::vector<event> want = reference(stream, max_line, finish);

    talk::line_framer f(max_line);
    check(f.max_line() == max_line, "max_line() is what was given");
    std::size_t got = 0;       // events seen so far
    std::size_t lines = 0;     // on_line calls so far
    std::size_t fed_at = 0;    // stream offset of the view being fed
    std::size_t line_at = 0;   // stream offset of the unfinished line
    bool stopped = false;      // the last on_line call returned false

    auto on_line = [&](std::string_view line) {
        check(line.find('\n') == std::string_view::npos, "a line holds no LF", line);
        check(line.size() <= max_line, "a line is at most max_line bytes", line);
        check(got < want.size(), "no more lines than the reference", line);
        check(!want[got].too_long, "a line where the reference has a too-long one", line);
        check(line == want[got].line, "the line the reference has", line);
        ++got;
        bool go_on = !(may_stop && (stop_mask >> (lines++ % 8)) & 1);
        stopped = !go_on;
        return go_on;
    };
    auto on_too_long = [&] {
        check(got < want.size(), "no more too-long reports than the reference");
        check(want[got].too_long, "a too-long report where the reference has a line", want[got].line);
        ++got;
    };

    for (std::string_view chunk : chunks) {
        std::string_view rest = chunk;
        for (;;) {
            stopped = false;
            std::size_t used = f.feed(rest, on_line, on_too_long);
            check(used <= rest.size(), "feed() consumes at most what it is given");
            if (used == rest.size() && !stopped) break;
            // Stopped early: right after the LF of the line that said stop.
            check(stopped, "feed() consumes everything unless on_line said stop");
            check(used > 0 && rest[used - 1] == '\n', "a stop leaves the rest after an LF");
            check(want[got - 1].end == fed_at + used, "a stop consumes up to that line's LF");
            check(f.partial_size() == 0 && !f.in_line(), "nothing is held after a stop");
            fed_at += used;
            rest.remove_prefix(used);
        }
        fed_at += rest.size();
        if (std::size_t lf = chunk.rfind('\n'); lf != std::string_view::npos)
            line_at = fed_at - (chunk.size() - lf - 1);
        check(f.partial_size() <= max_line + 1, "at most max_line + 1 bytes held");
        std::string_view tail = std::string_view(stream).substr(line_at, fed_at - line_at);
        if (tail.size() > max_line + 1) {
            check(f.partial_size() == 0, "nothing held while skipping");
            check(f.skipped() == tail.size(), "skipped() counts the over-long line so far");
        } else {
            check(f.partial_size() == tail.size(), "the unfinished line is held whole");
            check(f.skipped() == 0, "skipped() is 0 when not skipping");
        }
        check(f.in_line() == !tail.empty(), "in_line() when a line is unfinished");
        f.shrink();
    }
    check(fed_at == stream.size(), "the whole stream was fed");
    if (finish) {
        // finish() ignores on_line's answer: there is nothing left to stop.
        f.finish(on_line, on_too_long);
        check(f.partial_size() == 0 && f.skipped() == 0 && !f.in_line(), "finish() leaves nothing");
    }
    check(got == want.size(), "as many lines and too-long reports as the reference");
    return 0;
}
