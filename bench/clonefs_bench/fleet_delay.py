"""Fleet bench (row 14): a delay line between every client and the HTTP server.

`python3 -m clonefs_bench.fleet_delay LISTEN_PORT TARGET_PORT DELAY_MS` relays each TCP
connection to 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT and holds every chunk the server
sends for DELAY_MS before passing it on: each request's answer arrives DELAY_MS later, whoever
asks (clonefs's nbdkit, curl, the peer's nbdkit), as over a link whose round trip is DELAY_MS
longer. Why not `tc qdisc ... netem` on a veth pair: this kernel is built without sch_netem (and
without sch_fq, which a BPF departure-time delay would need). What it does not model: a window
limited by the round trip (it buffers up to QUEUE_CHUNKS chunks per connection), loss, a
bandwidth cap. Requests (client to server) pass at once."""
import asyncio
import sys

CHUNK = 1 << 18
QUEUE_CHUNKS = 256   # per connection: 64 MiB, far above 10 ms x any rate this host reaches


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(QUEUE_CHUNKS)

    async def release() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(release())
    try:
        while True:
            data = await reader.read(CHUNK)
            if delay:
                await queue.put((loop.time() + delay, data))
            else:
                await queue.put((0.0, data))
            if not data:
                break
        await sender
    except (ConnectionError, asyncio.CancelledError):
        sender.cancel()


async def _serve(listen_port: int, target_port: int, delay: float) -> None:
    async def on_client(c_reader, c_writer):
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            c_writer.close()
            return
        try:
            await asyncio.gather(_pump(c_reader, s_writer, 0.0), _pump(s_reader, c_writer, delay))
        except ConnectionError:
            pass
        finally:
            for w in (c_writer, s_writer):
                w.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", listen_port, backlog=1024)
    async with server:
        await server.serve_forever()


def main(argv) -> int:
    listen_port, target_port, delay_ms = int(argv[1]), int(argv[2]), float(argv[3])
    try:
        asyncio.run(_serve(listen_port, target_port, delay_ms / 1000))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
