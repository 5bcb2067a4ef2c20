// End-to-end tests of the chat protocol of talk(7): nicks, /who, /msg, /me, rooms,
// /quit, /help, the operator's console commands, the echo and reverse services and
// the trace levels. A real talkd per test, real sockets, every backend; everything
// synchronises on lines read, never on sleeps.
//
// Most checks read the exact next line (read_line) rather than skipping to one, so
// that a line that should not have arrived shows up as a mismatch. "Nothing came"
// is proved with a marker: a line sent afterwards must be the very next one read.
#include "helpers.hpp"

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "talk/version.hpp"

using namespace talk::testing;
using namespace std::string_literals;

namespace {

using client_ptr = std::unique_ptr<line_client>;

std::string welcome_line(const std::string& backend, const line_client& c) {
    return "*** Welcome to talkd "s + talk::version + " (" + backend + " backend). You are " + c.name() +
           " in lobby. Type /help for commands.";
}

// The address the server's own lines come from, as clients on 127.0.0.1 see it.
std::string server_who(const talk_server& srv) { return "127.0.0.1:" + std::to_string(srv.port()); }

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

// Turns off Nagle's algorithm on a test client. A client that sends two short lines
// with no reply between them (a command, then a marker) would otherwise hold the
// second back until the server's delayed ACK, 40 ms later: correct, but slow.
line_client& nodelay(line_client& c) {
    int one = 1;
    ::setsockopt(c.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
}

// n clients connected one after the other. When it returns, each has read its welcome,
// each earlier one has read the later ones' "joined lobby", and the console has shown
// every "Connected to": all inputs are in step.
std::vector<client_ptr> lobby(talk_server& srv, int n) {
    std::vector<client_ptr> cs;
    for (int i = 0; i < n; ++i) {
        auto c = std::make_unique<line_client>(srv.port());
        nodelay(*c);
        auto w = c->read_line();
        REQUIRE(w);
        REQUIRE(starts_with(*w, "*** Welcome to talkd "));
        for (auto& o : cs) REQUIRE(o->read_line() == "*** " + c->name() + " joined lobby");
        REQUIRE(srv.console().line() == "Connected to : " + console_form(c->name()));
        cs.push_back(std::move(c));
    }
    return cs;
}

// Each of the clients reads `line` next.
void all_read(std::initializer_list<line_client*> cs, const std::string& line) {
    for (line_client* c : cs) CHECK(c->read_line() == line);
}

// Lines of the reader up to (not including) the first that starts with `end`, which
// is stored in *last. Used to collect a reply of unknown length, followed by a marker.
std::vector<std::string> lines_until(line_reader& in, std::string_view end, std::string* last) {
    std::vector<std::string> got;
    for (;;) {
        auto l = in.line();
        REQUIRE(l);
        if (starts_with(*l, end)) {
            *last = *l;
            return got;
        }
        got.push_back(*l);
    }
}

std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at < s.size()) {
        std::size_t nl = s.find('\n', at);
        if (nl == std::string::npos) nl = s.size();
        out.push_back(s.substr(at, nl - at));
        at = nl + 1;
    }
    return out;
}

bool any_line(const std::vector<std::string>& ls, const std::regex& re) {
    return std::any_of(ls.begin(), ls.end(), [&](const std::string& l) { return std::regex_search(l, re); });
}

bool any_containing(const std::vector<std::string>& ls, std::string_view part) {
    return std::any_of(ls.begin(), ls.end(),
                       [&](const std::string& l) { return l.find(part) != std::string::npos; });
}

std::string regex_escape(const std::string& s) {
    static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
    return std::regex_replace(s, special, R"(\$&)");
}

}  // namespace

// ---- 1. welcome ----

MODEL_TEST(chat_welcome, "chat: the welcome names version, backend and the client's address") {
    talk_server srv(on(backend));
    line_client a(srv.port());
    CHECK(a.read_line() == welcome_line(backend, a));
    CHECK(srv.console().line() == "Connected to : " + console_form(a.name()));
    line_client b(srv.port());
    CHECK(b.read_line() == welcome_line(backend, b));
    CHECK(a.read_line() == "*** " + b.name() + " joined lobby");
    // b was told nothing of a's arrival, which came before it.
    a.send_line("marker");
    CHECK(b.read_line() == "From " + a.name() + ", marker");
}

// ---- 2. /nick ----

