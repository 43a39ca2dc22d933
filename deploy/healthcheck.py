"""The container's health probe (deploy/Dockerfile HEALTHCHECK, deploy/compose.yaml): GET /healthz,
or the path given, from this machine's gunicorn as the HTTPS proxy would send it (an allowed
Host, X-Forwarded-Proto: https, so neither host checking nor the HTTPS redirect gets in the
way); exit status 0 on a 200 answer, 1 otherwise. Standard library only: it runs every few
seconds and must not cost a Django start."""

import http.client
import os
import sys

TIMEOUT_SECONDS = 4


def probe_address() -> tuple[str, int]:
    """Where gunicorn listens (MINICRM_BIND or PORT, as config/gunicorn.conf.py reads them), as an
    address to connect to: a wildcard bind is reached on the loopback address."""
    bind = os.environ.get("MINICRM_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
    host, _, port = bind.rpartition(":")
    if host in {"", "0.0.0.0", "[::]", "::"}:  # noqa: S104 (a bind address, read, not used)
        host = "127.0.0.1"
    return host.strip("[]"), int(port)


def probe_host() -> str:
    """A Host header Django accepts: the first of DJANGO_ALLOWED_HOSTS (a `.example.com` entry
    as `example.com`)."""
    first = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost").split(",")[0].strip()
    return "localhost" if first in {"", "*"} else first.lstrip(".")


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
    host, port = probe_address()
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)
    try:
        connection.request(
            "GET", path, headers={"Host": probe_host(), "X-Forwarded-Proto": "https"}
        )
        status = connection.getresponse().status
    except OSError as error:
        print(f"{path}: {error}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if status != 200:
        print(f"{path}: HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
