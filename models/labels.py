"""Map a classifier's own label names onto flarewatch's negative / neutral / positive.

Each model class gets a bucket (one of our three labels) and a valence in [-1, 1]. The
class probabilities are summed per bucket: the label is the bucket with the largest sum, and its
confidence is that sum. The signed sentiment is the probability-weighted mean valence.

Supported without configuration:

* 3-class: names containing ``neg`` / ``neu`` / ``pos`` (``negative``, ``NEU``, ...), or
  generic ``LABEL_0..2`` taken as negative, neutral, positive.
* 2-class: ``negative``/``positive`` (or ``LABEL_0``/``LABEL_1``); a 2-class model never says
  neutral.
* 5-class: ``1 star`` ... ``5 stars``, ``very negative`` ... ``very positive``, or generic
  ``LABEL_0..4`` taken as 1 to 5 stars.

Anything else (emotion models, for example) needs an explicit ``label_map`` in the settings.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, TypeGuard
from collections.abc import Mapping

import numpy as np

Label = Literal["negative", "neutral", "positive"]
LABELS: tuple[Label, Label, Label] = ("negative", "neutral", "positive")
_VALENCE = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}


def _is_label(value: str | None) -> TypeGuard[Label]:
    return value in _VALENCE


@dataclass(frozen=True)
class LabelScheme:
    names: tuple[str, ...]  # the model's own label names, by class index
    buckets: tuple[Label, ...]  # our label for each class index
    valence: tuple[float, ...]  # signed sentiment of each class index

    @property
    def matrix(self) -> np.ndarray:
        """(n_classes, 3) 0/1 matrix: class -> our bucket."""
        m = np.zeros((len(self.buckets), 3), dtype=np.float32)
        for i, b in enumerate(self.buckets):
            m[i, LABELS.index(b)] = 1.0
        return m

    def aggregate(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """probs (n, C) -> (bucket probabilities (n, 3), sentiment (n,))."""
        p3 = probs @ self.matrix
        s = np.clip(probs @ np.asarray(self.valence, dtype=np.float32), -1.0, 1.0)
        return p3, s


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", str(name).lower()).strip()


def _generic_index(name: str) -> int | None:
    m = re.fullmatch(r"(?:label )?(\d+)", _norm(name))
    return int(m.group(1)) if m else None


def _stars(name: str) -> int | None:
    m = re.fullmatch(r"(\d) stars?", _norm(name))
    return int(m.group(1)) if m else None


def _polarity(name: str) -> tuple[Label, float] | None:
    n = _norm(name)
    strong = bool(re.search(r"\b(very|strongly|extremely)\b", n))
    if re.search(r"\bneg", n):
        return "negative", -1.0 if strong else -0.5
    if re.search(r"\bpos", n):
        return "positive", 1.0 if strong else 0.5
    if re.search(r"\bneu", n) or n in ("mixed", "none", "objective"):
        return "neutral", 0.0
    return None


def scheme_from_id2label(id2label: Mapping[int, str] | Mapping[str, str],
                         label_map: Mapping[str, str] | None = None) -> LabelScheme:
    """Build the mapping for a model from its ``config.id2label``."""
    items = sorted(((int(k), str(v)) for k, v in id2label.items()), key=lambda kv: kv[0])
    names = tuple(v for _, v in items)
    n = len(names)
    if [k for k, _ in items] != list(range(n)):
        raise ValueError(f"id2label keys are not 0..{n - 1}: {dict(items)}")
    if label_map:
        norm_map = {_norm(k): v for k, v in label_map.items()}
        buckets: list[Label] = []
        for name in names:
            target = norm_map.get(_norm(name))
            if not _is_label(target):
                raise ValueError(f"label_map gives no negative/neutral/positive for model label {name!r}")
            buckets.append(target)
        return LabelScheme(names, tuple(buckets), tuple(_VALENCE[b] for b in buckets))

    if n == 5 and all(_stars(x) is not None for x in names):
        stars = [_stars(x) or 0 for x in names]
        return _star_scheme(names, stars)
    if all(_generic_index(x) is not None for x in names) and \
            [_generic_index(x) for x in names] == list(range(n)):
        if n == 2:
            return LabelScheme(names, ("negative", "positive"), (-1.0, 1.0))
        if n == 3:
            return LabelScheme(names, LABELS, (-1.0, 0.0, 1.0))
        if n == 5:
            return _star_scheme(names, [1, 2, 3, 4, 5])
        raise ValueError(f"cannot map {n} generic labels {names}; set label_map")
    pol = [_polarity(x) for x in names]
    if any(p is None for p in pol):
        bad = [x for x, p in zip(names, pol) if p is None]
        raise ValueError(f"cannot map model labels {bad} to negative/neutral/positive; set label_map")
    buckets_t = tuple(p[0] for p in pol if p)
    vals = [p[1] for p in pol if p]
    if n <= 3:  # plain "negative"/"positive": full valence, strength words only matter for 5-class
        vals = [_VALENCE[b] for b in buckets_t]
    if "negative" not in buckets_t or "positive" not in buckets_t:
        raise ValueError(f"model labels {names} lack a negative or a positive class; set label_map")
    return LabelScheme(names, buckets_t, tuple(vals))


def _star_scheme(names: tuple[str, ...], stars: list[int]) -> LabelScheme:
    buckets: list[Label] = ["negative" if s <= 2 else "neutral" if s == 3 else "positive" for s in stars]
    return LabelScheme(names, tuple(buckets), tuple((s - 3) / 2.0 for s in stars))
