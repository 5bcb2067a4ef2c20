#include "talk/chat.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "talk/compose.hpp"
#include "talk/text.hpp"

namespace talk {

chat_service::chat_service(hub& h, const server_identity& who) : hub_(h), id_(who) {
    room_named(std::string(lobby));
}

// ---- lines in ----

void chat_service::joined(client& c) {
    member& m = members_[&c];
    m.who = c.peer;
    hub_.reply(c, fmt::format("*** Welcome to {} {} ({} backend). You are {} in {}. "
                              "Type /help for commands.",
                              id_.name, id_.version, id_.backend, c.peer, lobby));
    room& r = room_named(std::string(lobby));
    // Others in the lobby hear of the arrival; the console already said "Connected to".
    to_room(r, compose(hub_.arena(), "*** ", m.who, " joined ", lobby), &c);
    enter(c, m, r);
}

void chat_service::line(client& c, std::string_view text) {
    member& m = of(c);
    if (auto cmd = parse_command(text)) {
        run(c, m, *cmd);
        return;
    }
    text = message_text(text);
    if (text.empty()) return;  // empty lines are not relayed
    msg_slice s = compose(hub_.arena(), "From ", m.who, ", ", untrusted{text});
    ++hub_.stats().messages;
    to_room(*m.in, s, &c);
    if (m.in->name == lobby) {  // the console's line is the very same bytes
        std::string_view shown = s.view();
        hub_.console().add(shown.substr(0, shown.size() - 1));
    } else {
        console_line(*m.in, "From ", m.who, ", ", text);
    }
}

void chat_service::left(client& c) {
    auto it = members_.find(&c);
    if (it == members_.end()) return;
    member& m = it->second;
    std::string room_was = m.in->name;
    leave(c, m);
    if (auto r = rooms_.find(room_was); r != rooms_.end())
        notice(r->second, fmt::format("{} left ({})", m.who, c.reason), false);
    if (!m.nick.empty()) by_nick_.erase(fold_case(m.nick));
    members_.erase(it);
}

void chat_service::operator_line(std::string_view text) {
    if (!text.empty()) hub_.broadcast_from_server(text);
}

// ---- commands ----

void chat_service::run(client& c, member& m, const command& cmd) {
    if (cmd.is("nick")) return nick(c, m, cmd.args);
    if (cmd.is("who") || cmd.is("names")) return who(c);
    if (cmd.is("msg")) return msg(c, m, cmd.args);
    if (cmd.is("me")) return me(c, m, cmd.args);
    if (cmd.is("join")) return join(c, m, cmd.args);
    if (cmd.is("rooms")) return rooms(c);
    if (cmd.is("quit")) return quit(c, m, cmd.args);
    if (cmd.is("help")) return help(c);
    error(c, "unknown-command", fmt::format("/{} (try /help)", cmd.name));
}

void chat_service::nick(client& c, member& m, std::string_view args) {
    auto [name, rest] = split_word(args);
    if (name.empty() || !rest.empty()) return error(c, "usage", "/nick NAME");
    if (name_error e = check_nick(name); e != name_error::none) {
        if (e == name_error::reserved) return error(c, "nick-reserved", fmt::format("{} is reserved", name));
        return error(c, "bad-nick", describe(e));
    }
    std::string key = fold_case(name);
    if (auto it = by_nick_.find(key); it != by_nick_.end() && it->second != &c)
        return error(c, "nick-in-use", fmt::format("{} is already taken", of(*it->second).nick));
    if (m.nick == name) return hub_.reply(c, fmt::format("*** you are {} already", name));
    std::string old = m.who;
    if (!m.nick.empty()) by_nick_.erase(fold_case(m.nick));
    m.nick = name;
    m.who = name;
    by_nick_[key] = &c;
    notice(*m.in, fmt::format("{} is now {}", old, name), true);
}

void chat_service::who(client& c) {
    list_who([&](const std::string& l) { hub_.reply(c, l); });
}

void chat_service::msg(client& c, member& m, std::string_view args) {
    auto [target, text] = split_word(args);
    if (target.empty() || text.empty()) return error(c, "usage", "/msg NAME TEXT");
    client* t = find(target);
    if (!t) return error(c, "no-such-user", fmt::format("{} is not here", target));
    hub_.send(*t, compose(hub_.arena(), "From ", m.who, " (private), ", untrusted{text}));
    hub_.send(c, compose(hub_.arena(), "To ", of(*t).who, " (private), ", untrusted{text}));
    ++hub_.stats().messages;
}

void chat_service::me(client& c, member& m, std::string_view args) {
    if (trim(args).empty()) return error(c, "usage", "/me ACTION");
    to_room(*m.in, compose(hub_.arena(), "* ", m.who, " ", untrusted{args}), &c);
    console_line(*m.in, "* ", m.who, " ", args);
    ++hub_.stats().messages;
}

void chat_service::join(client& c, member& m, std::string_view args) {
    auto [name, rest] = split_word(args);
    if (name.empty() || !rest.empty()) return error(c, "usage", "/join ROOM");
    auto target = room_name(name);
    if (!target)
        return error(c, "bad-room", "a room name is 1 to 32 letters, digits, - and _ (a leading # is fine)");
    if (*target == m.in->name) return error(c, "already-there", fmt::format("you are in {} already", *target));
    std::string was = m.in->name;
    leave(c, m);
    if (auto r = rooms_.find(was); r != rooms_.end())
        notice(r->second, fmt::format("{} moved to {}", m.who, *target), true);
    room& r = room_named(*target);
    enter(c, m, r);
    notice(r, fmt::format("{} joined {} ({} here)", m.who, r.name, r.members.size()), true);
}

void chat_service::rooms(client& c) {
    list_rooms([&](const std::string& l) { hub_.reply(c, l); });
}

void chat_service::quit(client& c, member&, std::string_view args) {
    args = trim(args);
    hub_.reply(c, "*** goodbye");
    // The reason is the client's text: made safe here, since the console and the
    // trace print it too.
    hub_.close(c, close_mode::flush, args.empty() ? std::string("quit") : "quit: " + sanitize(args));
}

void chat_service::help(client& c) {
    static constexpr std::string_view lines[] = {
        "*** help: /nick NAME         choose your name (letters, digits, - and _)",
        "*** help: /who               who is here, and in which room (also /names)",
        "*** help: /msg NAME TEXT     a private message",
        "*** help: /me ACTION         an action: * you ACTION",
        "*** help: /join ROOM         move to another room (everyone starts in lobby)",
        "*** help: /rooms             the rooms and how many are in each",
        "*** help: /quit [REASON]     leave",
        "*** help: /help              this list",
        "*** help: //TEXT             send a line that starts with /",
        "*** help: anything else is a message to your room",
    };
    for (std::string_view l : lines) hub_.reply(c, l);
}

// ---- the operator's console commands ----

bool chat_service::operator_command(const command& cmd) {
    if (cmd.is("who") || cmd.is("names")) {
        list_who([&](const std::string& l) { hub_.console().add(l); });
        return true;
    }
    if (cmd.is("kick")) {
        auto [name, rest] = split_word(cmd.args);
        std::string_view reason = trim(rest);
        if (name.empty()) {
            hub_.console().add("ERR usage /kick NAME [REASON]");
        } else if (client* t = find(name); !t) {
            hub_.console().add(sanitize(fmt::format("ERR no-such-user {} is not here", name)));
        } else {
            std::string why = reason.empty() ? std::string("by the operator")
                                             : sanitize(fmt::format("by the operator: {}", reason));
            hub_.close(*t, close_mode::drop, "kicked " + why, "ERR kicked " + why);
        }
        return true;
    }
    return false;
}

std::string chat_service::stats() const {
    return counted(rooms_.size(), "room");
}

// ---- rooms and people ----

chat_service::room& chat_service::room_named(const std::string& name) {
    auto [it, fresh] = rooms_.try_emplace(name);
    if (fresh) it->second.name = name;
    return it->second;
}

void chat_service::enter(client& c, member& m, room& r) {
    m.in = &r;
    m.slot = r.members.size();
    r.members.push_back(&c);
}

void chat_service::leave(client& c, member& m) {
    room& r = *m.in;
    client* last = r.members.back();
    r.members[m.slot] = last;
    if (last != &c) of(*last).slot = m.slot;
    r.members.pop_back();
    m.in = nullptr;
    if (r.members.empty() && r.name != lobby) rooms_.erase(r.name);
}

void chat_service::to_room(const room& r, const msg_slice& s, const client* except) {
    for (client* x : r.members)
        if (x != except) hub_.send(*x, s);
}

void chat_service::notice(const room& r, std::string_view text, bool on_console) {
    to_room(r, compose(hub_.arena(), "*** ", untrusted{text}));
    if (!on_console) return;
    if (r.name == lobby)
        hub_.console().add(sanitize(fmt::format("*** {}", text)));
    else
        hub_.console().add(sanitize(fmt::format("*** [{}] {}", r.name, text)));
}

// The console overhears every room; outside the lobby it is told which.
void chat_service::console_line(const room& r, std::string_view prefix, std::string_view who,
                                std::string_view sep, std::string_view text) {
    if (r.name == lobby)
        hub_.console().add(fmt::format("{}{}{}{}", prefix, who, sep, sanitize(text)));
    else
        hub_.console().add(fmt::format("{}{} [{}]{}{}", prefix, who, r.name, sep, sanitize(text)));
}

client* chat_service::find(std::string_view name) {
    if (name.find(':') != std::string_view::npos) {  // an address: someone without a nick
        for (client* c : hub_.clients())
            if (!c->closing && c->peer == name) return c;
        return nullptr;
    }
    auto it = by_nick_.find(fold_case(name));
    return it == by_nick_.end() || it->second->closing ? nullptr : it->second;
}

void chat_service::error(client& c, std::string_view code, std::string_view sentence) {
    hub_.send(c, compose(hub_.arena(), "ERR ", code, " ", untrusted{sentence}));
}

template <class Out>
void chat_service::list_who(Out&& out) {
    std::vector<client*> here;
    for (client* c : hub_.clients())
        if (!c->closing) here.push_back(c);
    std::size_t shown = std::min(here.size(), max_listed);
    std::partial_sort(here.begin(), here.begin() + shown, here.end(), [&](client* a, client* b) {
        return of(*a).who < of(*b).who;
    });
    for (std::size_t i = 0; i < shown; ++i) {
        const member& m = of(*here[i]);
        if (m.nick.empty())
            out(fmt::format("*** who: {} in {}", here[i]->peer, m.in->name));
        else
            out(fmt::format("*** who: {} ({}) in {}", m.nick, here[i]->peer, m.in->name));
    }
    if (here.size() > shown) out(fmt::format("*** who: ... and {} more", here.size() - shown));
    out(fmt::format("*** who: {} connected", here.size()));
}

template <class Out>
void chat_service::list_rooms(Out&& out) {
    std::size_t shown = 0;
    for (const auto& [name, r] : rooms_) {
        if (shown == max_listed) {
            out(fmt::format("*** rooms: ... and {} more", rooms_.size() - shown));
            break;
        }
        out(fmt::format("*** rooms: {} {}", name, r.members.size()));
        ++shown;
    }
    out(fmt::format("*** rooms: {} in all", rooms_.size()));
}

}  // namespace talk
