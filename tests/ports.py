"""A TCP port on the loopback interface that nothing listens on (yet), for a server a test
starts, or for a service a test wants unreachable (connections to it are refused)."""

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
