"""The value commands of @hyperswarm/dht 4.0.1, served by a DHT node, sans-IO.

- ``immutable-store``: a value stored under its BLAKE2b-256 hash; an update whose target is not the
  hash of its value is refused (``ERR_INVALID_INPUT``).
- ``mutable-store``: a ``Mutable`` (value, signature, seq, salt) stored under an ed25519 public key
  (and salt); the signature is over hypersign's ``signable`` (``[4:salt<n>:<salt>]3:seqi<seq>e1:v<n>:
  <value>``). A bad signature is refused (``ERR_INVALID_INPUT``), and so is a seq not above the one
  stored (``ERR_SEQ_MUST_EXCEED_CURRENT``, or ``ERR_INVALID_SEQ`` for another value at the same seq),
  the stored record then sent back as proof. A query returns the record if its seq is at least the
  one asked for.

Values are at most 1000 bytes and salts 64; at most ``max_values`` records are kept, the least
recently stored forgotten first (@hyperswarm/dht keeps 5000 in an LRU).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from hypernode.discovery.rpc import QUERY, IncomingRequest, RPCNode
from hypernode.messages.hyperswarm_dht import Mutable

VALUE_MAX_SIZE = 1000
SALT_MAX_SIZE = 64
MAX_VALUES = 5000


def signable(value: bytes, seq: int = 0, salt: bytes | None = None) -> bytes:
    """What a mutable record's signature covers (hypersign's bencode-like layout)."""
    body = b"3:seqi" + str(seq).encode() + b"e1:v" + str(len(value)).encode() + b":" + value
    if salt:
        return b"4:salt" + str(len(salt)).encode() + b":" + salt + body
    return body


class ValueStore:
    def __init__(self, max_values: int = MAX_VALUES) -> None:
        self.max_values = max_values
        self._values: OrderedDict[str, bytes] = OrderedDict()  # key -> stored bytes (value or Mutable)

    def __len__(self) -> int:
        return len(self._values)

    def register(self, rpc: RPCNode) -> None:
        rpc.register_command("immutable-store", query=self.immutable, update=self.immutable)
        rpc.register_command("mutable-store", query=self.mutable, update=self.mutable)

    def _set(self, key: str, data: bytes) -> None:
        self._values[key] = data
        self._values.move_to_end(key)
        while len(self._values) > self.max_values:
            self._values.popitem(last=False)

    def immutable(self, req: IncomingRequest) -> tuple[bytes | None, str | None]:
        key = "i" + req.target.hex()
        if req.type == QUERY:
            return self._values.get(key), None
        value = req.value or b""
        if len(value) > VALUE_MAX_SIZE or hashlib.blake2b(value, digest_size=32).digest() != req.target:
            return None, "ERR_INVALID_INPUT"
        self._set(key, value)
        return None, None

    def mutable(self, req: IncomingRequest) -> tuple[bytes | None, str | None]:
        rec = Mutable.decode(req.value or b"")  # DecodeError: the RPC layer drops the request
        salt = rec.salt or b""
        if len(salt) > SALT_MAX_SIZE:
            return None, "ERR_INVALID_INPUT"
        key = "m" + req.target.hex() + salt.hex()
        stored = self._values.get(key)
        if req.type == QUERY:
            if stored is not None and (Mutable.decode(stored).seq or 0) >= (rec.seq or 0):
                return stored, None
            return None, None
        if rec.value is None or rec.signature is None:
            return None, None
        seq = rec.seq or 0
        if len(rec.value) > VALUE_MAX_SIZE or len(req.target) != 32 or len(rec.signature) != 64:
            return None, "ERR_INVALID_INPUT"
        try:
            VerifyKey(req.target).verify(signable(rec.value, seq, rec.salt), rec.signature)
        except (BadSignatureError, ValueError):
            return None, "ERR_INVALID_INPUT"
        if stored is not None:
            old = Mutable.decode(stored)
            old_seq = old.seq or 0
            if seq == old_seq and old.value != rec.value:
                return stored, "ERR_INVALID_SEQ"
            if seq <= old_seq:
                return stored, "ERR_SEQ_MUST_EXCEED_CURRENT"
        self._set(key, Mutable(value=rec.value, signature=rec.signature, seq=seq, salt=rec.salt).encode())
        return None, None
