#include "talk/services.hpp"

#include "talk/chat.hpp"
#include "talk/compose.hpp"
#include "talk/text.hpp"

#include <fmt/format.h>

namespace talk {

namespace {

// What echo and reverse share: the operator's lines reach everyone, and the console
// can list and kick clients by address.
class line_service : public service {
public:
    explicit line_service(hub& h) : hub_(h) {}

    void operator_line(std::string_view text) override {
        if (!text.empty()) hub_.broadcast_from_server(text);
    }

    bool operator_command(const command& cmd) override {
        if (cmd.is("who")) {
            std::size_t n = 0;
            for (client* c : hub_.clients())
                if (!c->closing && n++ < 50) hub_.console().add(fmt::format("*** who: {}", c->peer));
            if (n > 50) hub_.console().add(fmt::format("*** who: ... and {} more", n - 50));
            hub_.console().add(fmt::format("*** who: {} connected", n));
            return true;
        }
        if (cmd.is("kick")) {
            auto [name, rest] = split_word(cmd.args);
        std::string_view reason = trim(rest);
            for (client* c : hub_.clients()) {
                if (c->closing || c->peer != name) continue;
                std::string why = reason.empty() ? std::string("by the operator")
                                                 : sanitize(fmt::format("by the operator: {}", reason));
                hub_.close(*c, close_mode::drop, "kicked " + why, "ERR kicked " + why);
                return true;
            }
            hub_.console().add(sanitize(fmt::format("ERR no-such-user {} is not here", name)));
            return true;
        }
        return false;
    }

protected:
    hub& hub_;
};

// echo: every line comes back as it was sent (made safe for a terminal).
class echo_service final : public line_service {
public:
    using line_service::line_service;
    void line(client& c, std::string_view text) override {
        hub_.send(c, compose(hub_.arena(), untrusted{text}));
    }
};

// reverse: every line comes back reversed by code point, as the lecture's first
// server did with bytes.
class reverse_service final : public line_service {
public:
    using line_service::line_service;
    void line(client& c, std::string_view text) override {
        hub_.send(c, compose(hub_.arena(), untrusted{reverse_utf8(text)}));
    }
};

}  // namespace

std::unique_ptr<service> make_service(std::string_view name, hub& h, const server_identity& who) {
    if (name == "chat") return std::make_unique<chat_service>(h, who);
    if (name == "echo") return std::make_unique<echo_service>(h);
    if (name == "reverse") return std::make_unique<reverse_service>(h);
    return nullptr;
}

}  // namespace talk
