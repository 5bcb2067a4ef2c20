// The chat service: the protocol of talk(7).
//
// Each line a client sends is a message to its room ("From <who>, <text>" to every
// other member) or, starting with '/', a command: /nick, /who, /msg, /me, /join,
// /rooms, /quit, /help. Everyone starts in the lobby, where talk behaves exactly as
// the lecture's talk program did. Lines the operator types reach every client as
// "From <server address>, <text>".
//
// Every line the service writes starts with one of a few fixed prefixes, and client
// text only ever comes after one of them, sanitised:
//
//   From <who>, <text>            a message in your room
//   From <who> (private), <text>  a private message to you
//   To <who> (private), <text>    your private message, confirmed
//   * <who> <text>                an action (/me)
//   *** <notice>                  the server speaking (joins, leaves, replies)
//   ERR <code> <sentence>         your last line was refused, and why
//
// <who> is a nick or, before /nick, the client's address. Nicks start with a letter
// and hold only letters, digits, '-' and '_', so they contain no blank, comma,
// colon or dot: no nick can look like an address, a marker or the server.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "talk/command.hpp"
#include "talk/hub.hpp"
#include "talk/services.hpp"

namespace talk {

class chat_service final : public service {
public:
    static constexpr std::string_view lobby = "lobby";
    static constexpr std::size_t max_listed = 50;  // /who and /rooms lines before "... and N more"

    chat_service(hub& h, const server_identity& who);

    void joined(client& c) override;
    void line(client& c, std::string_view text) override;
    void left(client& c) override;
    void operator_line(std::string_view text) override;
    bool operator_command(const command& cmd) override;
    std::string stats() const override;

private:
    struct room {
        std::string name;
        std::vector<client*> members;
    };
    struct member {
        std::string nick;   // empty before /nick
        std::string who;    // the nick, or the address before /nick
        room* in = nullptr;
        std::size_t slot = 0;  // index in in->members
    };

    // commands
    void run(client& c, member& m, const command& cmd);
    void nick(client& c, member& m, std::string_view args);
    void who(client& c);
    void msg(client& c, member& m, std::string_view args);
    void me(client& c, member& m, std::string_view args);
    void join(client& c, member& m, std::string_view args);
    void rooms(client& c);
    void quit(client& c, member& m, std::string_view args);
    void help(client& c);

    // rooms
    room& room_named(const std::string& name);
    void enter(client& c, member& m, room& r);
    void leave(client& c, member& m);
    void to_room(const room& r, const msg_slice& s, const client* except = nullptr);
    void notice(const room& r, std::string_view text, bool on_console);

    client* find(std::string_view name_or_address);
    member& of(client& c) { return members_.at(&c); }
    void error(client& c, std::string_view code, std::string_view sentence);
    void console_line(const room& r, std::string_view prefix, std::string_view who, std::string_view sep,
                      std::string_view text);
    template <class Out>
    void list_who(Out&& out);
    template <class Out>
    void list_rooms(Out&& out);

    hub& hub_;
    server_identity id_;
    std::unordered_map<const client*, member> members_;
    std::unordered_map<std::string, client*> by_nick_;  // folded nick -> client
    std::map<std::string, room> rooms_;                 // sorted, for /rooms
};

}  // namespace talk
