// Helpers for end-to-end tests: a real talkd process and real sockets.
//
// Everything synchronises on readiness, never on sleeps: the server's port comes from
// its "listening on" line, a client waits for a line to arrive, an exit is waited for.
// Every wait has a timeout, so a broken server fails a test instead of hanging it.
//
//     talk_server srv({"--backend=epoll"});          // talkd -p 0 --backend=epoll
//     line_client a(srv.port()), b(srv.port());
//     a.send_line("hello");
//     CHECK(b.read_line() == "From " + a.name() + ", hello");
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Defines one test body and registers it once per backend, tagged with the backend,
// so that test/run can run each backend's tests in a process of its own:
//
//     BACKEND_TEST(relay, "a line reaches the others") { talk_server srv(on(backend)); ... }
#define BACKEND_TEST(fn, desc)                                \
    static void fn(const std::string& backend);               \
    TEST_CASE(desc " (select)", "[select]") { fn("select"); } \
    TEST_CASE(desc " (poll)", "[poll]") { fn("poll"); }       \
    TEST_CASE(desc " (epoll)", "[epoll]") { fn("epoll"); }    \
    static void fn(const std::string& backend)

// The same, also run against --backend=threads, the thread-per-client model: for
// behaviour both server models must share.
#define MODEL_TEST(fn, desc)                                     \
    static void fn(const std::string& backend);                  \
    TEST_CASE(desc " (select)", "[select]") { fn("select"); }    \
    TEST_CASE(desc " (poll)", "[poll]") { fn("poll"); }          \
    TEST_CASE(desc " (epoll)", "[epoll]") { fn("epoll"); }       \
    TEST_CASE(desc " (threads)", "[threads]") { fn("threads"); } \
    static void fn(const std::string& backend)

namespace talk::testing {

using namespace std::chrono_literals;

// "--backend=B" followed by more arguments.
std::vector<std::string> on(const std::string& backend, std::vector<std::string> more = {});

// An endpoint as the console shows a peer: "127.0.0.1:36588" -> "127.0.0.1 : 36588",
// "[::1]:36588" -> "::1 : 36588".
std::string console_form(const std::string& endpoint);

// The port of "127.0.0.1:36588".
std::string port_of(const std::string& endpoint);
using duration = std::chrono::milliseconds;

inline constexpr duration default_timeout = 5000ms;

std::string talkd_path();  // $TALKD, else ./talkd
std::string talk_path();   // $TALK, else ./talk

// Reads a descriptor line by line, with timeouts.
class line_reader {
public:
    line_reader() = default;
    explicit line_reader(int fd) : fd_(fd) {}
    void reset(int fd) { fd_ = fd; }
    int fd() const { return fd_; }
    // The next line without its LF, or nullopt on timeout or end of input.
    std::optional<std::string> line(duration timeout = default_timeout);
    // Reads lines until one satisfies pred (returned), or nullopt.
    template <class Pred>
    std::optional<std::string> until(Pred pred, duration timeout = default_timeout);
    // Waits for the peer to close; true if it did within the timeout. Data before
    // the close is collected in rest().
    bool eof(duration timeout = default_timeout);
    bool at_eof() const { return eof_; }
    // How the input ended: 0 for a FIN, else the read's errno (ECONNRESET for a RST).
    int end_error() const { return end_error_; }
    const std::string& rest() const { return buf_; }
    // Everything that arrives before the timeout passes (for "nothing more came").
    std::string drain(duration quiet);

private:
    bool fill(duration timeout);  // one read; false on timeout/EOF
    int fd_ = -1;
    std::string buf_;
    bool eof_ = false;
    int end_error_ = 0;
};

enum class stdin_kind { pipe, dev_null, closed, regular_file };

// A child process with its stdout and stderr read line by line.
class child_process {
public:
    explicit child_process(const std::vector<std::string>& argv, stdin_kind in = stdin_kind::pipe);
    ~child_process();  // SIGKILL if still running
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    pid_t pid() const { return pid_; }
    line_reader& out() { return out_; }
    line_reader& err() { return err_; }
    // Writes a line (or raw bytes) to its stdin; closes its stdin.
    void type(std::string_view line);
    void send(std::string_view bytes);
    void close_stdin();
    void signal(int sig);
    // Waits for the process to end; the wait status (as waitpid) or nullopt.
    std::optional<int> wait(duration timeout = default_timeout);
    bool running();
    // CPU time used so far (utime + stime from /proc/PID/stat), in clock ticks.
    long cpu_ticks() const;

private:
    pid_t pid_ = -1;
    int in_ = -1, out_fd_ = -1, err_fd_ = -1;
    line_reader out_, err_;
    bool reaped_ = false;
};

// talkd started for one test. Adds "-p 0" unless the arguments have a -p.
class talk_server {
public:
    explicit talk_server(std::vector<std::string> args, stdin_kind in = stdin_kind::pipe);

