"""An atheris (libFuzzer, coverage-guided) harness for the wire decoder.

Each input picks a target with its first byte:
0. handshake bytes into a fresh responder :class:`Connection`;
1. plaintext after a completed handshake, fed in chunks the input chooses, to a connection that has a
   channel open both ways (so frames reach the message decoders and the channel logic);
2. one message body for the message type the input picks;
3. a bitfield-rle buffer.
Only :class:`ProtocolError` (and, for 2 and 3, the decoders' own DecodeError/RLEError) may come out:
anything else is a crash.

Run: ``python tests/fuzz/fuzz_wire.py -max_total_time=600 CORPUS_DIR`` (libFuzzer flags), or
``python tests/fuzz/fuzz_wire.py --seeds CORPUS_DIR`` to write the seed inputs.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["hypernode"]):
    from hypernode import crypto, rle
    from hypernode.protobuf import DecodeError
    from hypernode.wire import messages
    from hypernode.wire.connection import MESSAGE_TYPES, Connection, ProtocolError
    from hypernode.wire.frames import FrameDecoder, encode_frame
    from hypernode.wire.noise import KeyPair

FIXED = KeyPair.generate(bytes(range(32)))
KEY = bytes(range(32))
SPLIT = (b"\x01" * 32, b"\x02" * 32)


class _Plain:
    """Stands in for the XSalsa20 stream so that inputs are plaintext frames."""

    @staticmethod
    def update(data: bytes) -> bytes:
        return bytes(data)


def connected() -> Connection:
    c = Connection(False, key_pair=FIXED)
    c._started = True
    c._handshake = None
    c._split = SPLIT
    c._tx = c._rx = _Plain  # type: ignore[assignment]
    c.remote_public_key = bytes(32)
    c.open_channel(KEY)
    cap = crypto.remote_capability(KEY, *SPLIT)
    events: list = []
    c._on_open(1, messages.Open(discoveryKey=crypto.discovery_key(KEY), capability=cap), events)
    assert events, "the channel did not open"
    return c


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 4, data[1:]
    try:
        if mode == 0:
            Connection(False, key_pair=FIXED).receive_data(body)
        elif mode == 1:
            c = connected()
            fdp = atheris.FuzzedDataProvider(body)
            while fdp.remaining_bytes():
                c.receive_data(fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 600)))
                c.data_to_send()
        elif mode == 2:
            if body:
                try:
                    MESSAGE_TYPES[body[0] % len(MESSAGE_TYPES)].decode(body[1:])
                except DecodeError:
                    pass
                try:
                    list(FrameDecoder(1 << 16).feed(body))
                except ProtocolError:
                    pass
        else:
            try:
                rle.decode(body, max_bytes=1 << 16)
            except rle.RLEError:
                pass
    except ProtocolError:
        pass


def write_seeds(directory: str) -> None:
    import os

    k = bytes(range(32))
    frames = [
        encode_frame(1, 3, messages.Have(start=0, length=1 << 20, bitfield=rle.encode(b"\xff" * 8)).encode()),
        encode_frame(1, 5, messages.Want(start=0, length=1 << 20).encode()),
        encode_frame(1, 7, messages.Request(index=3, nodes=5).encode()),
        encode_frame(1, 8, messages.Cancel(index=3).encode()),
        encode_frame(1, 9, messages.Data(index=1, value=b"v" * 40, signature=b"s" * 64,
                                         nodes=[messages.Data.Node(index=2, hash=k, size=4)]).encode()),
        encode_frame(1, 1, messages.Options(extensions=["a", "b"], ack=True).encode()),
        encode_frame(1, 2, messages.Status(uploading=True, downloading=False).encode()),
        encode_frame(0, 1, messages.Options(extensions=["x"]).encode()),
        encode_frame(1, 15, b"\x00payload"),
        encode_frame(2, 0, messages.Open(discoveryKey=crypto.discovery_key(k[::-1]), capability=k).encode()),
        encode_frame(1, 10, messages.Close().encode()),
        b"\x00",
    ]
    initiator = Connection(True, key_pair=KeyPair.generate(bytes(32)))
    initiator.start()
    seeds = [b"\x00" + initiator.data_to_send(), b"\x01" + b"".join(frames)]
    seeds += [b"\x01" + f for f in frames]
    for i in range(len(MESSAGE_TYPES)):
        seeds.append(b"\x02" + bytes([i]) + frames[min(i, len(frames) - 1)][2:])
    seeds.append(b"\x03" + rle.encode(b"\xff" * 100 + b"\x01\x02" + b"\x00" * 50 + b"\xff"))
    os.makedirs(directory, exist_ok=True)
    for i, seed in enumerate(seeds):
        with open(os.path.join(directory, f"seed{i:02}"), "wb") as f:
            f.write(seed)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--seeds":
        write_seeds(sys.argv[2])
    else:
        atheris.Setup(sys.argv, TestOneInput)
        atheris.Fuzz()
