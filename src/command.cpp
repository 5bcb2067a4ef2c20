#include "talk/command.hpp"

#include <algorithm>
#include <array>

namespace talk {

namespace {

bool blank(char c) { return c == ' ' || c == '\t'; }
bool letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool digit(char c) { return c >= '0' && c <= '9'; }
bool name_char(char c) { return letter(c) || digit(c) || c == '_' || c == '-'; }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Names nobody may take: they would make a line look as if the server said it.
constexpr std::array<std::string_view, 8> reserved_nicks = {
    "server", "talkd", "operator", "admin", "root", "system", "console", "nobody"};

}  // namespace

bool command::is(std::string_view word) const { return equal_fold(name, word); }

std::optional<command> parse_command(std::string_view line) {
    if (line.empty() || line[0] != '/' || (line.size() > 1 && line[1] == '/')) return std::nullopt;
    line.remove_prefix(1);
    auto [name, args] = split_word(line);
    if (!line.empty() && blank(line[0])) name = {};  // "/ x": a blank where the name should be
    return command{name, args};
}

std::string_view message_text(std::string_view line) {
    if (line.size() >= 2 && line[0] == '/' && line[1] == '/') line.remove_prefix(1);
    return line;
}

std::pair<std::string_view, std::string_view> split_word(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size() && blank(s[i])) ++i;
    std::size_t start = i;
    while (i < s.size() && !blank(s[i])) ++i;
    std::string_view word = s.substr(start, i - start);
    while (i < s.size() && blank(s[i])) ++i;
    return {word, s.substr(i)};
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && blank(s.back())) s.remove_suffix(1);
    return s;
}

std::string fold_case(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower(c);
    return out;
}

bool equal_fold(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

name_error check_nick(std::string_view nick) {
    if (nick.empty()) return name_error::empty;
    if (nick.size() > max_nick) return name_error::too_long;
    if (!letter(nick[0]) || !std::all_of(nick.begin(), nick.end(), name_char))
        return name_error::bad_char;
    for (std::string_view r : reserved_nicks)
        if (equal_fold(nick, r)) return name_error::reserved;
    return name_error::none;
}

std::optional<std::string> room_name(std::string_view s) {
    if (!s.empty() && s[0] == '#') s.remove_prefix(1);
    if (s.empty() || s.size() > max_room) return std::nullopt;
    if (!letter(s[0]) && !digit(s[0])) return std::nullopt;
    if (!std::all_of(s.begin(), s.end(), name_char)) return std::nullopt;
    return fold_case(s);
}

std::string_view describe(name_error e) {
    switch (e) {
        case name_error::none: return "fine";
        case name_error::empty: return "a name is needed";
        case name_error::too_long: return "a nick has at most 16 characters";
        case name_error::bad_char:
            return "a nick is letters, digits, - and _, starting with a letter";
        case name_error::reserved: return "that name is reserved";
    }
    return "invalid";
}

}  // namespace talk