    int port() const { return port_; }
    pid_t pid() const { return proc_.pid(); }
    const std::string& listening_line() const { return listening_; }

    // The console (stdout) and the log (stderr).
    line_reader& console() { return proc_.out(); }
    line_reader& log() { return proc_.err(); }
    // Next console line starting with prefix (skipping others), or nullopt.
    std::optional<std::string> console_line_starting(std::string_view prefix,
                                                     duration timeout = default_timeout);

    // The operator types a line on stdin; closes stdin.
    void type(std::string_view line) { proc_.type(line); }
    void close_stdin() { proc_.close_stdin(); }
    void signal(int sig) { proc_.signal(sig); }
    std::optional<int> wait(duration timeout = default_timeout) { return proc_.wait(timeout); }
    bool running() { return proc_.running(); }
    long cpu_ticks() const { return proc_.cpu_ticks(); }

private:
    static std::vector<std::string> command(std::vector<std::string> args);
    child_process proc_;
    int port_ = -1;
    std::string listening_;
};

// A blocking-socket client with timeouts on reads.
class line_client {
public:
    explicit line_client(int port, const char* host = "127.0.0.1");
    ~line_client();
    line_client(const line_client&) = delete;
    line_client& operator=(const line_client&) = delete;

    // "127.0.0.1:40212", the name the server gives this client before any /nick.
    const std::string& name() const { return name_; }
    int fd() const { return fd_; }

    void send(std::string_view bytes);
    void send_line(std::string_view line) { send(std::string(line) + "\n"); }
    std::optional<std::string> read_line(duration timeout = default_timeout) {
        return in_.line(timeout);
    }
    // Next line that is not a server notice ("*** ..."), e.g. after the welcome.
    std::optional<std::string> read_message(duration timeout = default_timeout);
    // Next line starting with prefix, skipping others.
    std::optional<std::string> next_starting(std::string_view prefix, duration timeout = default_timeout) {
        return in_.until([&](const std::string& l) { return l.rfind(prefix, 0) == 0; }, timeout);
    }
    line_reader& in() { return in_; }
    void shutdown_write();
    // True when the server closes the connection within the timeout.
    bool closed_by_server(duration timeout = default_timeout) { return in_.eof(timeout); }
    void close();

private:
    int fd_ = -1;
    std::string name_;
    line_reader in_;
};

// Runs a command with the given stdin text; collects stdout, stderr and status.
struct run_result {
    int status = -1;  // exit status, or -1 if it did not exit in time (then killed)
    std::string out, err;
};
run_result run_program(const std::vector<std::string>& argv, std::string_view input,
                       duration timeout = default_timeout);

template <class Pred>
std::optional<std::string> line_reader::until(Pred pred, duration timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<duration>(deadline - std::chrono::steady_clock::now());
        if (left < 0ms) return std::nullopt;
        auto l = line(left);
        if (!l) return std::nullopt;
        if (pred(*l)) return l;
    }
}

}  // namespace talk::testing
