#!/usr/bin/python3
"""A fault-injecting HTTP/1.1 proxy in front of an S3 server, for tests.

    tests/s3/faultproxy.py --upstream http://127.0.0.1:PORT [--env-file FILE]

Listens on two loopback ports the kernel picks: the proxy itself, which
forwards every request to the upstream server over a keep-alive connection
of its own per client connection, and a control port. Once both listen it
writes shell assignments for eval (to FILE, atomically, or to stdout):

    GLIDEFS_FAULT_ENDPOINT=http://127.0.0.1:P   point the client here
    GLIDEFS_FAULT_CONTROL=C                     the control port

The control port answers plain GETs (HTTP/1.0 is enough; curl or a bare
socket will do), each with "200 OK" and a text body, or 400 and why:

    /set?fault=KIND[&n=N][&method=M][&match=S][&ms=D]
                                              arm one fault, replacing any
    /clear                                    disarm (and end "down")
    /reset                                    disarm and zero the counters
    /stats                                    "name value" lines, see STATS

A fault hits the next N requests (n=0: every one until cleared; default
1); with method= only those of that HTTP method, with match= only those
whose target (path and query) contains S. The others pass untouched and
do not count. KIND is one of:

    500, 503     answer that status with an S3 error document, unforwarded
    slowdown     answer 503 with S3's "SlowDown" code, unforwarded
    delay        wait ms milliseconds before forwarding
    drop         read the request, then close the connection unanswered
    lose         forward, then close the connection instead of answering:
                 the request took effect, the client never hears so
    truncate     forward, send the headers and half the body, then close
    corrupt      forward, and flip the byte in the middle of the body
    down         refuse every new connection (the listening socket stops
                 listening, its port kept) and close the open ones, until
                 /clear; n and method do not apply

truncate and corrupt only count answers that carry a body (2xx and at
least one byte), so a PUT before the GET they aim at does not use them up.
The proxy reads whole answers before relaying them: it is for tests, not
for large objects.
"""

import argparse
import http.client
import http.server
import os
import select
import socket
import sys
import threading
import time
import urllib.parse

STATS = ("connections", "requests", "requests_get", "requests_put", "requests_post",
         "requests_delete", "requests_head", "forwarded", "faults", "status", "delayed",
         "dropped", "lost", "truncated", "corrupted", "down_closed", "upstream_errors")

KINDS = ("500", "503", "slowdown", "delay", "drop", "lose", "truncate", "corrupt", "down")

# Hop-by-hop headers are the proxy's own business on each side; the answer
# is re-framed with a Content-Length, so the upstream framing goes too.
HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
               "transfer-encoding", "upgrade", "expect"}

S3_ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "ServiceUnavailable", "Please reduce your request rate."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
}


class Faults:
    """The armed fault and the counters; every handler thread shares one."""

    def __init__(self):
        self.lock = threading.Lock()
        self.kind = None
        self.left = 0  # requests the fault still hits; 0 with kind set: all
        self.method = None
        self.match = None
        self.ms = 0
        self.counts = dict.fromkeys(STATS, 0)

    def count(self, name, by=1):
        with self.lock:
            self.counts[name] += by

    def arm(self, kind, n, method, match, ms):
        with self.lock:
            self.kind, self.left, self.method, self.match, self.ms = kind, n, method, match, ms

    def clear(self, zero):
        with self.lock:
            self.kind = None
            if zero:
                self.counts = dict.fromkeys(STATS, 0)

    def is_down(self):
        with self.lock:
            return self.kind == "down"

    def take(self, method, target, kinds):
        """The armed fault if it is one of kinds and hits this request, used up
        by one; else None. A fault that acts on the answer (lose, truncate,
        corrupt) is taken only once the answer is known to qualify."""
        with self.lock:
            if (self.kind not in kinds or (self.method and self.method != method)
                    or (self.match and self.match not in target)):
                return None
            kind, ms = self.kind, self.ms
            if self.left:
                self.left -= 1
                if self.left == 0:
                    self.kind = None
            self.counts["faults"] += 1
            return kind, ms

    def stats(self):
        with self.lock:
            return "".join("%s %d\n" % (k, self.counts[k]) for k in STATS)


