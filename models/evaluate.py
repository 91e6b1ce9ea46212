"""Metrics of a scorer on the labelled sets (``flarewatch model eval``).

* TweetEval (3-class): macro-averaged recall, the official TweetEval sentiment metric, plus
  accuracy and per-class recall.
* Chinese sets (binary): accuracy of negative-vs-positive, where the prediction is positive
  when the signed sentiment is > 0 (for a 3-class model, P(positive) > P(negative)). The rate
  at which the 3-way label would have been ``neutral`` is reported too.

Every text is scored with the dataset's language as its source tag, so language routing does
not hide model errors. How often the heuristic detector agrees with that tag is reported
separately as ``lang_detect_agreement``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from models.data import NEG, NEU, POS, read_split
from models.lang import detect_language

_IDX = {"negative": NEG, "neutral": NEU, "positive": POS}


def evaluate(scorer: Any, data: Path, split: str = "val", limit: int | None = None) -> dict[str, Any]:
    datasets = read_split(Path(data), split)
    out: dict[str, Any] = {"model": scorer.model_id, "split": split, "data": str(data), "datasets": {}}
    zh_correct: dict[str, tuple[int, int]] = {}
    for ds in datasets:
        texts, labels = ds.texts[:limit] if limit else ds.texts, ds.labels[:limit] if limit else ds.labels
        t0 = time.perf_counter()
        results = scorer.score(texts, [ds.lang] * len(texts))
        dt = time.perf_counter() - t0
        unscored = sum(r is None for r in results)
        m: dict[str, Any] = {"n": len(texts), "unscored": unscored, "posts_per_s": len(texts) / max(dt, 1e-9),
                             "lang_detect_agreement": sum(detect_language(t) == ds.lang for t in texts) / max(1, len(texts))}
        if ds.n_classes == 3:
            pred = [(_IDX[r.label] if r is not None else -1) for r in results]
            recalls = {}
            for c, name in ((NEG, "negative"), (NEU, "neutral"), (POS, "positive")):
                idx = [i for i, y in enumerate(labels) if y == c]
                recalls[name] = sum(pred[i] == c for i in idx) / max(1, len(idx))
            m["macro_recall"] = sum(recalls.values()) / 3
            m["accuracy"] = sum(p == y for p, y in zip(pred, labels)) / max(1, len(labels))
            m["recall"] = recalls
        else:
            pred = [(POS if r.sentiment > 0 else NEG) if r is not None else -1 for r in results]
            correct = sum(p == y for p, y in zip(pred, labels))
            m["accuracy"] = correct / max(1, len(labels))
            m["neutral_label_rate"] = sum(r is not None and r.label == "neutral" for r in results) / max(1, len(labels))
            zh_correct[ds.name] = (correct, len(labels))
        out["datasets"][ds.name] = m
    summary: dict[str, float] = {}
    if zh_correct:
        c = sum(v[0] for v in zh_correct.values())
        n = sum(v[1] for v in zh_correct.values())
        summary["zh_combined_accuracy"] = c / max(1, n)
        pair = [zh_correct[k] for k in ("waimai_10k", "chnsenticorp") if k in zh_correct]
        if len(pair) == 2:
            summary["zh_waimai+chnsenticorp_accuracy"] = sum(v[0] for v in pair) / sum(v[1] for v in pair)
    out["summary"] = summary
    return out
