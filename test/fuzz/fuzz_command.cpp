// Fuzz target: the parsing in command.hpp on arbitrary bytes.
//
// Input: byte 0 splits the rest into a and b (for equal_fold); every function is
// run on a, b and the whole rest, and checked against what command.hpp promises.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "talk/command.hpp"

using fuzz::check;

namespace {

bool blank(char c) { return c == ' ' || c == '\t'; }
bool upper(char c) { return c >= 'A' && c <= 'Z'; }
bool letter(char c) { return upper(c) || (c >= 'a' && c <= 'z'); }
bool digit(char c) { return c >= '0' && c <= '9'; }
bool name_char(char c) { return letter(c) || digit(c) || c == '_' || c == '-'; }

// Is `part` a view into `whole`?
bool inside(std::string_view part, std::string_view whole) {
    if (part.empty()) return true;
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool is_suffix(std::string_view part, std::string_view whole) {
    return part.data() + part.size() == whole.data() + whole.size() || part.empty();
}

void check_trim(std::string_view s) {
    std::string_view t = talk::trim(s);
    check(inside(t, s), "trim() is a part of its input", s);
    check(t.empty() || (!blank(t.front()) && !blank(t.back())), "trim() leaves no outer blank", s);
    check(t.empty() == std::all_of(s.begin(), s.end(), blank), "trim() is empty only for blanks", s);
    check(talk::trim(t) == t, "trim() twice is trim()", s);
    if (!t.empty()) {
        std::size_t first = s.find_first_not_of(" \t");
        std::size_t last = s.find_last_not_of(" \t");
        check(t == s.substr(first, last - first + 1), "trim() cuts exactly the outer blanks", s);
    }
}

void check_split(std::string_view s) {
    auto [word, rest] = talk::split_word(s);
    check(inside(word, s) && inside(rest, s), "split_word() parts are parts of its input", s);
    check(std::none_of(word.begin(), word.end(), blank), "a word holds no blank", s);
    check(rest.empty() || !blank(rest.front()), "the rest starts with no blank", s);
    check(is_suffix(rest, s), "the rest ends the input", s);
    check(word.empty() == talk::trim(s).empty(), "no word only when all blank", s);
    if (word.empty()) {
        check(rest.empty(), "no word, no rest", s);
    } else {
        std::size_t start = s.find_first_not_of(" \t");
        check(word.data() == s.data() + start, "the word is the first non-blank run", s);
        std::size_t after = start + word.size();
        check(after == s.size() || blank(s[after]), "the word runs to a blank or the end", s);
        std::size_t more = s.find_first_not_of(" \t", after);
        check(rest == (more == std::string_view::npos ? std::string_view{} : s.substr(more)),
              "the rest follows the word's blanks", s);
    }
}

void check_command(std::string_view s) {
    auto cmd = talk::parse_command(s);
    bool is_cmd = !s.empty() && s[0] == '/' && !(s.size() > 1 && s[1] == '/');
    check(cmd.has_value() == is_cmd, "a command iff it starts with one '/'", s);
    std::string_view text = talk::message_text(s);
    if (s.size() >= 2 && s[0] == '/' && s[1] == '/')
        check(text == s.substr(1), "message_text() drops one '/' of \"//\"", s);
    else
        check(text == s, "message_text() is the line itself", s);
    if (!cmd) return;
    check(inside(cmd->name, s) && inside(cmd->args, s), "name and args are parts of the line", s);
    check(std::none_of(cmd->name.begin(), cmd->name.end(), blank), "a command name holds no blank", s);
    check(cmd->args.empty() || !blank(cmd->args.front()), "args start with no blank", s);
    check(is_suffix(cmd->args, s), "args end the line", s);
    auto [word, rest] = talk::split_word(s.substr(1));
    check(cmd->args == rest, "args are what follows the name", s);
    if (s.size() > 1 && blank(s[1]))
        check(cmd->name.empty(), "\"/ x\" has no name", s);
    else
        check(cmd->name == word && (cmd->name.empty() || cmd->name.data() == s.data() + 1),
              "the name follows the '/'", s);
    check(cmd->is(cmd->name), "a command is its own name", s);
    check(cmd->is(talk::fold_case(cmd->name)), "names compare case-blind", s);
}

void check_fold(std::string_view a, std::string_view b) {
    std::string fa = talk::fold_case(a), fb = talk::fold_case(b);
    check(fa.size() == a.size(), "fold_case() keeps the length", a);
    check(std::none_of(fa.begin(), fa.end(), upper), "fold_case() leaves no upper case", a);
    for (std::size_t i = 0; i < a.size(); ++i)
        check(fa[i] == a[i] || (upper(a[i]) && fa[i] == a[i] - 'A' + 'a'),
              "fold_case() changes only A-Z", a);
    check(talk::fold_case(fa) == fa, "fold_case() twice is fold_case()", a);
    check(talk::equal_fold(a, fa) && talk::equal_fold(fa, a), "a string equals its folding", a);
    check(talk::equal_fold(a, a), "equal_fold() is reflexive", a);
    bool eq = talk::equal_fold(a, b);
    check(eq == talk::equal_fold(b, a), "equal_fold() is symmetric", a);
    check(eq == (fa == fb), "equal_fold() is equality of foldings", a);
}

constexpr std::array<std::string_view, 8> reserved = {"server",   "talkd", "operator", "admin",
                                                      "root",     "system", "console", "nobody"};

void check_nick(std::string_view s) {
    talk::name_error e = talk::check_nick(s);
    check(!talk::describe(e).empty(), "every name_error has a description", s);
    talk::name_error want;
    if (s.empty())
        want = talk::name_error::empty;
    else if (s.size() > talk::max_nick)
        want = talk::name_error::too_long;
    else if (!letter(s[0]) || !std::all_of(s.begin(), s.end(), name_char))
        want = talk::name_error::bad_char;
    else if (std::find(reserved.begin(), reserved.end(), talk::fold_case(s)) != reserved.end())
        want = talk::name_error::reserved;
    else
        want = talk::name_error::none;
    check(e == want, "check_nick() as documented", s);
    if (e != talk::name_error::none) return;
    check(s.size() >= 1 && s.size() <= talk::max_nick, "a nick has 1 to 16 bytes", s);
    check(letter(s[0]), "a nick starts with a letter", s);
    check(s.find_first_of(" \t,:.#/\\\r\n") == std::string_view::npos,
          "a nick holds no blank, comma, colon, dot, '#', '/'", s);
    check(talk::check_nick(talk::fold_case(s)) == talk::name_error::none, "a nick folded is a nick", s);
}

void check_room(std::string_view s) {
    auto r = talk::room_name(s);
    std::string_view bare = !s.empty() && s[0] == '#' ? s.substr(1) : s;
    bool valid = !bare.empty() && bare.size() <= talk::max_room && (letter(bare[0]) || digit(bare[0])) &&
                 std::all_of(bare.begin(), bare.end(), name_char);
    check(r.has_value() == valid, "room_name() accepts exactly the documented names", s);
    if (!r) return;
    check(*r == talk::fold_case(bare), "a room name is the input folded, without '#'", s);
    check(!r->empty() && r->size() <= talk::max_room, "a room name has 1 to 32 bytes", s);
    check(std::none_of(r->begin(), r->end(), upper), "a room name is lower case", s);
    check(std::all_of(r->begin(), r->end(), name_char), "a room name holds only name bytes", s);
    auto again = talk::room_name(*r);
    check(again && *again == *r, "a room name is its own canonical name", s);
    auto hashed = talk::room_name("#" + *r);
    check(hashed && *hashed == *r, "a leading '#' is ignored", s);
}

void all(std::string_view s) {
    check_trim(s);
    check_split(s);
    check_command(s);
    check_nick(s);
    check_room(s);
    // Each word of s, as /nick and /join see them.
    std::string_view rest = s;
    for (int i = 0; i < 4; ++i) {
        auto [word, more] = talk::split_word(rest);
        if (word.empty()) break;
        check_nick(word);
        check_room(word);
        rest = more;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
    std::size_t cut = data[0] % (in.size() + 1);
    std::string_view a = in.substr(0, cut), b = in.substr(cut);
    all(in);
    all(a);
    all(b);
    check_fold(a, b);
    check_fold(in, in);
    return 0;
}