class Listener:
    """The proxy's listening socket, which "down" stops and /clear restarts.

    It is bound to a port named explicitly: Linux then keeps the port bound
    through a shutdown(), so listen() can start again on the same port and
    nothing else can take it meanwhile (with port 0 it would be released).
    """

    def __init__(self):
        for _ in range(20):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            probe.close()
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self.sock.bind(("127.0.0.1", port))
                break
            except OSError:
                self.sock.close()  # taken between the probe and the bind
        else:
            raise OSError("no free port on 127.0.0.1")
        self.port = port
        self.open_lock = threading.Lock()  # open, and listening or not
        self.open = set()  # client sockets, for "down" to close
        self.up = threading.Event()
        self.start()

    def start(self):
        with self.open_lock:
            self.sock.listen(64)
            self.up.set()

    def stop(self):
        with self.open_lock:
            # Once only: shut down a second time, the socket queues connections
            # again after listen() but a blocked accept() never returns them.
            if self.up.is_set():
                self.up.clear()
                # Wakes accept() with EINVAL; new connections are refused.
                self.sock.shutdown(socket.SHUT_RDWR)
            conns = list(self.open)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(conns)

    def accept(self):
        while True:
            self.up.wait()
            try:
                return self.sock.accept()
            except OSError:
                # Stopped under us (down); wait until it listens again.
                time.sleep(0.01)


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    """One client connection; BaseHTTPRequestHandler keeps it alive."""

    protocol_version = "HTTP/1.1"
    faults = None  # set on the subclass made in main()
    upstream = None  # (host, port)

    def setup(self):
        super().setup()
        self.conn = None  # to the upstream, opened on first use

    def log_message(self, fmt, *args):
        sys.stderr.write("faultproxy: %s\n" % (fmt % args))

    def relay(self):
        f = self.faults
        f.count("requests")
        f.count("requests_" + self.command.lower())
        body = self.read_body()
        if body is None:
            return
        if f.is_down():
            # Raced with "down": the connection was being closed anyway.
            self.close_connection = True
            return
        if self.fault_before():
            return
        got = self.forward(body)
        if got is None:
            return
        f.count("forwarded")
        self.answer(*got)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = relay

    def fault_before(self):
        """A fault that comes before the upstream sees the request; True when
        it answered (or dropped) the request itself."""
        f = self.faults
        hit = f.take(self.command, self.path, ("500", "503", "slowdown", "delay", "drop"))
        if not hit:
            return False
        kind, ms = hit
        self.log_message("%s %s: %s", self.command, self.path, kind)
        if kind == "drop":
            f.count("dropped")
            self.close_connection = True
            return True
        if kind == "delay":
            f.count("delayed")
            if not self.client_left(ms / 1000):
                return False
            self.close_connection = True
            return True
        f.count("status")
        self.answer_error(*S3_ERRORS[kind])
        return True

    def answer(self, status, reason, headers, data):
        """The upstream's answer to the client, through the faults that act on
        answers: lost whole, cut short, or with a byte flipped."""
        f = self.faults
        kinds = ("lose",)
        if 200 <= status < 300 and data:
            kinds += ("truncate", "corrupt")
        kind = (f.take(self.command, self.path, kinds) or (None,))[0]
        if kind:
            self.log_message("%s %s: %s the answer (%d, %d bytes)", self.command, self.path,
                             kind, status, len(data))
        if kind == "lose":
            f.count("lost")
            self.close_connection = True
            return
        if kind == "corrupt":
            f.count("corrupted")
            data = bytearray(data)
            data[len(data) // 2] ^= 0xFF
        self.send_head(status, reason, headers, len(data))
        if kind == "truncate":
            f.count("truncated")
            self.wfile.write(data[:len(data) // 2])
            self.close_connection = True
        elif self.command != "HEAD":
            self.wfile.write(data)

    def client_left(self, seconds):
        """Wait seconds, but say so (True) as soon as the client closes its
        connection: a client that timed out. Its request is then never
        forwarded, so it cannot meet a fault armed after it gave up."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if select.select([self.connection], [], [], left)[0]:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return True
                except OSError:
                    return True
                # A request behind this one, not a close: the client is there.
                time.sleep(max(0.0, end - time.monotonic()))
        return False

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.send_error(501, "chunked request bodies are not supported")
            return None
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return None
        return self.rfile.read(n) if n > 0 else b""

    def forward(self, body):
        """The upstream's answer, read whole: (status, reason, headers, body).
        A kept-alive upstream connection the server closed meanwhile is
        opened again once; any other failure answers 502."""
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_HEADERS]
        while True:
            fresh = self.conn is None
            if fresh:
                self.conn = http.client.HTTPConnection(*self.upstream, timeout=120)
            try:
                self.conn.putrequest(self.command, self.path, skip_host=True,
                                     skip_accept_encoding=True)
                for k, v in headers:
                    self.conn.putheader(k, v)
                self.conn.endheaders(body)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, resp.reason, resp.getheaders(), data
            except (OSError, http.client.HTTPException) as e:
                self.conn.close()
                self.conn = None
                if fresh:
                    self.faults.count("upstream_errors")
                    self.log_message("upstream: %s", e)
                    self.answer_error(502, "BadGateway", "upstream: %s" % e)
                    return None

    def send_head(self, status, reason, headers, length):
        lines = ["HTTP/1.1 %d %s" % (status, reason)]
        lines += ["%s: %s" % (k, v) for k, v in headers
                  if k.lower() not in HOP_HEADERS and k.lower() != "content-length"]
        # HEAD's Content-Length is the object's, not the (empty) body's.
        if self.command == "HEAD":
            lines += ["%s: %s" % (k, v) for k, v in headers if k.lower() == "content-length"]
        else:
            lines.append("Content-Length: %d" % length)
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def answer_error(self, status, code, message):
        doc = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
               "<Message>%s</Message><Resource>%s</Resource>"
               "<RequestId>faultproxy</RequestId></Error>" % (code, message, self.path))
        data = doc.encode()
        reason = http.server.BaseHTTPRequestHandler.responses.get(status, ("Error",))[0]
        self.send_head(status, reason, [("Content-Type", "application/xml")], len(data))
        self.wfile.write(data)

    def finish(self):
        if self.conn:
            self.conn.close()
        try:
            super().finish()
        except OSError:
            pass


def serve_client(handler_class, listener, sock, addr):
    with listener.open_lock:
        listener.open.add(sock)
    try:
        handler_class(sock, addr, None)
    except OSError:
        pass  # the client went away (a timeout on its side, or "down")
    finally:
        with listener.open_lock:
            listener.open.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


def serve_proxy(handler_class, listener, faults):
    while True:
        sock, addr = listener.accept()
        faults.count("connections")
        threading.Thread(target=serve_client, args=(handler_class, listener, sock, addr),
                         daemon=True).start()


def control_handler(faults, listener):
    class Control(http.server.BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            sys.stderr.write("faultproxy control: %s\n" % (fmt % args))

        def reply(self, status, text):
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            q = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/stats":
                self.reply(200, faults.stats())
            elif url.path in ("/clear", "/reset"):
                faults.clear(url.path == "/reset")
                listener.start()
                self.reply(200, "cleared\n")
            elif url.path == "/set":
                why = self.arm(q)
                self.reply(400 if why else 200, (why or "armed") + "\n")
            else:
                self.reply(404, "no such control\n")

        def arm(self, q):
            kind = q.get("fault")
            if kind not in KINDS:
                return "fault must be one of " + ", ".join(KINDS)
            try:
                n = int(q.get("n", "1"))
                ms = int(q.get("ms", "0"))
            except ValueError:
                return "n and ms are whole numbers"
            if n < 0 or ms < 0 or (kind == "delay" and not ms):
                return "n and ms may not be negative, and a delay needs ms"
            method = q.get("method", "").upper() or None
            if kind == "down":
                faults.arm(kind, 0, None, None, 0)
                faults.count("down_closed", listener.stop())
            else:
                # Replacing "down" ends it.
                faults.arm(kind, n, method, q.get("match") or None, ms)
                listener.start()
            return None

    return Control


def main():
    ap = argparse.ArgumentParser(description="Fault-injecting proxy for S3 tests.")
    ap.add_argument("--upstream", required=True, help="http://HOST:PORT of the S3 server")
    ap.add_argument("--env-file", help="write the shell assignments here, not to stdout")
    args = ap.parse_args()
    up = urllib.parse.urlsplit(args.upstream)
    if up.scheme != "http" or not up.hostname or not up.port:
        ap.error("--upstream must be http://HOST:PORT")

    faults = Faults()
    listener = Listener()
    handler = type("Handler", (ProxyHandler,), {"faults": faults,
                                                "upstream": (up.hostname, up.port)})
    control = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                              control_handler(faults, listener))
    control.daemon_threads = True
    threading.Thread(target=serve_proxy, args=(handler, listener, faults),
                     daemon=True).start()

    out = ("GLIDEFS_FAULT_ENDPOINT=http://127.0.0.1:%d\nGLIDEFS_FAULT_CONTROL=%d\n"
           % (listener.port, control.server_address[1]))
    if args.env_file:
        # Written whole, then renamed: a reader never sees half of it.
        tmp = args.env_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(out)
        os.rename(tmp, args.env_file)
    else:
        sys.stdout.write(out)
        sys.stdout.flush()
    control.serve_forever()


if __name__ == "__main__":
    main()
