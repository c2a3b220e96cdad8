#!/usr/bin/env python3
"""A TCP proxy that bench/faults.sh puts in front of a dependency and turns bad on demand.

    python3 bench/fault_proxy.py --listen 127.0.0.1:13307 --upstream 127.0.0.1:3307 --mode-file F

The mode is the first line of F, reread every 50 ms (write it atomically: echo … > F.tmp; mv):

    pass            forward everything
    latency <ms>    delay every chunk, both ways, by <ms>
    stall           accept connections, forward nothing (open connections hang too) until the mode changes
    drop <f>        lose fraction <f> of the chunks; a connection that lost one forwards nothing more
                    (TCP never delivers a gap: the peer waits, as when retransmits never arrive)
    reset <f>       reset the connection (RST) on fraction <f> of the chunks
    cut             reset every open connection and every new one (as when the server dies)

The same modes as testkit/src/fault_proxy.rs, which the quick CI scenarios use.
"""
import argparse
import asyncio
import os
import socket
import struct

MODE = ("pass", 0.0)
COUNTER = 0


def parse(text):
    parts = text.split()
    if not parts:
        return ("pass", 0.0)
    name = parts[0]
    value = float(parts[1]) if len(parts) > 1 else 0.0
    if name not in ("pass", "latency", "stall", "drop", "reset", "cut"):
        return ("pass", 0.0)
    return (name, value)


async def watch_mode(path):
    global MODE
    last = None
    while True:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            text = "pass"
        if text != last:
            MODE = parse(text)
            last = text
        await asyncio.sleep(0.05)


def hit(fraction):
    """Every 1/fraction-th chunk, spread evenly (deterministic, so reruns compare)."""
    global COUNTER
    n = COUNTER
    COUNTER += 1
    return int((n + 1) * fraction) > int(n * fraction)


def reset(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def pump(reader, writer, peer):
    black_holed = False
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            while MODE[0] == "stall":
                await asyncio.sleep(0.05)
            name, value = MODE
            if name == "cut" or (name == "reset" and hit(value)):
                reset(writer)
                reset(peer)
                return
            if name == "latency":
                await asyncio.sleep(value / 1000.0)
            if name == "drop" and hit(value):
                black_holed = True
            if black_holed:
                continue
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def handle(client_reader, client_writer, upstream):
    while MODE[0] == "stall":
        await asyncio.sleep(0.05)
    if MODE[0] == "cut":
        reset(client_writer)
        return
    host, port = upstream
    try:
        up_reader, up_writer = await asyncio.open_connection(host, port)
    except OSError:
        reset(client_writer)
        return
    for w in (client_writer, up_writer):
        sock = w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    a = asyncio.ensure_future(pump(client_reader, up_writer, client_writer))
    b = asyncio.ensure_future(pump(up_reader, client_writer, up_writer))
    done, pending = await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for w in (client_writer, up_writer):
        try:
            w.close()
        except Exception:
            pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--mode-file", required=True)
    args = parser.parse_args()
    lhost, lport = args.listen.rsplit(":", 1)
    uhost, uport = args.upstream.rsplit(":", 1)
    upstream = (uhost, int(uport))
    asyncio.ensure_future(watch_mode(args.mode_file))
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, upstream), lhost, int(lport), reuse_address=True, backlog=1024
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