MODEL_TEST(chat_nick, "chat: /nick renames, the room and the console are told") {
    talk_server srv(on(backend));
    auto cs = lobby(srv, 3);
    line_client &a = *cs[0], &b = *cs[1], &c = *cs[2];

    // c goes elsewhere: a rename is news for the renamer's room only.
    c.send_line("/join games");
    CHECK(c.read_line() == "*** " + c.name() + " joined games (1 here)");
    all_read({&a, &b}, "*** " + c.name() + " moved to games");
    CHECK(srv.console().line() == "*** " + c.name() + " moved to games");
    CHECK(srv.console().line() == "*** [games] " + c.name() + " joined games (1 here)");

    a.send_line("/nick alice");
    all_read({&a, &b}, "*** " + a.name() + " is now alice");
    CHECK(srv.console().line() == "*** " + a.name() + " is now alice");
    a.send_line("hi, I'm alice");
    CHECK(b.read_line() == "From alice, hi, I'm alice");
    CHECK(srv.console().line() == "From alice, hi, I'm alice");

    a.send_line("/nick alice");
    CHECK(a.read_line() == "*** you are alice already");
    a.send_line("/nick Alice");  // only the case: allowed, and a change
    all_read({&a, &b}, "*** alice is now Alice");
    CHECK(srv.console().line() == "*** alice is now Alice");

    b.send_line("/NICK bob");  // command names are case-blind
    all_read({&a, &b}, "*** " + b.name() + " is now bob");
    CHECK(srv.console().line() == "*** " + b.name() + " is now bob");
    b.send_line("and I'm bob");
    CHECK(a.read_line() == "From bob, and I'm bob");

    // c, in games, heard none of it; the operator reaches every room.
    srv.type("everyone");
    all_read({&c, &a, &b}, "From " + server_who(srv) + ", everyone");
}

MODEL_TEST(chat_nick_refused, "chat: refused nicks leave the nick unchanged; a gone nick is free") {
    talk_server srv(on(backend));
    auto cs = lobby(srv, 2);
    line_client &a = *cs[0], &b = *cs[1];
    a.send_line("/nick alice");
    all_read({&a, &b}, "*** " + a.name() + " is now alice");

    struct refusal {
        std::string line, reply;
        bool prefix_only;
    };
    const refusal refusals[] = {
        {"/nick", "ERR usage /nick NAME", false},
        {"/nick    ", "ERR usage /nick NAME", false},
        {"/nick a b", "ERR usage /nick NAME", false},
        {"/nick 1abc", "ERR bad-nick ", true},
        {"/nick a.b", "ERR bad-nick ", true},
        {"/nick a:b", "ERR bad-nick ", true},
        {"/nick ab,c", "ERR bad-nick ", true},
        {"/nick _ab", "ERR bad-nick ", true},
        {"/nick abcdefghijklmnopq", "ERR bad-nick ", true},  // 17
        {"/nick server", "ERR nick-reserved server is reserved", false},
        {"/nick Talkd", "ERR nick-reserved Talkd is reserved", false},
        {"/nick OPERATOR", "ERR nick-reserved OPERATOR is reserved", false},
        {"/nick ALICE", "ERR nick-in-use alice is already taken", false},
        {"/nick alice", "ERR nick-in-use alice is already taken", false},
    };
    for (const refusal& r : refusals) {
        INFO("b sent: " << r.line);
        b.send_line(r.line);
        auto reply = b.read_line();
        REQUIRE(reply);
        if (r.prefix_only) {
            CHECK(starts_with(*reply, r.reply));
            CHECK(reply->size() > r.reply.size());  // with a reason
        } else {
            CHECK(*reply == r.reply);
        }
        // Still b's address: no rename, and nobody was told anything.
        b.send_line("still me");
        CHECK(a.read_line() == "From " + b.name() + ", still me");
    }
    CHECK(srv.console_line_starting("From ") == "From " + b.name() + ", still me");

    b.send_line("/nick abcdefghijklmnop");  // 16: the longest allowed
    all_read({&a, &b}, "*** " + b.name() + " is now abcdefghijklmnop");

    a.close();
    CHECK(b.read_line() == "*** alice left (end of input)");
    b.send_line("/nick ALICE");
    CHECK(b.read_line() == "*** abcdefghijklmnop is now ALICE");
    line_client c(srv.port());
    nodelay(c);
    CHECK(c.read_line() == welcome_line(backend, c));
    c.send_line("/nick alice");
    CHECK(c.read_line() == "ERR nick-in-use ALICE is already taken");
    c.send_line("/nick abcdefghijklmnop");  // b's old nick is free too
    CHECK(c.read_line() == "*** " + c.name() + " is now abcdefghijklmnop");
}

// ---- 3. /who and /names ----

