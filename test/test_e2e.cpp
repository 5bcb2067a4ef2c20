// End-to-end tests of the foundation: a real talkd per test, real sockets, every
// backend. test/run runs this binary once per backend with a "[select]", "[poll]"
// or "[epoll]" filter, in parallel.
#include "helpers.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>
#include <string>
#include <vector>

using namespace talk::testing;
using namespace std::string_literals;

MODEL_TEST(lecture_session, "the lecture's Assignment 6 session, formats exactly") {
    talk_server srv(on(backend));
    CHECK(srv.listening_line().find("(" + backend + ")") != std::string::npos);
    line_client c(srv.port());
    CHECK(srv.console().line() == "Connected to : " + console_form(c.name()));

    c.send_line("Hello World!!!");
    c.send_line("I'm client, HaHa");
    CHECK(srv.console().line() == "From " + c.name() + ", Hello World!!!");
    CHECK(srv.console().line() == "From " + c.name() + ", I'm client, HaHa");

    srv.type("Oh I'm Server HoHo");
    CHECK(c.read_message() == "From 127.0.0.1:" + std::to_string(srv.port()) + ", Oh I'm Server HoHo");

    c.close();
    CHECK(srv.console().line() == "Disconnected : " + console_form(c.name()));
}

MODEL_TEST(relay_to_others, "a line reaches every other client, never the sender") {
    talk_server srv(on(backend));
    line_client a(srv.port()), b(srv.port()), c(srv.port()), d(srv.port());
    for (int i = 0; i < 4; ++i) REQUIRE(srv.console_line_starting("Connected to"));

    a.send_line("hello all");
    std::string expected = "From " + a.name() + ", hello all";
    CHECK(b.read_message() == expected);
    CHECK(c.read_message() == expected);
    CHECK(d.read_message() == expected);

    // a's next message must be b's, proving a never got its own line.
    b.send_line("marker");
    CHECK(a.read_message() == "From " + b.name() + ", marker");
}

MODEL_TEST(empty_lines, "empty lines are not relayed") {
    talk_server srv(on(backend));
    line_client a(srv.port()), b(srv.port());
    REQUIRE(srv.console_line_starting("Connected to"));
    REQUIRE(srv.console_line_starting("Connected to"));
    a.send("\n\r\n\n");
    a.send_line("after");
    CHECK(b.read_message() == "From " + a.name() + ", after");
}

MODEL_TEST(ten_thousand_lines, "10,000 lines arrive complete and in order") {
    talk_server srv(on(backend, {"--flood-rate=0"}));
    line_client a(srv.port()), b(srv.port());
    REQUIRE(srv.console_line_starting("Connected to"));
    REQUIRE(srv.console_line_starting("Connected to"));
    std::string burst;
    for (int i = 0; i < 10000; ++i) burst += "line " + std::to_string(i) + "\n";
    a.send(burst);
    std::string prefix = "From " + a.name() + ", line ";
    for (int i = 0; i < 10000; ++i) {
        auto l = b.read_message();
        REQUIRE(l == prefix + std::to_string(i));
    }
}

MODEL_TEST(pieces_and_crlf, "lines in pieces, CRLF across reads, many lines per read") {
    talk_server srv(on(backend));
    line_client a(srv.port()), b(srv.port());
    REQUIRE(srv.console_line_starting("Connected to"));
    REQUIRE(srv.console_line_starting("Connected to"));
    std::string prefix = "From " + a.name() + ", ";
    for (char ch : std::string("one byte at a time\r\n")) a.send(std::string(1, ch));
    CHECK(b.read_message() == prefix + "one byte at a time");
    a.send("split CR\r");
    a.send("\nx\ny\r\nz\n");
    CHECK(b.read_message() == prefix + "split CR");
    CHECK(b.read_message() == prefix + "x");
    CHECK(b.read_message() == prefix + "y");
    CHECK(b.read_message() == prefix + "z");
}

