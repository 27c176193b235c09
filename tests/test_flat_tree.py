"""flat-tree index math against the npm package's answers, and its invariants."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hypernode import flat_tree


def test_known_answers(vectors):
    for row in vectors("hypercore_crypto.json")["flat"]:
        i = row["i"]
        assert flat_tree.depth(i) == row["depth"], i
        assert flat_tree.offset(i) == row["offset"], i
        assert flat_tree.parent(i) == row["parent"], i
        assert flat_tree.sibling(i) == row["sibling"], i
        assert flat_tree.left_span(i) == row["leftSpan"], i
        assert flat_tree.right_span(i) == row["rightSpan"], i
        assert flat_tree.left_child(i) == row["leftChild"], i
        assert flat_tree.right_child(i) == row["rightChild"], i
        if row["fullRoots"] is not None:
            assert flat_tree.full_roots(i) == row["fullRoots"], i


@given(st.integers(min_value=0, max_value=2**40))
def test_invariants(i):
    d = flat_tree.depth(i)
    assert flat_tree.index(d, flat_tree.offset(i)) == i
    p = flat_tree.parent(i)
    assert flat_tree.depth(p) == d + 1
    assert i in (flat_tree.left_child(p), flat_tree.right_child(p))
    assert flat_tree.sibling(flat_tree.sibling(i)) == i
    assert flat_tree.parent(flat_tree.sibling(i)) == p
    assert flat_tree.right_span(i) - flat_tree.left_span(i) == 2 * (2**d - 1)


@given(st.integers(min_value=0, max_value=5000))
def test_full_roots_cover_the_leaves(n):
    roots = flat_tree.full_roots(2 * n)
    covered = sum((flat_tree.right_span(r) - flat_tree.left_span(r)) // 2 + 1 for r in roots)
    assert covered == n
    spans = [(flat_tree.left_span(r), flat_tree.right_span(r)) for r in roots]
    for (_a, b), (c, _d) in zip(spans, spans[1:], strict=False):
        assert b + 2 == c


@given(st.integers(min_value=0, max_value=2**20))
def test_iterator_matches_functions(i):
    ite = flat_tree.Iterator(i)
    p = flat_tree.parent(i)
    s = flat_tree.sibling(i)
    assert ite.sibling() == s
    ite.seek(i)
    assert ite.parent() == p
    assert ite.left_span() == flat_tree.left_span(p)