MODEL_TEST(chat_who, "chat: /who and /names list everyone sorted, with rooms, then the count") {
    talk_server srv(on(backend));
    auto cs = lobby(srv, 3);
    line_client &a = *cs[0], &b = *cs[1], &c = *cs[2];
    a.send_line("/nick carol");
    all_read({&a, &b, &c}, "*** " + a.name() + " is now carol");
    c.send_line("/nick bob");
    all_read({&a, &b, &c}, "*** " + c.name() + " is now bob");
    c.send_line("/join games");
    CHECK(c.read_line() == "*** bob joined games (1 here)");
    all_read({&a, &b}, "*** bob moved to games");

    // Sorted by who: an address (digits) before the nicks.
    const std::vector<std::string> expected = {
        "*** who: " + b.name() + " in lobby",
        "*** who: bob (" + c.name() + ") in games",
        "*** who: carol (" + a.name() + ") in lobby",
        "*** who: 3 connected",
    };
    for (auto [asker, cmd] : {std::pair{&a, "/who"}, std::pair{&c, "/names"}, std::pair{&b, "/WHO"}}) {
        INFO(cmd);
        asker->send_line(cmd);
        for (const auto& l : expected) CHECK(asker->read_line() == l);
    }
    // Nobody else heard the replies.
    srv.type("marker");
    all_read({&a, &b, &c}, "From " + server_who(srv) + ", marker");
}

MODEL_TEST(chat_who_many, "chat: /who with 55 clients lists 50, then how many more") {
    talk_server srv(on(backend));
    std::vector<client_ptr> cs;
    for (int i = 0; i < 55; ++i) cs.push_back(std::make_unique<line_client>(srv.port()));
    for (int i = 0; i < 55; ++i) REQUIRE(srv.console_line_starting("Connected to"));
    std::vector<std::string> names;
    for (auto& c : cs) names.push_back(c->name());
    std::sort(names.begin(), names.end());

    line_client& asker = *cs[7];
    asker.send_line("/who");
    auto first = asker.next_starting("*** who: ");  // after the join notices
    REQUIRE(first);
    std::vector<std::string> got{*first};
    for (int i = 1; i < 52; ++i) {
        auto l = asker.read_line();
        REQUIRE(l);
        got.push_back(*l);
    }
    for (int i = 0; i < 50; ++i) CHECK(got[i] == "*** who: " + names[i] + " in lobby");
    CHECK(got[50] == "*** who: ... and 5 more");
    CHECK(got[51] == "*** who: 55 connected");

    // The asker is still connected and served.
    asker.send_line("still here");
    CHECK(cs[0]->read_message() == "From " + asker.name() + ", still here");
    cs[0]->send_line("/who");
    CHECK(cs[0]->next_starting("*** who: ") == "*** who: " + names[0] + " in lobby");
}

// ---- 4. /msg ----

MODEL_TEST(chat_msg, "chat: /msg reaches one person in any room, by nick or address, privately") {
    talk_server srv(on(backend));
    auto cs = lobby(srv, 3);
    line_client &a = *cs[0], &b = *cs[1], &c = *cs[2];
    a.send_line("/nick alice");
    all_read({&a, &b, &c}, "*** " + a.name() + " is now alice");
    CHECK(srv.console().line() == "*** " + a.name() + " is now alice");
    b.send_line("/nick bob");
    all_read({&a, &b, &c}, "*** " + b.name() + " is now bob");
    CHECK(srv.console().line() == "*** " + b.name() + " is now bob");
    c.send_line("/join games");
    CHECK(c.read_line() == "*** " + c.name() + " joined games (1 here)");
    all_read({&a, &b}, "*** " + c.name() + " moved to games");
    CHECK(srv.console().line() == "*** " + c.name() + " moved to games");
    CHECK(srv.console().line() == "*** [games] " + c.name() + " joined games (1 here)");

    a.send_line("/msg bob hello there, bob");
    CHECK(b.read_line() == "From alice (private), hello there, bob");
    CHECK(a.read_line() == "To bob (private), hello there, bob");
    a.send_line("/msg BOB   case-blind");
    CHECK(b.read_line() == "From alice (private), case-blind");
    CHECK(a.read_line() == "To bob (private), case-blind");

    // c has no nick and is in another room.
    a.send_line("/msg " + c.name() + " psst");
    CHECK(c.read_line() == "From alice (private), psst");
    CHECK(a.read_line() == "To " + c.name() + " (private), psst");
    c.send_line("/msg alice back at you");
    CHECK(a.read_line() == "From " + c.name() + " (private), back at you");
    CHECK(c.read_line() == "To alice (private), back at you");

    a.send_line("/msg nobody hi");
    CHECK(a.read_line() == "ERR no-such-user nobody is not here");
    c.send_line("/msg dave hi");
    CHECK(c.read_line() == "ERR no-such-user dave is not here");
    a.send_line("/msg 127.0.0.1:1 hi");
    CHECK(a.read_line() == "ERR no-such-user 127.0.0.1:1 is not here");
    for (const char* bad : {"/msg", "/msg bob", "/msg bob   "}) {
        INFO(bad);
        a.send_line(bad);
        CHECK(a.read_line() == "ERR usage /msg NAME TEXT");
    }

    // Third parties got nothing, and the console showed none of it.
    a.send_line("marker");
    CHECK(b.read_line() == "From alice, marker");
    CHECK(srv.console().line() == "From alice, marker");
    srv.type("op marker");
    all_read({&c, &a, &b}, "From " + server_who(srv) + ", op marker");
}