MODEL_TEST(half_close, "a half-closed client's lines all arrive, then it is closed") {
    talk_server srv(on(backend));
    line_client a(srv.port()), b(srv.port());
    REQUIRE(srv.console_line_starting("Connected to"));
    REQUIRE(srv.console_line_starting("Connected to"));
    a.send("first\nlast, unterminated");
    a.shutdown_write();
    CHECK(b.read_message() == "From " + a.name() + ", first");
    CHECK(b.read_message() == "From " + a.name() + ", last, unterminated");
    CHECK(a.closed_by_server());
    CHECK(srv.console_line_starting("Disconnected : " + console_form(a.name())));
}

MODEL_TEST(control_bytes, "control bytes are shown, never passed on raw") {
    talk_server srv(on(backend));
    line_client a(srv.port()), b(srv.port());
    REQUIRE(srv.console_line_starting("Connected to"));
    REQUIRE(srv.console_line_starting("Connected to"));
    a.send("esc \x1b[2J bell \x07 nul \0 cr \r over del \x7f c1 \xc2\x9b tab\tend\n"s);
    std::string shown = "esc ^[[2J bell ^G nul ^@ cr ^M over del ^? c1 <U+009B> tab\tend";
    CHECK(b.read_message() == "From " + a.name() + ", " + shown);
    CHECK(srv.console_line_starting("From ") == "From " + a.name() + ", " + shown);
}

MODEL_TEST(long_line, "a line over the limit is refused, the connection stays") {
    talk_server srv(on(backend, {"--max-line=100"}));
    line_client a(srv.port()), b(srv.port());
    REQUIRE(srv.console_line_starting("Connected to"));
    REQUIRE(srv.console_line_starting("Connected to"));
    a.send(std::string(100000, 'x') + "\n");
    CHECK(a.next_starting("ERR ") == "ERR line-too-long max 100 bytes");
    a.send_line(std::string(100, 'y'));
    CHECK(b.read_message() == "From " + a.name() + ", " + std::string(100, 'y'));
}

MODEL_TEST(ipv6_peer, "an IPv6 peer is shown as [addr]:port, IPv4 as plain IPv4") {
    talk_server srv(on(backend));
    line_client v6(srv.port(), "::1"), v4(srv.port(), "127.0.0.1");
    CHECK(srv.console().line() == "Connected to : ::1 : " + port_of(v6.name()));
    CHECK(srv.console().line() == "Connected to : 127.0.0.1 : " + port_of(v4.name()));
    v6.send_line("from six");
    CHECK(v4.read_message() == "From [::1]:" + port_of(v6.name()) + ", from six");
    srv.type("operator");
    CHECK(v6.read_message() == "From [::1]:" + std::to_string(srv.port()) + ", operator");
    CHECK(v4.read_message() == "From 127.0.0.1:" + std::to_string(srv.port()) + ", operator");
}

