"""``python -m tests.drills.broker PORT``: a moat-mqtt broker on 127.0.0.1:PORT
as its own process, so that a drill can kill and restart it."""

import sys

import anyio


async def main(port):
    from moat.mqtt.broker import create_broker

    cfg = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "timeout-disconnect-delay": 2,
        "auth": {"allow-anonymous": True, "password-file": None},
    }
    async with create_broker(config=cfg):
        print("broker ready", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]), backend="trio")