// ---- 5. /me ----

MODEL_TEST(chat_me, "chat: /me is an action for the others in the room and the console") {
    talk_server srv(on(backend));
    auto cs = lobby(srv, 3);
    line_client &a = *cs[0], &b = *cs[1], &c = *cs[2];
    c.send_line("/join games");
    CHECK(c.read_line() == "*** " + c.name() + " joined games (1 here)");
    all_read({&a, &b}, "*** " + c.name() + " moved to games");
    CHECK(srv.console().line() == "*** " + c.name() + " moved to games");
    CHECK(srv.console().line() == "*** [games] " + c.name() + " joined games (1 here)");

    a.send_line("/me waves hello");
    CHECK(b.read_line() == "* " + a.name() + " waves hello");
    CHECK(srv.console().line() == "* " + a.name() + " waves hello");
    c.send_line("/ME dances");
    CHECK(srv.console().line() == "* " + c.name() + " [games] dances");
    a.send_line("/me");
    CHECK(a.read_line() == "ERR usage /me ACTION");
    a.send_line("/me   \t ");
    CHECK(a.read_line() == "ERR usage /me ACTION");

    // a never saw its own action; c (games) never saw a's; b never saw c's.
    b.send_line("marker");
    CHECK(a.read_line() == "From " + b.name() + ", marker");
    CHECK(srv.console().line() == "From " + b.name() + ", marker");
    srv.type("op marker");
    all_read({&c, &b, &a}, "From " + server_who(srv) + ", op marker");
}

// ---- 6. /join and /rooms ----

MODEL_TEST(chat_rooms, "chat: /join moves between rooms, messages stay in the room, /rooms") {
    talk_server srv(on(backend));
    auto cs = lobby(srv, 4);
    line_client &a = *cs[0], &b = *cs[1], &c = *cs[2], &d = *cs[3];
    auto& con = srv.console();

    c.send_line("/join #Games");  // case-folded, '#' dropped
    CHECK(c.read_line() == "*** " + c.name() + " joined games (1 here)");
    all_read({&a, &b, &d}, "*** " + c.name() + " moved to games");
    CHECK(con.line() == "*** " + c.name() + " moved to games");
    CHECK(con.line() == "*** [games] " + c.name() + " joined games (1 here)");
    d.send_line("/JOIN GAMES");
    all_read({&c, &d}, "*** " + d.name() + " joined games (2 here)");
    all_read({&a, &b}, "*** " + d.name() + " moved to games");
    CHECK(con.line() == "*** " + d.name() + " moved to games");
    CHECK(con.line() == "*** [games] " + d.name() + " joined games (2 here)");

    c.send_line("/join games");
    CHECK(c.read_line() == "ERR already-there you are in games already");
    c.send_line("/join #gAmEs");
    CHECK(c.read_line() == "ERR already-there you are in games already");
    for (const char* bad : {"/join", "/join   ", "/join a b"}) {
        INFO(bad);
        c.send_line(bad);
        CHECK(c.read_line() == "ERR usage /join ROOM");
    }
    for (std::string bad : {"bad.name"s, "#"s, "a:b"s, "-x"s, std::string(33, 'r')}) {
        INFO(bad);
        c.send_line("/join " + bad);
        auto l = c.read_line();
        REQUIRE(l);
        CHECK(starts_with(*l, "ERR bad-room "));
    }

    a.send_line("lobby talk");
    CHECK(b.read_line() == "From " + a.name() + ", lobby talk");
    CHECK(con.line() == "From " + a.name() + ", lobby talk");
    c.send_line("games talk");
    CHECK(d.read_line() == "From " + c.name() + ", games talk");
    CHECK(con.line() == "From " + c.name() + " [games], games talk");
    // The operator reaches every room; nobody got the other room's line.
    srv.type("to every room");
    all_read({&a, &b, &c, &d}, "From " + server_who(srv) + ", to every room");

    a.send_line("/rooms");
    CHECK(a.read_line() == "*** rooms: games 2");
    CHECK(a.read_line() == "*** rooms: lobby 2");
    CHECK(a.read_line() == "*** rooms: 2 in all");

    c.send_line("/join chess");
    CHECK(c.read_line() == "*** " + c.name() + " joined chess (1 here)");
    CHECK(d.read_line() == "*** " + c.name() + " moved to chess");
    CHECK(con.line() == "*** [games] " + c.name() + " moved to chess");
    CHECK(con.line() == "*** [chess] " + c.name() + " joined chess (1 here)");
    b.send_line("/ROOMS");
    CHECK(b.read_line() == "*** rooms: chess 1");
    CHECK(b.read_line() == "*** rooms: games 1");
    CHECK(b.read_line() == "*** rooms: lobby 2");
    CHECK(b.read_line() == "*** rooms: 3 in all");

    // chess empties and disappears.
    c.send_line("/join lobby");
    all_read({&a, &b, &c}, "*** " + c.name() + " joined lobby (3 here)");
    CHECK(con.line() == "*** " + c.name() + " joined lobby (3 here)");
    a.send_line("/rooms");
    CHECK(a.read_line() == "*** rooms: games 1");
    CHECK(a.read_line() == "*** rooms: lobby 3");
    CHECK(a.read_line() == "*** rooms: 2 in all");

    // The lobby stays, even empty.
    int here = 2;
    for (line_client* x : {&a, &b, &c}) {
        x->send_line("/join games");
        CHECK(x->next_starting("*** " + x->name() + " joined") ==
              "*** " + x->name() + " joined games (" + std::to_string(here++) + " here)");
    }
    d.send_line("/rooms");
    CHECK(d.next_starting("*** rooms: ") == "*** rooms: games 4");
    CHECK(d.read_line() == "*** rooms: lobby 0");
    CHECK(d.read_line() == "*** rooms: 2 in all");
}