BACKEND_TEST(slow_reader, "a client that stops reading is dropped; the others are served") {
    talk_server srv(on(backend, {"--max-queue=64K", "--flood-rate=0"}));
    line_client sender(srv.port()), reader(srv.port());
    // A tiny receive buffer so the kernel swallows little before the server's queue grows.
    int small = 4096;
    line_client sleeper(srv.port());
    ::setsockopt(sleeper.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    for (int i = 0; i < 3; ++i) REQUIRE(srv.console_line_starting("Connected to"));

    std::string payload(1000, 'p');
    int sent = 0;
    auto dropped = [&](const std::string& l) { return l.rfind("Dropped ", 0) == 0; };
    std::optional<std::string> gone;
    while (!gone && sent < 20000) {
        std::string chunk;
        for (int i = 0; i < 50; ++i, ++sent) chunk += std::to_string(sent) + " " + payload + "\n";
        sender.send(chunk);
        for (int i = 0; i < 50; ++i) REQUIRE(reader.read_message());  // the healthy reader keeps up
        gone = srv.console().until(dropped, 0ms);
    }
    REQUIRE(gone);
    CHECK(*gone == "Dropped " + sleeper.name() + ": output queue over 65536 bytes: not reading");
    // Not necessarily the very next line: a console read this slowly may have had
    // lines dropped, and talkd then says so in a line of its own.
    CHECK(srv.console_line_starting("Disconnected : ") == "Disconnected : " + console_form(sleeper.name()));
    sender.send_line("still here");
    CHECK(reader.in().until([](const std::string& l) { return l.find("still here") != std::string::npos; }));
}

MODEL_TEST(stdin_not_a_terminal, "stdin at EOF, /dev/null, closed or a file: serving, not spinning") {
    for (stdin_kind in : {stdin_kind::pipe, stdin_kind::dev_null, stdin_kind::closed,
                          stdin_kind::regular_file}) {
        talk_server srv(on(backend), in);
        srv.close_stdin();  // the pipe case: EOF
        line_client a(srv.port()), b(srv.port());
        REQUIRE(b.next_starting("*** Welcome"));  // b is registered, and a before it
        a.send_line("still serving");
        CHECK(b.read_message() == "From " + a.name() + ", still serving");
        long before = srv.cpu_ticks();
        b.in().drain(300ms);  // an idle moment: a spinning loop would burn all of it
        CHECK(srv.cpu_ticks() - before < 10);
    }
}

MODEL_TEST(sigterm, "SIGTERM and SIGINT: clients told and closed, exit 0") {
    for (int sig : {SIGTERM, SIGINT}) {
        talk_server srv(on(backend));
        line_client a(srv.port());
        REQUIRE(srv.console_line_starting("Connected to"));
        srv.signal(sig);
        CHECK(a.in().until([](const std::string& l) { return l == "*** server shutting down"; }));
        CHECK(a.closed_by_server());
        const std::string said = sig == SIGTERM ? "talkd: SIGTERM: shutting down"
                                                : "talkd: SIGINT: shutting down";
        CHECK(srv.log().until([&](const std::string& l) { return l == said; }));
        auto status = srv.wait();
        REQUIRE(status);
        CHECK(WIFEXITED(*status));
        CHECK(WEXITSTATUS(*status) == 0);
    }
}

MODEL_TEST(talk_in_a_pipe, "printf 'hi\\n' | talk delivers hi and exits 0") {
    talk_server srv(on(backend));
    line_client watcher(srv.port());
    REQUIRE(srv.console_line_starting("Connected to"));
    run_result r = run_program({talk_path(), "-i", "127.0.0.1", "-p", std::to_string(srv.port())},
                               "hi\nthere\n");
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    auto l = watcher.read_message();
    REQUIRE(l);
    CHECK(l->rfind("From 127.0.0.1:", 0) == 0);
    CHECK(l->substr(l->find(", ") + 2) == "hi");
    CHECK(watcher.read_message()->substr(l->find(", ") + 2) == "there");
    // The server's close answers talk's end of input; talk must never report it as
    // the server hanging up (a race between its two threads, so try it a few times).
    for (int i = 0; i < 20; ++i) {
        run_result again = run_program(
            {talk_path(), "-i", "127.0.0.1", "-p", std::to_string(srv.port())}, "again\n");
        INFO("run " << i);
        CHECK(again.status == 0);
        CHECK(again.err.empty());
        REQUIRE(watcher.read_message());
    }
}

MODEL_TEST(talk_prints_server_lines, "talk sends typed lines and prints what the server sends") {
    talk_server srv(on(backend));
    line_client other(srv.port());
    REQUIRE(srv.console_line_starting("Connected to"));
    child_process talk({talk_path(), "-i", "127.0.0.1", "-p", std::to_string(srv.port())});
    auto joined = srv.console_line_starting("Connected to");
    REQUIRE(joined);
    talk.type("ping");
    auto ping = other.read_message();
    REQUIRE(ping);
    std::string talk_name = ping->substr(5, ping->find(", ") - 5);
    CHECK(ping->substr(ping->find(", ") + 2) == "ping");
    other.send_line("pong");
    CHECK(talk.out().until([](const std::string& l) { return l.rfind("From ", 0) == 0; }) ==
          "From " + other.name() + ", pong");
    talk.close_stdin();  // EOF: talk half-closes, the server closes, talk exits 0
    auto status = talk.wait();
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    CHECK(srv.console_line_starting("Disconnected : ") ==
          "Disconnected : " + console_form(talk_name));
}

TEST_CASE("talk: server closes first; refused; unknown host; usage", "[any]") {
    {
        // talk's stdin stays open (nothing is typed): it must still exit promptly
        // when the server goes away.
        talk_server srv({});
        child_process talk({talk_path(), "-i", "127.0.0.1", "-p", std::to_string(srv.port())});
        REQUIRE(srv.console_line_starting("Connected to"));
        srv.signal(SIGTERM);
        auto status = talk.wait(2000ms);
        REQUIRE(status);
        CHECK(WIFEXITED(*status));
        CHECK(WEXITSTATUS(*status) == 0);
        CHECK(talk.err().line() == "talk: connection closed by server");
    }
    {
        // The server dies outright (SIGKILL) while talk waits on stdin: both of its
        // threads must let go, and it exits within a second.
        talk_server srv({});
        child_process talk({talk_path(), "-i", "127.0.0.1", "-p", std::to_string(srv.port())});
        REQUIRE(srv.console_line_starting("Connected to"));
        srv.signal(SIGKILL);
        auto status = talk.wait(1000ms);
        REQUIRE(status);
        CHECK(WIFEXITED(*status));
        CHECK(talk.err().line() == "talk: connection closed by server");
    }
    {
        // A port nobody listens on: bind one, note it, close it.
        int port;
        {
            talk_server srv({});
            port = srv.port();
        }
        run_result r = run_program({talk_path(), "-i", "127.0.0.1", "-p", std::to_string(port)}, "x\n");
        CHECK(r.status == 69);  // EX_UNAVAILABLE
        CHECK(r.err.find("Connection refused") != std::string::npos);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    }
    {
        run_result r = run_program({talk_path(), "-i", "no-such-host.invalid", "-p", "1"}, "");
        CHECK(r.status == 68);  // EX_NOHOST
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    }
    {
        run_result r = run_program({talk_path(), "-i", "127.0.0.1"}, "");
        CHECK(r.status == 64);
        CHECK(r.err.find("-p") != std::string::npos);
    }
    for (const char* bad : {"abc", "-1", "0", "65536", "99999", "8888x"}) {
        run_result r = run_program({talk_path(), "-i", "127.0.0.1", "-p", bad}, "");
        INFO("-p '" << bad << "'");
        CHECK(r.status == 64);  // EX_USAGE, not a lookup or connect failure
        CHECK(r.err.find("port") != std::string::npos);
    }
}

TEST_CASE("talkd: usage errors, version, port in use", "[any]") {
    run_result r = run_program({talkd_path()}, "");
    CHECK(r.status == 64);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);

    r = run_program({talkd_path(), "-p", "0", "--backend=nonesuch"}, "");
    CHECK(r.status == 64);
    CHECK(r.err.find("poll, select") != std::string::npos);

    r = run_program({talkd_path(), "-V"}, "");
    CHECK(r.status == 0);
    CHECK(r.out.find("backends: ") != std::string::npos);

    talk_server first({});
    r = run_program({talkd_path(), "-p", std::to_string(first.port())}, "");
    CHECK(r.status != 0);
    CHECK(r.err.find("Address already in use") != std::string::npos);
}

