"""Extension messages: named side channels on a stream or on a feed's channel (abstract-extension).

Each side keeps its registered extension names sorted; an extension's id is its index in the sender's
sorted list. The lists are exchanged in ``Options`` messages, so a receiver maps the remote id to a
name through the remote's list and drops messages for names it has not registered. Payloads are
encoded with the extension's encoding: ``binary`` (bytes), ``utf-8`` (str) or ``json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

ENCODINGS = ("binary", "utf-8", "json")


def encode_payload(encoding: str, message: Any) -> bytes:
    if encoding == "json":
        return json.dumps(message, separators=(",", ":")).encode()
    if encoding in ("utf-8", "utf8"):
        return message.encode() if isinstance(message, str) else bytes(message)
    if isinstance(message, str):
        return message.encode()
    return bytes(message)


def decode_payload(encoding: str, data: bytes) -> Any:
    """Decode; raises ValueError (UnicodeDecodeError, json errors) for a payload that doesn't fit."""
    if encoding == "json":
        return json.loads(data.decode())
    if encoding in ("utf-8", "utf8"):
        return data.decode()
    return data


class Extension:
    """A registered extension: ``send(message, peer)`` to one peer, ``broadcast(message)`` to all."""

    def __init__(self, registry: Extensions, name: str, encoding: str,
                 on_message: Callable[[Any, Any], None] | None) -> None:
        if encoding not in ENCODINGS and encoding != "utf8":
            raise ValueError(f"unknown extension encoding {encoding!r} (use one of {ENCODINGS})")
        self.registry = registry
        self.name = name
        self.encoding = encoding
        self.on_message = on_message

    @property
    def id(self) -> int:
        return self.registry.names().index(self.name)

    def encode(self, message: Any) -> bytes:
        return encode_payload(self.encoding, message)

    def send(self, message: Any, peer: Any) -> None:
        self.registry.sender(self, peer, self.encode(message))

    def broadcast(self, message: Any) -> None:
        data = self.encode(message)
        for peer in self.registry.peers():
            self.registry.sender(self, peer, data)

    def destroy(self) -> None:
        self.registry.remove(self)


class Extensions:
    """The extensions registered on one stream or one feed.

    ``sender(extension, peer, payload)`` delivers an encoded message to a peer; ``peers()`` lists the
    peers for broadcast; ``on_change()`` runs when the set of names changes (to send new Options).
    """

    def __init__(self, sender: Callable[[Extension, Any, bytes], None] | None = None,
                 peers: Callable[[], list[Any]] | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self._by_name: dict[str, Extension] = {}
        self.sender: Callable[[Extension, Any, bytes], None] = sender or (lambda e, p, d: None)
        self.peers: Callable[[], list[Any]] = peers or list
        self.on_change = on_change
        self.changes = 0  # bumped whenever the set of names changes

    def register(self, name: str, encoding: str = "binary",
                 on_message: Callable[[Any, Any], None] | None = None) -> Extension:
        if name in self._by_name:
            raise ValueError(f"an extension named {name!r} is already registered")
        ext = Extension(self, name, encoding, on_message)
        self._by_name[name] = ext
        self.changes += 1
        if self.on_change:
            self.on_change()
        return ext

    def remove(self, ext: Extension) -> None:
        if self._by_name.get(ext.name) is ext:
            del self._by_name[ext.name]
            self.changes += 1
            if self.on_change:
                self.on_change()

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def get(self, name: str) -> Extension | None:
        return self._by_name.get(name)

    def __len__(self) -> int:
        return len(self._by_name)

    def dispatch(self, remote_names: list[str] | None, remote_id: int, payload: bytes,
                 peer: Any) -> Extension | None:
        """Deliver a message with the remote's id; returns the extension, or None if not ours.

        A payload that does not decode with the extension's encoding is dropped (the JS stack calls
        ``onerror`` and carries on); the connection is not at fault.
        """
        if remote_names is None or not 0 <= remote_id < len(remote_names):
            return None
        ext = self._by_name.get(remote_names[remote_id])
        if ext is None:
            return None
        try:
            message = decode_payload(ext.encoding, payload)
        except ValueError:
            return None
        if ext.on_message is not None:
            ext.on_message(message, peer)
        return ext