// ---- 7. /quit ----

MODEL_TEST(chat_quit, "chat: /quit says goodbye and closes; what follows it is not run") {
    talk_server srv(on(backend));
    auto cs = lobby(srv, 4);
    line_client &a = *cs[0], &b = *cs[1], &c = *cs[2], &d = *cs[3];
    a.send_line("/nick alice");
    all_read({&a, &b, &c, &d}, "*** " + a.name() + " is now alice");
    CHECK(srv.console().line() == "*** " + a.name() + " is now alice");

    a.send("/quit\nshould not arrive\n/nick zed\n");
    CHECK(a.read_line() == "*** goodbye");
    CHECK(a.closed_by_server());
    CHECK(a.in().rest() == "");
    all_read({&b, &c, &d}, "*** alice left (quit)");
    CHECK(srv.console().line() == "Disconnected : " + console_form(a.name()));

    c.send_line("marker");
    all_read({&b, &d}, "From " + c.name() + ", marker");
    CHECK(srv.console().line() == "From " + c.name() + ", marker");
    b.send_line("/nick zed");  // a's "/nick zed" never ran
    all_read({&b, &c, &d}, "*** " + b.name() + " is now zed");
    CHECK(srv.console().line() == "*** " + b.name() + " is now zed");

    b.send_line("/QUIT   gone fishing  ");
    CHECK(b.read_line() == "*** goodbye");
    CHECK(b.closed_by_server());
    all_read({&c, &d}, "*** zed left (quit: gone fishing)");
    CHECK(srv.console().line() == "Disconnected : " + console_form(b.name()));

    c.close();
    CHECK(d.read_line() == "*** " + c.name() + " left (end of input)");
    CHECK(srv.console().line() == "Disconnected : " + console_form(c.name()));
}

// ---- 8. /help ----

MODEL_TEST(chat_help, "chat: /help lists every command, to the asker only") {
    talk_server srv(on(backend));
    auto cs = lobby(srv, 2);
    line_client &a = *cs[0], &b = *cs[1];
    a.send_line("/help");
    a.send_line("/frob");  // ends the list
    std::string last;
    auto help = lines_until(a.in(), "ERR ", &last);
    CHECK(last == "ERR unknown-command /frob (try /help)");
    CHECK(help.size() >= 8);
    for (const auto& l : help) CHECK(starts_with(l, "*** help: "));
    for (const char* cmd : {"/nick", "/who", "/msg", "/me", "/join", "/rooms", "/quit", "/help"}) {
        INFO(cmd);
        CHECK(any_containing(help, "*** help: "s + cmd + " "));
    }
    a.send_line("marker");
    CHECK(b.read_line() == "From " + a.name() + ", marker");
}

// ---- 9. and 10. unknown commands, "//" ----