// ---- the console on a terminal: in the background, then fg ----

namespace {

// A job-control session of its own on a pseudo-terminal, as a shell keeps one: a
// "shell" process leads it and holds the terminal's foreground, and the command runs
// in a process group of its own, so it starts in the background, as after
// `talkd ... &`. fg() and bg() move the foreground as the shell's fg and bg do
// (bg: as after Ctrl-Z and bg). type() types a line on the terminal.
class pty_session {
public:
    explicit pty_session(const std::vector<std::string>& argv) {
        master_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        REQUIRE(master_ >= 0);
        REQUIRE(::grantpt(master_) == 0);
        REQUIRE(::unlockpt(master_) == 0);
        const std::string slave = ::ptsname(master_);
        int ctl[2], err[2], info[2];
        REQUIRE(::pipe2(ctl, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(info, O_CLOEXEC) == 0);
        std::vector<char*> args;
        for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        shell_ = ::fork();
        REQUIRE(shell_ >= 0);
        if (shell_ == 0) {  // the shell: only async-signal-safe calls from here on
            ::close(ctl[1]);
            ::close(err[0]);
            ::close(info[0]);
            ::setsid();
            int tty = ::open(slave.c_str(), O_RDWR | O_CLOEXEC);  // becomes our terminal
            if (tty < 0) ::_exit(120);
            ::signal(SIGTTOU, SIG_IGN);  // so a background shell may still call tcsetpgrp
            pid_t job = ::fork();
            if (job == 0) {
                ::setpgid(0, 0);
                ::signal(SIGTTOU, SIG_DFL);
                ::dup2(tty, 0);
                ::dup2(tty, 1);
                ::dup2(err[1], 2);
                ::execv(args[0], args.data());
                ::_exit(127);
            }
            ::setpgid(job, job);
            (void)!::write(info[1], &job, sizeof job);
            char cmd;
            while (::read(ctl[0], &cmd, 1) == 1) {
                if (cmd == 'f') ::tcsetpgrp(tty, job);
                if (cmd == 'b') ::tcsetpgrp(tty, ::getpgrp());
                (void)!::write(info[1], &cmd, 1);  // done
            }
            ::kill(job, SIGTERM);
            int st = 0;
            ::waitpid(job, &st, 0);
            ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
        ::close(ctl[0]);
        ::close(err[1]);
        ::close(info[1]);
        ctl_ = ctl[1];
        info_ = info[0];
        err_.reset(err[0]);
        REQUIRE(::read(info_, &job_, sizeof job_) == static_cast<ssize_t>(sizeof job_));
    }

    ~pty_session() {
        ::close(ctl_);  // the shell ends the job and exits with its status
        int st = 0;
        auto deadline = std::chrono::steady_clock::now() + 5s;
        while (::waitpid(shell_, &st, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(job_, SIGKILL);
                ::kill(shell_, SIGKILL);
                ::waitpid(shell_, &st, 0);
                break;
            }
            std::this_thread::sleep_for(10ms);
        }
        exit_status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        ::close(info_);
        ::close(err_.fd());
        ::close(master_);
    }

    void fg() { command('f'); }
    void bg() { command('b'); }
    void type(std::string_view line) {
        std::string s(line);
        s.push_back('\n');
        REQUIRE(::write(master_, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
    }
    line_reader& err() { return err_; }

private:
    void command(char c) {
        REQUIRE(::write(ctl_, &c, 1) == 1);
        char done = 0;
        REQUIRE(::read(info_, &done, 1) == 1);
        REQUIRE(done == c);
    }

    int master_ = -1, ctl_ = -1, info_ = -1, exit_status_ = -1;
    pid_t shell_ = -1, job_ = -1;
    line_reader err_;
};

}  // namespace

MODEL_TEST(console_background,
           "console: started in the background, talkd leaves the terminal alone; fg gives it back") {
    pty_session s({talkd_path(), "-p", "0", "-b", "127.0.0.1", "--backend=" + backend, "-v"});
    int port = -1;
    bool off = false;
    while (port < 0 || !off) {
        auto l = s.err().line();
        REQUIRE(l);
        if (l->rfind("talkd: listening on ", 0) == 0) port = std::stoi(l->substr(l->rfind(':') + 1));
        if (*l == "talkd: console input off: in the background (until fg)") off = true;
    }
    line_client c(port);
    const std::string server = "127.0.0.1:" + std::to_string(port);

    s.fg();
    CHECK(s.err().until([](const std::string& l) {
        return l == "talkd: console input on: in the foreground";
    }));
    s.type("Oh I'm Server HoHo");
    CHECK(c.read_message() == "From " + server + ", Oh I'm Server HoHo");

    // Ctrl-Z and bg: a line typed now is the shell's, not talkd's, until fg.
    s.bg();
    s.type("typed for the shell");
    CHECK(s.err().until([](const std::string& l) {
        return l == "talkd: console input off: in the background (until fg)";
    }));
    s.fg();
    CHECK(s.err().until([](const std::string& l) {
        return l == "talkd: console input on: in the foreground";
    }));
    CHECK(c.read_message() == "From " + server + ", typed for the shell");
}
