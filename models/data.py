"""Readers for the labelled sentiment corpora in ``shared/data/sentiment/``.

Every reader returns ``(texts, labels)`` with labels in *our* 3-class index space
(0 = negative, 1 = neutral, 2 = positive). The Chinese corpora are binary, so their
labels are only ever 0 or 2.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

NEG, NEU, POS = 0, 1, 2

#: Chinese corpora (directory name -> description), all binary ``label,text`` CSVs.
CHINESE_SETS = ("chnsenticorp", "waimai_10k", "weibo_senti_2400")


@dataclass(frozen=True)
class Dataset:
    name: str
    lang: str
    n_classes: int  # 3 for TweetEval, 2 for the binary Chinese sets
    texts: list[str]
    labels: list[int]  # in our 0/1/2 space


def read_tweeteval(root: Path, split: str) -> Dataset:
    d = Path(root) / "tweeteval"
    with open(d / f"{split}_text.txt", encoding="utf-8") as f:
        texts = [line.rstrip("\n").strip() for line in f]
    with open(d / f"{split}_labels.txt", encoding="utf-8") as f:
        labels = [int(line) for line in f if line.strip()]
    if texts and texts[-1] == "" and len(texts) == len(labels) + 1:
        texts.pop()
    if len(texts) != len(labels):
        raise ValueError(f"tweeteval/{split}: {len(texts)} texts but {len(labels)} labels")
    return Dataset("tweeteval", "en", 3, texts, labels)


def read_binary_csv(root: Path, name: str, split: str) -> Dataset:
    path = Path(root) / name / f"{split}.csv"
    texts: list[str] = []
    labels: list[int] = []
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            lab = int(row["label"])
            if lab not in (0, 1):
                raise ValueError(f"{path}: label {lab!r} is not 0/1")
            texts.append(row["text"])
            labels.append(POS if lab == 1 else NEG)
    return Dataset(name, "zh", 2, texts, labels)


def read_split(root: Path, split: str) -> list[Dataset]:
    """TweetEval plus every Chinese set that is present under ``root``."""
    root = Path(root)
    out = [read_tweeteval(root, split)]
    for name in CHINESE_SETS:
        if (root / name / f"{split}.csv").exists():
            out.append(read_binary_csv(root, name, split))
    return out
