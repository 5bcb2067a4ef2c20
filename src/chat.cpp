#include "talk/chat.hpp"

#include "talk/compose.hpp"

namespace talk {

void chat_service::line(client& c, std::string_view text) {
    if (text.empty()) return;  // empty lines are not relayed
    msg_slice m = compose(hub_.arena(), "From ", c.peer, ", ", untrusted{text});
    ++hub_.stats().messages;
    std::string_view shown = m.view();
    hub_.console().add(shown.substr(0, shown.size() - 1));
    hub_.broadcast(m, &c);
}

void chat_service::operator_line(std::string_view text) {
    if (!text.empty()) hub_.broadcast_from_server(text);
}

}  // namespace talk
