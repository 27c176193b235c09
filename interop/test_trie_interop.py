"""hypertrie 5 byte compatibility: random scenarios of puts, deletes and batches (hidden keys, flags,
null and empty values, deep paths) run in JS hypertrie@5.1.3 and in hypernode; every block must be
identical, and every get, list (recursive or not, reversed, gt, hidden, at checkouts) and diff must
answer the same. With a deliberately colliding hash, every answer must hold the same keys, values and
flags (the blocks may differ: JS orders colliding pointers by when its reads complete)."""

from __future__ import annotations

import json
import random

import pytest

from hypernode.feed import Feed
from hypernode.trie import Hypertrie
from hypernode.trie.node import split_key

pytestmark = pytest.mark.interop

NAMES = ["a", "b", "c", "dir", "x y", "é", "日本", "long-name-" + "n" * 40, "0", "a.txt"]


def collide(key: str) -> bytes:
    """The JS tool's colliding hash: [byteLength(component) % 3, 0 x 7] per component."""
    return b"".join(bytes([len(c.encode()) % 3]) + bytes(7) for c in split_key(key))


def random_key(rng: random.Random) -> str:
    depth = rng.choice([1, 1, 2, 2, 3, 4])
    key = "/".join(rng.choice(NAMES[:6] if depth > 2 else NAMES) for _ in range(depth))
    return ("/" + key) if rng.random() < 0.2 else key


def random_put(rng: random.Random, keys: list[tuple[str, bool]]) -> dict:
    if keys and rng.random() < 0.3:
        key, hidden = rng.choice(keys)
    else:
        key, hidden = random_key(rng), rng.random() < 0.15
        keys.append((key, hidden))
    r = rng.random()
    hex_value = None if r < 0.1 else ("" if r < 0.2 else rng.randbytes(rng.randint(1, 40)).hex())
    return {"type": "put", "key": key, "hex": hex_value, "hidden": hidden,
            "flags": rng.choice([0, 0, 0, 1, 2, 300])}


def random_del(rng: random.Random, keys: list[tuple[str, bool]]) -> dict:
    key, hidden = rng.choice(keys) if keys and rng.random() < 0.8 else (random_key(rng), False)
    return {"type": "del", "key": key, "hidden": hidden}


def scenario(seed: int, hash_name: str, n_ops: int) -> dict:
    rng = random.Random(seed)
    keys: list[tuple[str, bool]] = []
    ops = []
    for _ in range(n_ops):
        r = rng.random()
        if r < 0.6:
            ops.append(random_put(rng, keys))
        elif r < 0.85:
            ops.append(random_del(rng, keys))
        else:
            ops.append({"type": "batch", "ops": [random_put(rng, keys) if rng.random() < 0.7
                                                 else random_del(rng, keys)
                                                 for _ in range(rng.randint(1, 6))]})
    # versions: 1 + the blocks written, which the ops decide; queries name versions up to a bound
    # both sides agree on (a checkout past the end reads the newest state on both)
    queries: list[dict] = []
    prefixes = ["", "a", "/a", "a/b", "dir", "é", "b/c", "nothing/here", "a/"]
    for key, hidden in keys + [(random_key(rng), False) for _ in range(10)]:
        queries.append({"get": key, "hidden": hidden})
        queries.append({"get": key, "hidden": hidden, "prefix": True})
        queries.append({"get": key, "hidden": hidden, "closest": True})
    for prefix in prefixes:
        for hidden in (False, True):
            for recursive in (True, False):
                queries.append({"list": prefix, "recursive": recursive, "hidden": hidden})
            queries.append({"list": prefix, "reverse": True, "hidden": hidden})
            queries.append({"list": prefix, "gt": True, "recursive": rng.random() < 0.5, "hidden": hidden})
    for _ in range(8 if hash_name == "siphash" else 0):  # JS checkouts drop a custom hash
        v = rng.randint(1, n_ops)
        queries.append({"list": rng.choice(prefixes), "version": v})
        queries.append({"get": rng.choice(keys)[0] if keys else "a", "version": v})
    if hash_name == "siphash":
        for _ in range(6):
            a, b = rng.randint(0, n_ops), rng.randint(0, n_ops)
            queries.append({"diff": [a, b], "prefix": rng.choice(["", "a", "dir"])})
    return {"hash": hash_name, "ops": ops, "queries": queries}


