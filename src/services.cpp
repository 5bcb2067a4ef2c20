#include "talk/services.hpp"

#include "talk/chat.hpp"
#include "talk/compose.hpp"
#include "talk/text.hpp"

namespace talk {

namespace {

// echo: every line comes back as it was sent (made safe for a terminal).
class echo_service final : public service {
public:
    explicit echo_service(hub& h) : hub_(h) {}
    void line(client& c, std::string_view text) override {
        hub_.send(c, compose(hub_.arena(), untrusted{text}));
    }
    void operator_line(std::string_view text) override {
        if (!text.empty()) hub_.broadcast_from_server(text);
    }

private:
    hub& hub_;
};

// reverse: every line comes back reversed by code point, as the lecture's first
// server did with bytes.
class reverse_service final : public service {
public:
    explicit reverse_service(hub& h) : hub_(h) {}
    void line(client& c, std::string_view text) override {
        hub_.send(c, compose(hub_.arena(), untrusted{reverse_utf8(text)}));
    }
    void operator_line(std::string_view text) override {
        if (!text.empty()) hub_.broadcast_from_server(text);
    }

private:
    hub& hub_;
};

}  // namespace

std::unique_ptr<service> make_service(std::string_view name, hub& h, const server_identity& who) {
    if (name == "chat") return std::make_unique<chat_service>(h, who);
    if (name == "echo") return std::make_unique<echo_service>(h);
    if (name == "reverse") return std::make_unique<reverse_service>(h);
    return nullptr;
}

}  // namespace talk
