"""hypernode.stores: a store's generation is read off its directory, never guessed from a key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hypernode.core11.corestore import Corestore as Corestore11
from hypernode.corestore import Corestore as Corestore9
from hypernode.errors import HypernodeError
from hypernode.stores import open_corestore, store_generation


def test_a_new_store_needs_its_generation_said(tmp_path: Path) -> None:
    for directory in (None, tmp_path / "missing", tmp_path):
        with pytest.raises(ValueError, match="generation=9 .* generation=11"):
            open_corestore(directory)
    assert list(tmp_path.iterdir()) == []  # nothing made while refusing


async def test_each_generation_is_known_again_from_its_directory(tmp_path: Path) -> None:
    with open_corestore(tmp_path / "v11", generation=11) as store:
        assert isinstance(store, Corestore11)
        key = store.get("main").key
    v9 = open_corestore(tmp_path / "v9", generation=9)
    assert isinstance(v9, Corestore9)
    await v9.close()
    assert store_generation(tmp_path / "v11") == 11
    assert store_generation(tmp_path / "v9") == 9
    with open_corestore(tmp_path / "v11") as again:
        assert isinstance(again, Corestore11)
        assert again.get("main").key == key
    with pytest.raises(HypernodeError, match="hypercore 11 store, not a hypercore 9"):
        open_corestore(tmp_path / "v11", generation=9)
    with pytest.raises(HypernodeError, match="hypercore 9 store, not a hypercore 11"):
        open_corestore(tmp_path / "v9", generation=11)


def test_a_directory_of_other_files_is_not_taken_for_a_store(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    before = sorted(os.listdir(tmp_path))
    for generation in (None, 9, 11):
        with pytest.raises(HypernodeError, match="not a corestore's"):
            open_corestore(tmp_path, generation=generation)  # type: ignore[call-overload]
    assert sorted(os.listdir(tmp_path)) == before
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(HypernodeError, match="not a directory"):
        store_generation(tmp_path / "notes.txt")
