"""For the eval tests: a four-topic corpus indexed with two fake embedders (the `tiny` fixture), and its case file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


CORPUS = """Field notes

Bees

Honey bees live in colonies ruled by a single queen who lays every egg of the hive. Worker bees gather nectar from clover and lavender, store it in wax combs, and fan it with their wings until it thickens into honey. A strong colony holds about forty thousand workers in summer.

Lighthouses

The Bell Rock Lighthouse stands on a reef off the coast of Angus in Scotland. Robert Stevenson completed it in 1810 after four years of work by masons who could only build at low tide. Its lamp was first lit on a winter night, and it remains the oldest sea-washed lighthouse still in service.

Volcanoes

Mount Tambora on the island of Sumbawa erupted violently in April 1815. Ash from the eruption darkened skies around the world, and the following year became known in Europe and North America as the year without a summer, when frosts in June ruined harvests across New England.

Chess

The knight is the only chess piece that can jump over other pieces. It moves in an L shape, two squares in one direction and then one square at a right angle. Beginners often underestimate the knight, but in closed positions full of pawns it can be stronger than a bishop.
"""

CASES = [
    {"id": "s1", "question": "Who lays the eggs in a honey bee colony?", "expected": ["ruled by a single queen who lays every egg of the hive"], "answer": "queen"},
    {"id": "s2", "question": "When was the Bell Rock Lighthouse completed?", "expected": ["Robert Stevenson completed it in 1810"], "answer": "1810"},
    {"id": "s3", "question": "When did Mount Tambora erupt?", "expected": ["erupted violently in April 1815"], "answer": "1815"},
    {"id": "s4", "question": "Which chess piece can jump over other pieces?", "expected": ["The knight is the only chess piece that can jump over other pieces"], "answer": "knight"},
    {"id": "f1", "question": "Who built it?", "history": ["Where does the Bell Rock Lighthouse stand?"], "expected": ["Robert Stevenson completed it in 1810"], "answer": "Robert Stevenson"},
    {"id": "u1", "question": "What is the boiling point of mercury?", "expected": [], "answerable": False},
]


def write_cases(path: Path, cases: list[dict]) -> Path:
    path.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A four-topic corpus indexed with the hash:64 fake and with the deliberately poor hash:1 fake."""
    from leftqa.config import Settings
    from leftqa.index.builder import build_index
    from leftqa.index.embed import load_embedder

    root = tmp_path_factory.mktemp("eval")
    (root / "corpus").mkdir()
    (root / "corpus" / "notes.txt").write_text(CORPUS, encoding="utf-8")
    for model in ("hash:64", "hash:1"):
        settings = Settings(corpus_dir=root / "corpus", index_dir=root / model.replace(":", ""), model=model)
        build_index(settings, load_embedder(model))
    return {"root": root, "corpus": root / "corpus", "cases": write_cases(root / "cases.jsonl", CASES)}


def eval_args(tiny: dict[str, Path], model: str = "hash:64", *extra: str) -> list[str]:
    index = tiny["root"] / model.replace(":", "")
    return ["eval", "--cases", str(tiny["cases"]), "--corpus", str(tiny["corpus"]), "--index", str(index), "--model", model, *extra]