MODEL_TEST(chat_unknown_command, "chat: unknown commands are refused and go nowhere; //text is /text") {
    talk_server srv(on(backend));
    auto cs = lobby(srv, 2);
    line_client &a = *cs[0], &b = *cs[1];
    const std::pair<const char*, const char*> refused[] = {
        {"/frob", "ERR unknown-command /frob (try /help)"},
        {"/frob with args", "ERR unknown-command /frob (try /help)"},
        {"/FROB", "ERR unknown-command /FROB (try /help)"},
        {"/", "ERR unknown-command / (try /help)"},
        {"/ nick bob", "ERR unknown-command / (try /help)"},
    };
    for (auto [line, reply] : refused) {
        INFO(line);
        a.send_line(line);
        CHECK(a.read_line() == reply);
    }
    a.send_line("//text");
    CHECK(b.read_line() == "From " + a.name() + ", /text");
    CHECK(srv.console().line() == "From " + a.name() + ", /text");
    a.send_line("///etc/passwd");
    CHECK(b.read_line() == "From " + a.name() + ", //etc/passwd");
    CHECK(srv.console().line() == "From " + a.name() + ", //etc/passwd");
    a.send_line("after");
    CHECK(b.read_line() == "From " + a.name() + ", after");
    CHECK(srv.console().line() == "From " + a.name() + ", after");
}

// ---- 11. impersonation ----

MODEL_TEST(chat_impersonation, "chat: no client line can look like someone else's or the server's") {
    talk_server srv(on(backend));
    auto cs = lobby(srv, 3);
    line_client &a = *cs[0], &b = *cs[1], &c = *cs[2];
    const std::string from = "From " + a.name() + ", ";

    const std::pair<std::string, std::string> fakes[] = {
        {"\r*** server is shutting down", "^M*** server is shutting down"},
        {"\r\r*** server shutting down", "^M^M*** server shutting down"},
        {"From bob, fake", "From bob, fake"},
        {"*** alice is now root", "*** alice is now root"},
        {"ERR kicked", "ERR kicked"},
        {"ERR kicked by the operator: spam", "ERR kicked by the operator: spam"},
        {"ok\rFrom bob, fake", "ok^MFrom bob, fake"},
        {"ok\r\r", "ok^M"},  // CR CR LF: only the last CR is the line end
        {"\x1b[2K\x1b[1G" "From bob, fake", "^[[2K^[[1GFrom bob, fake"},
        {"\x1b[1A\x1b[2K" "*** server shutting down", "^[[1A^[[2K*** server shutting down"},
        {"\x1b]0;pwned\x07 title", "^[]0;pwned^G title"},
        {"\x08\x08\x08\x08\x08\x08" "From bob, fake", "^H^H^H^H^H^HFrom bob, fake"},
        {"\xc2\x9b" "2K csi", "<U+009B>2K csi"},
        {"nel\xc2\x85" "From bob, fake", "nel<U+0085>From bob, fake"},
        {"ls\xe2\x80\xa8" "From bob, fake", "ls<U+2028>From bob, fake"},
        {"\xe2\x80\xae" "ekaf ,bob morF", "<U+202E>ekaf ,bob morF"},
        {"\xff\xfe" "bad bytes", "\\xFF\\xFEbad bytes"},
    };
    for (const auto& [sent, shown] : fakes) {
        INFO("a sent: " << sent);
        a.send(sent + "\n");
        CHECK(b.read_line() == from + shown);
        CHECK(c.read_line() == from + shown);
        CHECK(srv.console().line() == from + shown);
    }

    // Through /msg and /me too: the sender's own prefix, then the visible bytes.
    a.send_line("/msg " + b.name() + " \r*** server shutting down");
    CHECK(b.read_line() == "From " + a.name() + " (private), ^M*** server shutting down");
    CHECK(a.read_line() == "To " + b.name() + " (private), ^M*** server shutting down");
    a.send_line("/me \rFrom bob, fake");
    all_read({&b, &c}, "* " + a.name() + " ^MFrom bob, fake");
    CHECK(srv.console().line() == "* " + a.name() + " ^MFrom bob, fake");

    // Nicks that could pass for something else are refused.
    const std::pair<std::string, std::string> nicks[] = {
        {"/nick bob, fake", "ERR usage /nick NAME"},
        {"/nick bob fake", "ERR usage /nick NAME"},
        {"/nick 127.0.0.1:4242", "ERR bad-nick "},
        {"/nick [::1]:4242", "ERR bad-nick "},
        {"/nick " + b.name(), "ERR bad-nick "},
        {"/nick ***", "ERR bad-nick "},
        {"/nick a\rb", "ERR bad-nick "},
        {"/nick \x1b[31mred", "ERR bad-nick "},
        {"/nick caf\xc3\xa9", "ERR bad-nick "},
        {"/nick server", "ERR nick-reserved server is reserved"},
        {"/nick Console", "ERR nick-reserved Console is reserved"},
        {"/nick root", "ERR nick-reserved root is reserved"},
    };
    for (const auto& [line, reply] : nicks) {
        INFO("a sent: " << line);
        a.send_line(line);
        auto l = a.read_line();
        REQUIRE(l);
        CHECK(starts_with(*l, reply));
    }
    // Nothing of that reached anyone, and a is still its address.
    a.send_line("last");
    all_read({&b, &c}, from + "last");
    CHECK(srv.console().line() == from + "last");
}

