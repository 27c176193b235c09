"""hypertrie 5: the trie node and its path (:mod:`.node`), and the trie on a feed (:mod:`.trie`)."""

from hypernode.trie.node import CorruptTrieError, TrieNode
from hypernode.trie.trie import DiffEntry, Hypertrie, Watch

__all__ = ["CorruptTrieError", "DiffEntry", "Hypertrie", "TrieNode", "Watch"]
