"""Transformers backend: any sequence-classification model (local directory or hub id)."""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import warnings
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np
import torch

from models.base import BUNDLED_DIR, ModelSettings, Sentiment
from models.labels import LABELS, LabelScheme, scheme_from_id2label
from models.lang import UNDETERMINED, detect_language, normalize_lang

log = logging.getLogger(__name__)

#: Text is cut to this many characters per token of max_length before tokenizing, so a
#: pathological multi-megabyte post cannot stall the tokenizer (truncation drops it anyway).
_CHARS_PER_TOKEN_CAP = 32

#: What one forward pass costs on CPU beyond its tokens, in tokens' worth of work (op dispatch,
#: waking the threads, per-pass setup). Measured for the bundled model (6 layers, 384 wide, int8,
#: 2 threads, CPU time): a pass over one 16-token text costs ~7 ms, each further token ~0.1 ms,
#: so ~60 tokens. It is an upper bound that matters, not the exact value: for any model whose true
#: overhead is at most this, the planned passes cost no more than fixed-size chunks (see
#: `plan_batches`), and bigger models (more work per token, the same ops) have less.
CPU_PASS_OVERHEAD_TOKENS = 64


def resolve_model(name: str) -> tuple[str, bool]:
    """(path or hub id, is_local)."""
    if name == "bundled":
        return str(BUNDLED_DIR), True
    p = Path(name).expanduser()
    if p.is_dir():
        return str(p.resolve()), True
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise FileNotFoundError(f"model directory not found: {name}")
    return name, False