// ---- 12. the operator's console ----

MODEL_TEST(chat_operator, "chat: console /who, /kick, /stats, //, /help, unknown, /shutdown") {
    talk_server srv(on(backend));
    auto cs = lobby(srv, 3);
    line_client &a = *cs[0], &b = *cs[1], &c = *cs[2];
    auto& con = srv.console();
    a.send_line("/nick alice");
    all_read({&a, &b, &c}, "*** " + a.name() + " is now alice");
    CHECK(con.line() == "*** " + a.name() + " is now alice");

    srv.type("/who");
    std::vector<std::string> addrs{b.name(), c.name()};
    std::sort(addrs.begin(), addrs.end());
    CHECK(con.line() == "*** who: " + addrs[0] + " in lobby");
    CHECK(con.line() == "*** who: " + addrs[1] + " in lobby");
    CHECK(con.line() == "*** who: alice (" + a.name() + ") in lobby");
    CHECK(con.line() == "*** who: 3 connected");

    srv.type("/kick ALICE flooding the room");
    CHECK(a.read_line() == "ERR kicked by the operator: flooding the room");
    CHECK(a.closed_by_server());
    a.close();  // so that /shutdown below need not wait for it
    CHECK(con.line() == "Dropped " + a.name() + ": kicked by the operator: flooding the room");
    CHECK(con.line() == "Disconnected : " + console_form(a.name()));
    all_read({&b, &c}, "*** alice left (kicked by the operator: flooding the room)");

    srv.type("/kick " + c.name());  // by address, no reason
    CHECK(c.read_line() == "ERR kicked by the operator");
    CHECK(c.closed_by_server());
    c.close();
    CHECK(con.line() == "Dropped " + c.name() + ": kicked by the operator");
    CHECK(con.line() == "Disconnected : " + console_form(c.name()));
    CHECK(b.read_line() == "*** " + c.name() + " left (kicked by the operator)");

    srv.type("/kick nobody");
    CHECK(con.line() == "ERR no-such-user nobody is not here");
    srv.type("/kick alice");  // gone now
    CHECK(con.line() == "ERR no-such-user alice is not here");

    srv.type("/stats");
    srv.type("/bogus");
    std::string last;
    auto stats = lines_until(con, "ERR ", &last);
    CHECK(last == "ERR unknown-command /bogus (try /help)");
    REQUIRE(!stats.empty());
    for (const auto& l : stats) CHECK(starts_with(l, "*** stats: "));
    CHECK(any_containing(stats, backend + " backend"));
    CHECK(any_line(stats, std::regex(R"(\b1 clients?\b)")));

    srv.type("/help");
    srv.type("/bogus");
    auto help = lines_until(con, "ERR ", &last);
    CHECK(last == "ERR unknown-command /bogus (try /help)");
    CHECK(help.size() >= 4);
    for (const auto& l : help) CHECK(starts_with(l, "*** help: "));
    for (const char* cmd : {"/who", "/kick", "/stats", "/shutdown"}) {
        INFO(cmd);
        CHECK(any_containing(help, cmd));
    }

    srv.type("//hello");
    CHECK(b.read_line() == "From " + server_who(srv) + ", /hello");
    srv.type("plain words");
    CHECK(b.read_line() == "From " + server_who(srv) + ", plain words");

    srv.type("/shutdown");
    CHECK(b.read_line() == "*** server shutting down");
    CHECK(b.closed_by_server());
    b.close();  // else the server waits out its grace period for b to close
    auto status = srv.wait();
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
}

// ---- 13. services ----

MODEL_TEST(service_echo, "echo service: each line back to its sender only, made visible, no welcome") {
    talk_server srv(on(backend, {"--service=echo"}));
    line_client a(srv.port());
    a.send_line("hello \x1b[31mred\x1b[0m\tand 한글");
    CHECK(a.read_line() == "hello ^[[31mred^[[0m\tand 한글");  // the first line: no welcome
    CHECK(srv.console().line() == "Connected to : " + console_form(a.name()));
    line_client b(srv.port());
    b.send_line("b's line");
    CHECK(b.read_line() == "b's line");  // nothing of a's, no welcome
    CHECK(srv.console_line_starting("Connected to") == "Connected to : " + console_form(b.name()));
    a.send_line("second");
    CHECK(a.read_line() == "second");  // nothing of b's
    a.send_line("/who");               // no commands: a line like any other
    CHECK(a.read_line() == "/who");
    a.close();
    CHECK(srv.console_line_starting("Disconnected") == "Disconnected : " + console_form(a.name()));
    b.send_line("still");
    CHECK(b.read_line() == "still");
}

