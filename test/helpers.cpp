#include "helpers.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "talk/net.hpp"

namespace talk::testing {

namespace {

using clock = std::chrono::steady_clock;

int ms_left(clock::time_point deadline) {
    auto left = std::chrono::duration_cast<duration>(deadline - clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(left);
}

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

}  // namespace

std::string talkd_path() {
    const char* p = std::getenv("TALKD");
    return p && *p ? p : "./talkd";
}

std::string talk_path() {
    const char* p = std::getenv("TALK");
    return p && *p ? p : "./talk";
}

std::vector<std::string> on(const std::string& backend, std::vector<std::string> more) {
    std::vector<std::string> args{"--backend=" + backend};
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

std::string console_form(const std::string& endpoint) {
    auto colon = endpoint.rfind(':');
    std::string host = endpoint.substr(0, colon);
    if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
    return host + " : " + endpoint.substr(colon + 1);
}

std::string port_of(const std::string& endpoint) { return endpoint.substr(endpoint.rfind(':') + 1); }

// ---- line_reader ----

bool line_reader::fill(duration timeout) {
    if (eof_ || fd_ < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n <= 0) return false;
    char buf[65536];
    ssize_t k = ::read(fd_, buf, sizeof buf);
    if (k < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (k <= 0) {
        eof_ = true;
        end_error_ = k < 0 ? errno : 0;
        return false;
    }
    buf_.append(buf, static_cast<std::size_t>(k));
    return true;
}

std::optional<std::string> line_reader::line(duration timeout) {
    auto deadline = clock::now() + timeout;
    for (;;) {
        auto nl = buf_.find('\n');
        if (nl != std::string::npos) {
            std::string l = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            return l;
        }
        if (eof_) return std::nullopt;
        int left = ms_left(deadline);
        if (left == 0 && !fill(0ms)) return std::nullopt;
        if (left > 0) fill(duration(left));
    }
}

bool line_reader::eof(duration timeout) {
    auto deadline = clock::now() + timeout;
    while (!eof_) {
        int left = ms_left(deadline);
        if (left == 0) return false;
        fill(duration(left));
    }
    return true;
}

std::string line_reader::drain(duration quiet) {
    auto deadline = clock::now() + quiet;
    do fill(duration(ms_left(deadline)));
    while (!eof_ && ms_left(deadline) > 0);
    std::string all;
    all.swap(buf_);
    return all;
}

// ---- child_process ----

child_process::child_process(const std::vector<std::string>& argv, stdin_kind in) {
    int inp[2], outp[2], errp[2];
    if (::pipe2(inp, O_CLOEXEC) || ::pipe2(outp, O_CLOEXEC) || ::pipe2(errp, O_CLOEXEC))
        fail("pipe");
    int file_fd = -1;
    if (in == stdin_kind::regular_file) {
        char tmpl[] = "/tmp/talk-test-stdin-XXXXXX";
        file_fd = ::mkstemp(tmpl);
        (void)!::write(file_fd, "typed from a file\n", 18);
        ::lseek(file_fd, 0, SEEK_SET);
        ::unlink(tmpl);
    }
    pid_ = ::fork();
    if (pid_ < 0) fail("fork");
    if (pid_ == 0) {
        switch (in) {
            case stdin_kind::pipe: ::dup2(inp[0], 0); break;
            case stdin_kind::dev_null: ::dup2(::open("/dev/null", O_RDONLY), 0); break;
            case stdin_kind::closed: ::close(0); break;
            case stdin_kind::regular_file: ::dup2(file_fd, 0); break;
        }
        ::dup2(outp[1], 1);
        ::dup2(errp[1], 2);
        std::vector<char*> cargv;
        for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
        cargv.push_back(nullptr);
        ::execv(cargv[0], cargv.data());
        ::_exit(127);
    }
    ::close(inp[0]);
    ::close(outp[1]);
    ::close(errp[1]);
    if (file_fd >= 0) ::close(file_fd);
    in_ = inp[1];
    if (in != stdin_kind::pipe) close_stdin();
    out_fd_ = outp[0];
    err_fd_ = errp[0];
    out_.reset(out_fd_);
    err_.reset(err_fd_);
}

child_process::~child_process() {
    if (!reaped_ && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    close_stdin();
    ::close(out_fd_);
    ::close(err_fd_);
}

void child_process::type(std::string_view line) { send(std::string(line) + "\n"); }

void child_process::send(std::string_view bytes) {
    ::signal(SIGPIPE, SIG_IGN);  // a child that exits early must not take the test with it
    while (!bytes.empty()) {
        ssize_t n = ::write(in_, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // it stopped reading: what it got is what it got
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

void child_process::close_stdin() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
}

void child_process::signal(int sig) { ::kill(pid_, sig); }

std::optional<int> child_process::wait(duration timeout) {
    if (reaped_) fail("already reaped");
    // A pidfd becomes readable when the process exits: a wait with a timeout and
    // no polling.
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd < 0) fail(std::string("pidfd_open: ") + std::strerror(errno));
    pollfd p{pidfd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    ::close(pidfd);
    if (n <= 0) return std::nullopt;
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) return std::nullopt;
    reaped_ = true;
    return status;
}

bool child_process::running() {
    if (reaped_) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        return false;
    }
    return true;
}

long child_process::cpu_ticks() const {
    std::ifstream f("/proc/" + std::to_string(pid_) + "/stat");
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto close_paren = all.rfind(')');
    std::istringstream rest(all.substr(close_paren + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; rest >> field; ++i) {  // fields 14 and 15 are utime and stime
        if (i == 14) utime = std::stol(field);
        if (i == 15) {
            stime = std::stol(field);
            break;
        }
    }
    return utime + stime;
}

// ---- talk_server ----

std::vector<std::string> talk_server::command(std::vector<std::string> args) {
    bool has_port = false;
    for (const auto& a : args)
        if (a.rfind("-p", 0) == 0 || a.rfind("--port", 0) == 0) has_port = true;
    std::vector<std::string> argv{talkd_path()};
    if (!has_port) {
        argv.push_back("-p");
        argv.push_back("0");
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

talk_server::talk_server(std::vector<std::string> args, stdin_kind in)
    : proc_(command(std::move(args)), in) {
    auto l = proc_.err().until(
        [](const std::string& s) { return s.find("listening on") != std::string::npos; }, 10000ms);
    if (!l) fail("talkd did not start listening: " + proc_.err().rest());
    listening_ = *l;
    port_ = std::atoi(l->c_str() + l->rfind(':') + 1);
}

std::optional<std::string> talk_server::console_line_starting(std::string_view prefix, duration timeout) {
    return console().until([&](const std::string& s) { return s.rfind(prefix, 0) == 0; }, timeout);
}

// ---- line_client ----

line_client::line_client(int port, const char* host) {
    std::string error;
    int code = 0;
    fd_ = net::connect_tcp(host, std::to_string(port), error, code);
    if (fd_ < 0) fail(error);
    int one = 1;  // a test sends small lines back to back: no Nagle delay between them
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    name_ = net::local_endpoint(fd_).text;
    in_.reset(fd_);
}

line_client::~line_client() { close(); }

void line_client::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void line_client::send(std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail(std::string("send: ") + std::strerror(errno));
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::optional<std::string> line_client::read_message(duration timeout) {
    return in_.until([](const std::string& s) { return s.rfind("*** ", 0) != 0; }, timeout);
}

void line_client::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

// ---- run_program ----

run_result run_program(const std::vector<std::string>& argv, std::string_view input, duration timeout) {
    auto deadline = clock::now() + timeout;
    child_process p(argv);
    p.send(input);
    p.close_stdin();
    run_result r;
    // Both pipes at once: a child that fills stderr while we wait on stdout would
    // otherwise never finish.
    while ((!p.out().at_eof() || !p.err().at_eof()) && ms_left(deadline) > 0) {
        pollfd fds[2] = {{p.out().at_eof() ? -1 : p.out().fd(), POLLIN, 0},
                         {p.err().at_eof() ? -1 : p.err().fd(), POLLIN, 0}};
        ::poll(fds, 2, ms_left(deadline));
        if (fds[0].revents) r.out += p.out().drain(0ms);
        if (fds[1].revents) r.err += p.err().drain(0ms);
    }
    auto status = p.wait(duration(ms_left(deadline)));  // its pipes closed: the exit is a moment away
    if (!status) return r;  // status -1; the child is killed when p goes
    r.status = WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status);
    return r;
}

}  // namespace talk::testing
