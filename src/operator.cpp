#include "talk/operator.hpp"

#include <fmt/format.h>

#include "talk/command.hpp"
#include "talk/text.hpp"
#include "talk/version.hpp"

namespace talk {

operator_action operator_input(hub& h, service& s, std::string_view line) {
    auto cmd = parse_command(line);
    if (!cmd) {
        h.operator_line(message_text(line));
        return operator_action::none;
    }
    if (cmd->is("stats")) return operator_action::stats;
    if (cmd->is("shutdown")) return operator_action::shutdown;
    if (cmd->is("help")) {
        for (std::string_view l : {
                 "*** help: TEXT                 send TEXT to every client",
                 "*** help: //TEXT               send a line that starts with /",
                 "*** help: /who                 who is connected",
                 "*** help: /kick NAME [REASON]  disconnect someone (a nick or ip:port)",
                 "*** help: /stats               counters of this server",
                 "*** help: /shutdown            shut down gracefully, as SIGTERM does",
             })
            h.console().add(l);
    } else if (!s.operator_command(*cmd)) {
        h.console().add(sanitize(fmt::format("ERR unknown-command /{} (try /help)", cmd->name)));
    }
    return operator_action::none;
}

void print_stats(hub& h, const service& s, const server_counters& c) {
    const hub_stats& st = h.stats();
    long up = std::chrono::duration_cast<std::chrono::seconds>(clock::now() - c.started).count();
    std::string rooms = s.stats();
    line_buffer& out = h.console();
    out.add(fmt::format("*** stats: talkd {}, {} backend, {} service, up {}h{:02}m{:02}s", version,
                        c.backend, c.service, up / 3600, up / 60 % 60, up % 60));
    out.add(fmt::format("*** stats: {}{}{}, {} since start, {} dropped",
                        counted(h.clients().size(), "client"), rooms.empty() ? "" : " in ", rooms,
                        counted(st.connections, "connection"), st.dropped));
    out.add(fmt::format("*** stats: in {} lines, {} bytes; out {} messages, {} deliveries, {} bytes",
                        st.lines_in, st.bytes_in, st.messages, st.deliveries, st.bytes_out));
    if (c.threads)
        out.add(fmt::format("*** stats: {}; {} bytes in {}", counted(c.threads, "client thread"),
                            h.arena().bytes(), counted(h.arena().chunks(), "message chunk")));
    else
        out.add(fmt::format("*** stats: {}; {} bytes in {}", counted(c.passes, "loop pass", "loop passes"),
                            h.arena().bytes(), counted(h.arena().chunks(), "message chunk")));
}

}  // namespace talk
