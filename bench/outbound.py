"""Outbound HTTP bench: what a hostile platform costs the tool (lti/http.py).

    .venv/bin/python bench/outbound.py

Starts a hostile server in its own process on loopback (so its memory is not counted), then, in this process:
  * fetches a 200 MB answer (streamed, no Content-Length) under the default byte cap, printing the process's
    resident memory (RSS, from /proc) before, at its peak during the fetch, and after;
  * fetches from a server that drips one byte every 2 s, with the default total deadline, printing how long the
    request held the thread.
The server stops by itself (bounded loops). Exits 0 either way: it is a measurement.
"""
import multiprocessing
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _serve(port_queue):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port_queue.put(listener.getsockname()[1])
    for _ in range(2):  # two requests, then stop
        conn, _ = listener.accept()
        request = conn.recv(4096)
        try:
            if b"/flood" in request:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
                chunk = b"{" * 65536
                for _ in range(200 * 16):  # 200 MB
                    conn.sendall(chunk)
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
                for _ in range(60):  # a byte every 2 s, for at most two minutes
                    conn.sendall(b" ")
                    time.sleep(2)
        except OSError:
            pass
        finally:
            conn.close()
    listener.close()


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    from lti_tool.config import load_settings
    from lti_tool.lti import http

    settings = load_settings("/tmp")
    policy = http.Policy(https_only=False, public_only=False, timeout=settings["HTTP_TIMEOUT"],
                         max_bytes=settings["HTTP_MAX_BYTES"])
    ports = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(ports,), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{ports.get(timeout=10)}"

    peak = [0.0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.005)

    before = _rss_mib()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        http.request("GET", base + "/flood", policy=policy)
        outcome = "read whole (no cap!)"
    except http.OutboundError as exc:
        outcome = f"refused: {exc.kind}"
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    print(f"200 MB answer, cap {policy.max_bytes // 1024} KiB: {outcome} after {elapsed * 1000:.0f} ms; "
          f"RSS {before:.1f} MiB before, {peak[0]:.1f} MiB peak, {_rss_mib():.1f} MiB after "
          f"(+{peak[0] - before:.1f} MiB)")

    started = time.monotonic()
    try:
        http.request("GET", base + "/drip", policy=policy)
        outcome = "answered (no deadline!)"
    except http.OutboundError as exc:
        outcome = f"refused: {exc.kind}"
    print(f"dripping server, a byte every 2 s, deadline {policy.timeout:g} s: {outcome} after "
          f"{time.monotonic() - started:.2f} s")
    server.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
