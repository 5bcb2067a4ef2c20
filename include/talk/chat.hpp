// The chat service: the protocol of talk(7).
//
// Each line a client sends reaches every other client as "From <who>, <text>", and
// the console shows the same line. Lines the operator types reach every client as
// "From <server address>, <text>", the address being the one that client connected
// to, exactly as the lecture's client printed it.
#pragma once

#include <string_view>

#include "talk/hub.hpp"
#include "talk/services.hpp"

namespace talk {

class chat_service final : public service {
public:
    chat_service(hub& h, const server_identity& who) : hub_(h), who_(who) {}

    void line(client& c, std::string_view text) override;
    void operator_line(std::string_view text) override;

private:
    hub& hub_;
    server_identity who_;
};

}  // namespace talk
