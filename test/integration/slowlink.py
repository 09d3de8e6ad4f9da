"""Slow links for tests on one machine: the kernel here has no netem, so a node's inbound
traffic goes through a userspace relay that delivers every byte `delay` ms late (plus a
random jitter), in order, as one TCP stream over a slow path would. Each node advertises
its relay's address (orch init/join --advertise), so every connection to it, raft and RPC
alike, crosses it; a connection from a to b is slowed by b's relay in both directions.

    with Relays() as r:
        addr = r.add("127.0.0.1:7001")   # listen on addr, forward to 127.0.0.1:7001
        r.set(addr, 200, 50)             # 150-250 ms from now on
"""
import asyncio
import random
import threading


class _Relay:
    def __init__(self, target):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.delay = 0.0
        self.jitter = 0.0
        self.server = None
        self.conns = set()
        self.bytes = 0

    def lateness(self):
        return max(0.0, self.delay + random.uniform(-self.jitter, self.jitter))


async def _pipe(relay, reader, writer, conn_writers):
    """Copies reader to writer, each chunk due `lateness` after it was read and never before
    the chunk before it (the stream's order)."""
    queue = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def deliver():
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    writer.write_eof() if writer.can_write_eof() else writer.close()
                    return
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError):
            for w in conn_writers:
                w.transport.abort()

    task = asyncio.ensure_future(deliver())
    last = 0.0
    try:
        while True:
            data = await reader.read(65536)
            last = max(last, loop.time() + relay.lateness())
            queue.put_nowait((last, data or None))
            if not data:
                break
            relay.bytes += len(data)
    except (OSError, ConnectionError):
        # a reset on one side is a reset on the other, as late as the bytes before it
        await asyncio.sleep(max(0.0, last - loop.time()))
        task.cancel()
        for w in conn_writers:
            w.transport.abort()
        return
    await task


class Relays:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.relays = {}
        self.targets = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def add(self, target, host="127.0.0.1"):
        """A relay to target (IP:PORT); returns the address it listens on."""
        relay = _Relay(target)

        async def handle(creader, cwriter):
            try:
                ureader, uwriter = await asyncio.open_connection(*relay.target)
            except OSError:
                cwriter.transport.abort()  # nothing listens there: refused, as the target would
                return
            pair = (cwriter, uwriter)
            relay.conns.add(pair)
            try:
                await asyncio.gather(_pipe(relay, creader, uwriter, pair), _pipe(relay, ureader, cwriter, pair))
            except asyncio.CancelledError:
                pass  # the relays are closing
            finally:
                relay.conns.discard(pair)
                for w in pair:
                    w.close()

        async def start():
            relay.server = await asyncio.start_server(handle, host, 0)
            return relay.server.sockets[0].getsockname()[1]
        addr = "%s:%d" % (host, self._call(start()))
        self.relays[addr] = relay
        self.targets[target] = addr
        return addr

    def of(self, target):
        """The address of the relay to target."""
        return self.targets[target]

    def set(self, addr, delay_ms, jitter_ms=0):
        """From now on, bytes through the relay at addr arrive delay_ms +- jitter_ms late."""
        r = self.relays[addr]
        r.delay, r.jitter = delay_ms / 1000.0, jitter_ms / 1000.0

    def close(self):
        async def stop():
            for r in self.relays.values():
                r.server.close()
                for pair in list(r.conns):
                    for w in pair:
                        w.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            self._call(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()