def _state_hash(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def quantize_dynamic_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantisation (weights int8, activations per batch) of the nn.Linear layers
    inside the transformer blocks (module names containing ``.layer.``/``.layers.``/``.h.``).
    The small pooler and classification head stay in fp32: they cost almost nothing and are
    the most sensitive to rounding. Models without such names get every Linear quantised."""
    from torch.ao.quantization import per_channel_dynamic_qconfig

    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    blocks = [n for n in names if any(part in f".{n}." for part in (".layer.", ".layers.", ".h.", ".block."))]
    spec: Any = {n: per_channel_dynamic_qconfig for n in blocks} if blocks else {torch.nn.Linear}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model, spec, dtype=torch.qint8)


def plan_batches(lengths: Sequence[int], max_batch: int, pass_overhead: float | None) -> list[list[int]]:
    """Group texts (by their token counts) into forward passes of at most `max_batch` texts.

    A pass pads every text to its longest, so a pass costs about `pass_overhead` + texts x longest
    (in tokens). The texts are sorted by length and cut into consecutive runs that minimise that
    sum over the passes (dynamic programming over the cut points, O(n x max_batch), ~7 us a text).
    Cutting the sorted list into fixed chunks of `max_batch` is one of the plans considered, so
    the plan's padded tokens + `pass_overhead` x passes is never more than the chunks'; hence for
    any true overhead per pass up to `pass_overhead`, the plan's true cost is not more either. It
    matters most for the small batches posts arriving give: for the benches' tweets, padding added
    41 % to the tokens of 64 texts in chunks of 64 (11 % for 256 texts); planned, 8 % (4 %).

    `pass_overhead=None` keeps the fewest passes (ceil(n / max_batch), as on a GPU, where a pass's
    launch costs far more than padding) and only minimises the padding among them. Returns lists
    of indices into `lengths`, shortest texts first; equal lengths keep their input order.
    """
    n = len(lengths)
    if n == 0:
        return []
    order = sorted(range(n), key=lambda i: lengths[i])
    widths = np.asarray([lengths[i] for i in order], dtype=np.float64)
    # No extra pass may pay for itself: more than all the padding there could be.
    overhead = pass_overhead if pass_overhead is not None else float(widths[-1] * n + 1)
    best = np.zeros(n + 1)
    cut = np.zeros(n + 1, dtype=np.int64)
    starts = np.arange(n + 1)
    for end in range(1, n + 1):  # best[end]: the first `end` sorted texts; the last pass is [start, end)
        lo = max(0, end - max_batch)
        cost = best[lo:end] + overhead + widths[end - 1] * (end - starts[lo:end])
        k = int(cost.argmin())  # the first minimum: the longest last pass among equals
        best[end], cut[end] = cost[k], lo + k
    passes: list[list[int]] = []
    end = n
    while end > 0:
        start = int(cut[end])
        passes.append(order[start:end])
        end = start
    return passes[::-1]


class TransformerScorer:
    """Scores texts with a Hugging Face sequence-classification model.

    Loading happens once, in the constructor. ``score`` is thread-safe (calls are serialised,
    since torch already uses all the configured threads for one batch).
    """

    def __init__(self, settings: ModelSettings, fallback: Any | None = None) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a daemon's logs and the demo's output are not a terminal UI
        self.settings = settings
        self.fallback = fallback
        path, local = resolve_model(settings.name)
        if settings.threads:
            torch.set_num_threads(settings.threads)
        if settings.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device = 'cuda' but no CUDA device is available")
        self.device = torch.device("cuda" if settings.device in ("auto", "cuda") and torch.cuda.is_available()
                                   else "cpu")
        kw: dict[str, Any] = {}
        if local:
            kw["local_files_only"] = True
        elif settings.revision:
            kw["revision"] = settings.revision
        self.tokenizer = AutoTokenizer.from_pretrained(path, **kw)
        model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32, **kw)
        model.eval()
        meta: dict[str, Any] = {}
        if local and (Path(path) / "flarewatch.json").is_file():
            meta = json.loads((Path(path) / "flarewatch.json").read_text(encoding="utf-8"))
        digest = _state_hash(model)
        self.scheme: LabelScheme = scheme_from_id2label(model.config.id2label, settings.label_map)
        self.quantized = False
        if self.device.type == "cuda":
            model = model.half().to(self.device)
        elif settings.quantize:
            model = quantize_dynamic_int8(model)
            self.quantized = True
        self.model = model
        base_id = meta.get("model_id") or (Path(path).name if local else path)
        version = f"{meta['version']}+{digest[:8]}" if meta.get("version") else f"sha-{digest[:12]}"
        if self.quantized:
            version += "-int8"
        self.model_id = f"{base_id}@{version}"
        self.meta = meta
        declared = [c for c in (normalize_lang(x) if x != "*" else "*" for x in meta.get("languages", [])) if c]
        self.languages = set(settings.languages if settings.languages is not None else (declared or ["en"]))
        self._lock = threading.Lock()
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        log.info("loaded sentiment model %s from %s on %s", self.model_id, path, self.device)

    # ------------------------------------------------------------------ public
    def trusts(self, lang: str) -> bool:
        return "*" in self.languages or lang in self.languages

    def score(self, texts: Sequence[str], langs: Sequence[str | None] | None = None) -> list[Sentiment | None]:
        if isinstance(texts, str):
            raise TypeError("score() takes a sequence of texts, not a single str")
        if langs is not None and len(langs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(langs)} langs")
        resolved: list[str] = []
        for i, text in enumerate(texts):
            src = normalize_lang(langs[i]) if langs is not None else None
            resolved.append(src or detect_language(text or ""))
        out: list[Sentiment | None] = [None] * len(texts)
        mine: list[int] = []
        other: list[int] = []
        for i, (text, lang) in enumerate(zip(texts, resolved)):
            if not text or not text.strip() or lang == UNDETERMINED:
                continue  # nothing to score
            (mine if self.trusts(lang) else other).append(i)
        if mine:
            for i, s in zip(mine, self.predict([texts[i] for i in mine], [resolved[i] for i in mine])):
                out[i] = s
            if self.fallback is not None:  # texts this model cannot represent go to the fallback
                other.extend(i for i in mine if out[i] is None)
        if other and self.fallback is not None:
            for i, s in zip(other, self.fallback.score([texts[i] for i in other], [resolved[i] for i in other])):
                out[i] = s
        return out

    def predict(self, texts: Sequence[str], langs: Sequence[str]) -> list[Sentiment | None]:
        """Score every text with this model (no language routing). None where more than
        ``max_unknown_fraction`` of a text's tokens are unknown to the tokenizer."""
        probs, unknown = self._predict(texts)
        p3, sent = self.scheme.aggregate(probs)
        best = p3.argmax(-1)
        limit = self.settings.max_unknown_fraction
        return [Sentiment(label=LABELS[int(b)], confidence=float(p3[i, b]), sentiment=float(sent[i]),
                          lang=langs[i], model=self.model_id) if unknown[i] <= limit else None
                for i, b in enumerate(best)]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, n_model_classes) class probabilities; batches are formed from texts of similar
        length (dynamic padding, `plan_batches`), and results come back in input order."""
        return self._predict(texts)[0]

    def _predict(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        n = len(texts)
        out = np.zeros((n, len(self.scheme.names)), dtype=np.float32)
        unknown = np.zeros(n, dtype=np.float32)
        if n == 0:
            return out, unknown
        cap = self.settings.max_length * _CHARS_PER_TOKEN_CAP
        clipped = [t[:cap] for t in texts]
        unk_id = self.tokenizer.unk_token_id
        special = set(self.tokenizer.all_special_ids) - {unk_id}
        with self._lock:
            enc = self.tokenizer(clipped, truncation=True, max_length=self.settings.max_length)["input_ids"]
            if unk_id is not None:
                for i, ids in enumerate(enc):
                    real = [t for t in ids if t not in special]
                    unknown[i] = (sum(t == unk_id for t in real) / len(real)) if real else 0.0
            overhead = CPU_PASS_OVERHEAD_TOKENS if self.device.type == "cpu" else None
            with torch.inference_mode():
                for sel in plan_batches([len(ids) for ids in enc], self.settings.batch_size, overhead):
                    width = max(len(enc[i]) for i in sel)
                    ids = torch.full((len(sel), width), self._pad_id, dtype=torch.long)
                    mask = torch.zeros((len(sel), width), dtype=torch.long)
                    for r, i in enumerate(sel):
                        ids[r, : len(enc[i])] = torch.tensor(enc[i], dtype=torch.long)
                        mask[r, : len(enc[i])] = 1
                    logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
                    out[sel] = torch.softmax(logits.float(), -1).cpu().numpy()
        return out, unknown

    def info(self) -> dict[str, Any]:
        cfg = self.model.config
        return {
            "model": self.model_id,
            "name": self.settings.name,
            "device": str(self.device),
            "quantized": self.quantized,
            "threads": torch.get_num_threads(),
            "labels": {n: b for n, b in zip(self.scheme.names, self.scheme.buckets)},
            "languages": sorted(self.languages),
            "fallback": getattr(self.fallback, "model_id", None),
            "architecture": (cfg.architectures or [type(self.model).__name__])[0],
            "vocab_size": cfg.vocab_size,
            "max_length": self.settings.max_length,
        }
