// Parsing what clients and the operator type. Pure functions, no I/O, no allocation.
//
//   "/nick alice"     -> command {name "nick", args "alice"}
//   "/MSG bob  hi"    -> command {name "MSG", args "bob  hi"}   (names compare case-blind)
//   "//etc/passwd"    -> not a command: the message "/etc/passwd"
//   "hello"           -> not a command
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace talk {

struct command {
    std::string_view name;  // after the '/', up to the first blank; may be empty ("/")
    std::string_view args;  // the rest, leading blanks removed
    // True when name equals `word`, ignoring ASCII case.
    bool is(std::string_view word) const;
};

// The command in `line`, or nullopt when line is a message.
std::optional<command> parse_command(std::string_view line);

// The text of a message line: "//x" stands for the literal "/x".
std::string_view message_text(std::string_view line);

// The first blank-separated word of s, and the rest with leading blanks removed.
std::pair<std::string_view, std::string_view> split_word(std::string_view s);

// s without leading and trailing blanks (spaces and tabs).
std::string_view trim(std::string_view s);

// ASCII lower case; other bytes unchanged.
std::string fold_case(std::string_view s);
bool equal_fold(std::string_view a, std::string_view b);

// Names: nicks are 1-16 of [A-Za-z0-9_-], starting with a letter, so that a nick
// can never contain a blank, a comma, a colon or a dot, and can never look like an
// address or like the server. Rooms are 1-32 of [A-Za-z0-9_-], starting with a letter
// or digit, an optional leading '#' ignored; they are kept in lower case.
inline constexpr std::size_t max_nick = 16;
inline constexpr std::size_t max_room = 32;

enum class name_error { none, empty, too_long, bad_char, reserved };

name_error check_nick(std::string_view nick);
// The canonical room name (lower case, no '#'), or nullopt when invalid.
std::optional<std::string> room_name(std::string_view s);

// A sentence for the error, e.g. "a nick is 1 to 16 letters, digits, - or _, starting
// with a letter".
std::string_view describe(name_error e);

}  // namespace talk
