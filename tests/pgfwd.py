#!/usr/bin/env python3
"""TCP to Unix-socket forwarder for test_dbnet: makes the test PostgreSQL
(which listens on a Unix socket only) reachable at ADDR:PORT, from inside
the network namespace that plays the database host.

    pgfwd.py ADDR PORT SOCKET

Prints "listening ADDR:PORT" once it accepts connections. Each accepted
connection gets its own connection to SOCKET and two threads copying bytes;
when either side ends or fails, both are closed, so the server sees its
client go. The accepted sockets carry keepalives and TCP_USER_TIMEOUT as
docs/OPERATIONS.md advises for the server (tcp_keepalives_*): a client that
vanished is dropped within seconds and its backend ends, releasing what its
open transaction held.
"""
import socket
import sys
import threading

KEEPIDLE_S = 5
KEEPINTVL_S = 2
KEEPCNT = 3
USER_TIMEOUT_MS = 10000


def pump(src, dst, both):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in both:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client, path):
    client.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPIDLE_S)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPINTVL_S)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPCNT)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, USER_TIMEOUT_MS)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.connect(path)
    except OSError as e:
        print(f"cannot connect to {path}: {e}", flush=True)
        client.close()
        return
    both = (client, server)
    threads = [threading.Thread(target=pump, args=(a, b, both), daemon=True)
               for a, b in ((client, server), (server, client))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    server.close()


def main():
    if len(sys.argv) != 4:
        print("usage: pgfwd.py ADDR PORT SOCKET", file=sys.stderr)
        return 2
    addr, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(64)
    print(f"listening {addr}:{port}", flush=True)
    while True:
        client, _ = ls.accept()
        threading.Thread(target=serve, args=(client, path), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