MODEL_TEST(service_reverse, "reverse service: lines back reversed by code point, bad bytes as units") {
    talk_server srv(on(backend, {"--service=reverse"}));
    line_client a(srv.port());
    a.send_line("abc");
    CHECK(a.read_line() == "cba");  // the first line: no welcome
    CHECK(srv.console().line() == "Connected to : " + console_form(a.name()));
    const std::pair<std::string, std::string> cases[] = {
        {"한글 ok", "ko 글한"},
        {"a\xff" "b", "b\\xFFa"},
        {"\xe2\x82x", "x\\x82\\xE2"},  // a cut-off sequence: each byte its own unit
        {"\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9"},
        {"esc\x1b", "^[cse"},
        {"\xf0\x9f\x98\x80!", "!\xf0\x9f\x98\x80"},
    };
    for (const auto& [sent, back] : cases) {
        INFO(sent);
        a.send(sent + "\n");
        CHECK(a.read_line() == back);
    }
    line_client b(srv.port());
    b.send_line("xy");
    CHECK(b.read_line() == "yx");
    CHECK(srv.running());
    a.close();
    CHECK(srv.console_line_starting("Disconnected") == "Disconnected : " + console_form(a.name()));
}

TEST_CASE("talkd: an unknown --service is a usage error", "[any]") {
    run_result r = run_program({talkd_path(), "-p", "0", "--service=nonesuch"}, "");
    CHECK(r.status == 64);
    CHECK(r.err.find("nonesuch") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

// ---- 14. trace levels ----

namespace {

// Runs a short session on a server started with `flags`: two clients, one message,
// one disconnect, then /shutdown. Returns everything the server wrote to stderr.
std::vector<std::string> traced_session(const std::string& backend, std::vector<std::string> flags,
                                        std::string* a_name) {
    talk_server srv(on(backend, std::move(flags)));
    line_client a(srv.port()), b(srv.port());
    REQUIRE(srv.console_line_starting("Connected to"));
    REQUIRE(srv.console_line_starting("Connected to"));
    a.send_line("hello");
    REQUIRE(b.read_message() == "From " + a.name() + ", hello");
    *a_name = a.name();
    a.close();
    REQUIRE(srv.console_line_starting("Disconnected : " + console_form(a.name())));
    srv.type("/shutdown");
    REQUIRE(b.closed_by_server());
    b.close();
    auto status = srv.wait();
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    REQUIRE(srv.log().eof());  // stderr closed: rest() holds everything unread
    return split_lines(srv.log().rest());
}

}  // namespace

BACKEND_TEST(trace_levels, "trace: -v connections, -vv waits and reads, -vvv queues, none without -v") {
    std::string a;
    const std::regex wait_line("^talkd: wait " + backend + ": \\d+ watched, \\d+ ready");
    {
        auto log = traced_session(backend, {}, &a);
        INFO("stderr without -v:\n" << [&] { std::string s; for (auto& l : log) s += l + "\n"; return s; }());
        CHECK_FALSE(any_containing(log, "talkd: accepted"));
        CHECK_FALSE(any_containing(log, "talkd: closing"));
        CHECK_FALSE(any_containing(log, "talkd: wait"));
        CHECK_FALSE(any_containing(log, "talkd: read fd"));
        CHECK_FALSE(any_containing(log, "bytes queued in"));
    }
    {
        auto log = traced_session(backend, {"-v"}, &a);
        CHECK(any_line(log, std::regex("^talkd: accepted " + regex_escape(a) + " on fd \\d+ \\(.+\\)$")));
        CHECK(any_line(log, std::regex("^talkd: closing " + regex_escape(a) + " ")));
        CHECK_FALSE(any_containing(log, "talkd: wait"));
        CHECK_FALSE(any_containing(log, "talkd: read fd"));
        CHECK_FALSE(any_containing(log, "bytes queued in"));
    }
    {
        auto log = traced_session(backend, {"-vv"}, &a);
        CHECK(any_line(log, std::regex("^talkd: accepted " + regex_escape(a) + " on fd \\d+ ")));
        CHECK(any_line(log, wait_line));
        CHECK(any_line(log, std::regex("^talkd: read fd \\d+ \\(" + regex_escape(a) + "\\): 6 bytes$")));
        CHECK_FALSE(any_containing(log, "bytes queued in"));
    }
    {
        auto log = traced_session(backend, {"-vvv"}, &a);
        CHECK(any_line(log, wait_line));
        CHECK(any_line(log, std::regex("^talkd: read fd \\d+ \\(" + regex_escape(a) + "\\): 6 bytes$")));
        CHECK(any_containing(log, "bytes queued in"));
    }
}