def semantic(result: list | dict | None) -> list | dict | None:
    """An answer without block numbers, lists sorted: what a colliding hash leaves comparable."""
    if result is None or isinstance(result, dict):
        return result
    if result and isinstance(result[0], str):  # one node
        return [result[0], result[2], result[3]]
    return sorted(semantic(r) for r in result)  # type: ignore[type-var]


def node_out(n) -> list | None:
    return None if n is None else [n.key, n.seq, None if n.value is None else n.value.hex(), n.flags]


async def run_python(sc: dict) -> dict:
    feed = await Feed.open(None)
    trie = await Hypertrie.open(feed, hash_fn=collide if sc["hash"] == "collide" else None)

    def value(op: dict) -> bytes | None:
        return None if op.get("hex") is None else bytes.fromhex(op["hex"])

    for op in sc["ops"]:
        if op["type"] == "put":
            await trie.put(op["key"], value(op), hidden=op["hidden"], flags=op["flags"])
        elif op["type"] == "del":
            await trie.delete(op["key"], hidden=op["hidden"])
        else:
            await trie.batch([{**o, "value": value(o)} for o in op["ops"]])
    results: list = []
    for q in sc["queries"]:
        at = trie.checkout(q["version"]) if q.get("version") else trie
        if "get" in q:
            results.append(node_out(await at.get(q["get"], hidden=q.get("hidden", False),
                                                 prefix=q.get("prefix", False),
                                                 closest=q.get("closest", False))))
        elif "list" in q:
            nodes = await at.list(q["list"], recursive=q.get("recursive", True),
                                  reverse=q.get("reverse", False),
                                  gt=q.get("gt", False), hidden=q.get("hidden", False))
            results.append([node_out(n) for n in nodes])
        else:
            left = trie.checkout(q["diff"][0]) if q["diff"][0] else trie
            results.append([[d.key, d.left.seq if d.left else 0, d.right.seq if d.right else 0]
                            async for d in left.diff(q["diff"][1], q.get("prefix", ""))])
    blocks = [(await feed.get(i)).hex() for i in range(feed.length)]
    await feed.close()
    return {"blocks": blocks, "results": results}


@pytest.mark.parametrize("hash_name,n_ops,count", [("siphash", 200, 20), ("siphash", 3000, 1),
                                                   ("collide", 80, 12)])
async def test_random_scenarios_match_js(js, tmp_path, hash_name, n_ops, count):
    scenarios = [scenario(1000 * n_ops + i, hash_name, n_ops) for i in range(count)]
    spec = tmp_path / "scenarios.json"
    spec.write_text(json.dumps(scenarios))
    expected = js("trie_tool.js", spec)
    js_errors = 0
    for k, (sc, want) in enumerate(zip(scenarios, expected, strict=True)):
        got = await run_python(sc)
        if hash_name == "collide":
            # Colliding pointers in one bucket slot land in the order JS's reads complete (its cache
            # decides), and a delete re-writes the first pointer it meets, so the blocks drift apart;
            # what each side answers must still be the same.
            got["results"] = [semantic(r) for r in got["results"]]
            want["results"] = [semantic(r) for r in want["results"]]
        else:
            for i, (a, b) in enumerate(zip(got["blocks"], want["blocks"], strict=False)):
                assert a == b, f"scenario {k}: block {i} differs"
            assert len(got["blocks"]) == len(want["blocks"]), f"scenario {k}: block counts differ"
        for q, a, b in zip(sc["queries"], got["results"], want["results"], strict=True):
            if isinstance(b, dict):  # JS threw (see trie_tool.js): hypernode answered, nothing to compare
                assert "Cannot read properties of null" in b["error"], b
                js_errors += 1
                continue
            assert a == b, f"scenario {k}: {q} answered differently"
    assert js_errors <= len(scenarios) * 10
