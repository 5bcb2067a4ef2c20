#!/usr/bin/env python3
"""Writes the seed corpora in test/fuzz/corpus/<target>/ (run from anywhere).

The seeds are committed; this script is how they were made, and how to remake or
extend them: the chat seeds are programs in the byte code that fuzz_chat.cpp
describes, which is easier to write here than in a hex editor.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def b(s):
    return s.encode("utf-8", "surrogateescape") if isinstance(s, str) else bytes(s)


# ---- framer: byte 0 max_line-1 | bit 6 finish | bit 7 may stop; byte 1 stop mask; chunks ----

def framer(max_line, chunks, finish=False, stop_mask=None):
    head = (max_line - 1) & 63
    if finish:
        head |= 0x40
    if stop_mask is not None:
        head |= 0x80
    out = bytes([head, stop_mask or 0])
    for c in chunks:
        c = b(c)
        assert len(c) < 256
        out += bytes([len(c)]) + c
    return out


write("framer", "lines", framer(16, ["hello\nworld\r\n", "", "no end yet", " now\n"]))
write("framer", "crlf-split", framer(8, ["abc\r", "\n", "\r", "\n\r\r\n"]))
write("framer", "too-long", framer(4, ["abcdefgh\nxy\n", "12345", "6789\nok\n"]))
write("framer", "bound", framer(4, ["abcd\r\n", "abcd\r", "\n", "abcde\n", "abcd", "e\r\n"]))
write("framer", "skip-across", framer(3, ["a" * 10, "b" * 10, "c\nd\n"]))
write("framer", "finish", framer(8, ["first\nunterminated\r"], finish=True))
write("framer", "finish-long", framer(4, ["ok\n", "toolong"], finish=True))
write("framer", "stop", framer(16, ["one\ntwo\nthree\n", "fo", "ur\nfive\n"], stop_mask=0x55))
write("framer", "stop-all", framer(64, ["/quit\nafter\n\n\n" * 3], finish=True, stop_mask=0xFF))
write("framer", "empty-lines", framer(1, ["\n\n\r\n\r\r\n", "x\ny\r\nzz\n"]))

# ---- command: byte 0 says where to cut the rest in two ----

for i, text in enumerate([
    b"\x05/nick alice",
    b"\x03//etc/passwd",
    b"\x02/ x",
    b"\x04/MSG bob  hi there",
    b"\x00\t/who  ",
    b"\x07#Room-1 #lobby",
    b"\x05Admin ROOT x",
    b"\x03a_b-c 1abc _x -y",
    b"\x09nick.name a:b a,b",
    b"\x10" + b"x" * 17 + b" " + b"r" * 33,
    b"\x06/join #Lobby\t extra",
    b"\x01/\xc3\xa9t\xc3\xa9 \xff\x00",
]):
    write("command", "seed-%02d" % i, text)

# ---- sanitize: the text itself ----

for name, text in [
    ("ascii", b"hello, world\t!"),
    ("escape", b"\x1b[31mred\x1b[0m \x1b]0;title\x07"),
    ("c0-del", bytes(range(0, 32)) + b"\x7f"),
    ("c1", b"\xc2\x80\xc2\x9b\xc2\x9f\xc2\xa0"),
    ("bidi", "a\u202eevil\u202c \u2066x\u2069 \u2028\u2029".encode()),
    ("invalid", b"\xff\xfe\xc0\xaf\xe0\x80\x80\xed\xa0\x80\xf4\x90\x80\x80\xf8\x88\x80\x80\x80"),
    ("truncated", b"ok \xe2\x82 \xf0\x9f\x98"),
    ("unicode", "日本語 ☃ 😀 Ünïcödé".encode()),
    ("cr-overwrite", b"alice: hi\rbob: owned"),
    ("mixed", b"\xe2\x80\xae\x1b\xc3\x28\xf0\x9f\x98\x80\x7f\t"),
]:
    write("sanitize", name, text)

# ---- chat: flags byte, then instructions (see fuzz_chat.cpp) ----

CONNECT, SEND, LINE, EOF, OPER, WAIT, RESUME, DEADLINES = range(8)
DRAIN, DRAIN_SOME, TOGGLE, RESET, REPEAT, KICK, MSG, DRAIN_ALL = range(8, 16)


def connect(v6=False):
    return bytes([CONNECT | (0x10 if v6 else 0)])


def line(k, text):
    text = b(text)
    assert len(text) < 256
    return bytes([LINE, k, len(text)]) + text


def send(k, data):
    data = b(data)
    return bytes([SEND, k, len(data)]) + data


def eof(k):
    return bytes([EOF, k])


def oper(text, newline=True):
    text = b(text)
    return bytes([OPER | (0 if newline else 0x10), len(text)]) + text


def wait(ms):
    return bytes([WAIT, ms >> 8, ms & 255])


def resume(k, wait_first=False):
    return bytes([RESUME | (0x10 if wait_first else 0), k])


def deadlines(k=None):
    return bytes([DEADLINES | 0x10]) if k is None else bytes([DEADLINES, k])


def drain(k):
    return bytes([DRAIN, k])


def drain_some(k, n):
    return bytes([DRAIN_SOME, k, n >> 8, n & 255])


def toggle(k):
    return bytes([TOGGLE, k])


def reset(k):
    return bytes([RESET, k])


def repeat(k, times, data, newline=False):
    data = b(data)
    return bytes([REPEAT | (0x10 if newline else 0), k, times - 1, len(data)]) + data


def kick(k, why=b""):
    why = b(why)
    return bytes([KICK, k, len(why)]) + why


def msg(j, k, text):
    text = b(text)
    return bytes([MSG, j, k, len(text)]) + text


def drain_all():
    return bytes([DRAIN_ALL])


def chat(name, *parts, flags=0):
    write("chat", name, bytes([flags]) + b"".join(parts))


# Clients are numbered as they are (live clients, oldest first; K is taken modulo).
chat("basics",
     connect(), connect(), connect(True),
     line(0, "/nick alice"), line(1, "/nick bob"), line(0, "hello, bob"),
     line(1, "/me waves"), line(2, "/who"), line(2, "/rooms"), line(0, "/msg bob psst"),
     wait(1000),
     line(1, "/join #Tea"), line(0, "/join tea"), line(0, "in tea"), line(2, "/names"),
     line(1, "/help"), line(2, "//slash"), wait(1000),
     line(0, "/quit bye now"), eof(1), line(2, "/rooms"))
chat("names",
     connect(), connect(),
     line(0, "/nick Admin"), line(0, "/nick 1abc"), line(0, "/nick a.b"),
     wait(1000),
     line(0, "/nick carol"), line(1, "/nick CAROL"), line(1, "/nick"),
     wait(1000),
     line(0, "/nick carol"), line(0, "/nick Carol"), line(1, "/msg nobody hi"),
     wait(1000),
     line(1, "/join #"), line(1, "/join a b"), line(1, "/join lobby"), line(1, "/bogus x"),
     wait(1000), line(1, "/msg carol"), line(1, "/me  "), line(1, "/ x"), line(1, "/"))
chat("flood",
     connect(), connect(),
     send(0, "1\n2\n3\n4\n5\n6\n7\n8\n9\n"), eof(0),
     resume(0), resume(0, True), resume(0, True), wait(600), resume(0),
     send(0, "more\n"), resume(0, True), resume(0, True), resume(0, True), resume(0, True))
chat("flood-disconnect",
     connect(), connect(),
     send(0, "a\nb\nc\nd\ne\n"), line(1, "still here"),
     flags=1)
# Two clients stop reading: the operator's lines put the first over the soft limit
# for a second, and the second over the hard one.
chat("slow-reader",
     connect(), connect(), connect(),
     line(1, "/nick slow"), toggle(1), toggle(2),
     repeat(0, 3, "a fairly long line of text, sent again and again\n"),
     drain_some(1, 30), wait(600), resume(0, True), resume(0, True),
     *[oper("a long announcement from the operator, " * 6) for _ in range(5)],
     drain(2), wait(1100), oper("one more"),
     *[oper(b"\x01" * 250) for _ in range(8)], line(0, "who is left?"))
chat("timeouts",
     connect(), connect(),
     send(0, "an unfinished li"), wait(1500), send(0, "ne"), wait(600), deadlines(0),
     wait(4000), deadlines(), wait(2000), deadlines())
chat("too-long",
     connect(), connect(),
     line(0, "y" * 100), send(0, "z" * 70), send(0, "z\r\nfine\r\n"),
     repeat(1, 256, "w" * 255), repeat(1, 10, "w" * 255), line(0, "after"))
chat("operator",
     connect(), connect(True), connect(),
     oper("hello from the operator"), oper("/who"), oper("/stats"), oper("/nonsense"),
     oper("//slash"), oper("\x1b[2Jpartial", newline=False), oper(" line\r\n", newline=False),
     line(0, "/nick dave"), oper("/kick dave enough"), oper("/kick nobody"), oper("/kick"),
     kick(1, "bye \x1b[31m"), oper("/shutdown"), connect(), line(0, "too late"))
chat("control-bytes",
     connect(), connect(),
     line(0, "/nick eve"), line(0, "\x1b]0;pwned\x07 \x1b[31mred"), line(0, "a\rb\x7f\x00c"),
     wait(1000),
     line(0, b"\xc2\x9b\xe2\x80\xae\xe2\x80\xa8\xff\xfe\xc0\xaf"), line(0, "/me \x1b[5m"),
     line(0, "/msg 127.0.0.1:1002 \x1b[H"), wait(1000),
     line(0, "/join \x1b"), line(0, "/quit \x1b[2J\r"))
chat("drop-partial",
     connect(), connect(), connect(),
     toggle(1), line(0, "first line for the slow one"), line(0, "second line"),
     drain_some(1, 7), oper("/kick 127.0.0.1:1002 mid-line"), drain_all())
chat("reset-and-msg",
     connect(), connect(True), connect(),
     msg(0, 1, "hi by address"), msg(1, 0, "hi back"), msg(2, 2, "to myself"),
     reset(0), line(1, "/who"), msg(1, 0, "gone?"), toggle(1), drain(1), reset(1),
     eof(0), connect(), connect(), line(3, "/rooms"))
chat("crowd",
     *[connect(i % 2 == 1) for i in range(9)],
     *[line(i, "/nick u%d" % i) for i in range(8)],
     line(7, "/join side"), line(6, "/join side"), line(5, "/join other"),
     line(0, "/who"), line(1, "/rooms"), oper("/who"), oper("/stats"),
     wait(1000), line(7, "/join lobby"), line(6, "/quit"), line(5, "/quit"), line(0, "/rooms"))

# The global budget: a talker in a room of its own fills message chunk after chunk
# with /help replies, while clients in the lobby that stopped reading each keep a
# private message from another chunk alive.
budget = [connect(), connect(), connect(), connect(), connect(), connect(), connect()]
budget += [line(0, "/join noise"), line(1, "/nick m")]
for k in range(2, 7):
    budget += [toggle(k)]
for k in range(2, 6):
    budget += [msg(1, k, "hold this chunk"), repeat(0, 150, "/help\n")]
    for _ in range(48):
        budget += [send(0, ""), wait(600), resume(0)]
chat("budget", *budget)
