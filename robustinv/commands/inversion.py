"""The inversion commands: `robustinv generate` (verified adversarial samples in bulk) and `robustinv invert`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from robustinv.commands.common import load_suite_file, pct
from robustinv.terminal import handle_errors, say


@click.command("generate")
@click.argument("suite_path", metavar="SUITE", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", "model_name", required=True, help="A model name of the suite.")
@click.option("--defense", default="standard", show_default=True,
              help="Which of the model's defenses (its defended reference, e.g. pgd_at).")
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Verified samples to produce.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--attack", "attack_label", help="Which inversion attack of the suite (default: the first).")
@click.option("--eps", type=float, help="ε (default: the attack's largest).")
@click.option("--shard-size", type=click.IntRange(min=1), default=1000, show_default=True)
@handle_errors
def generate_command(suite_path: Path, model_name: str, defense: str, n: int, out: Path, attack_label: str | None,
                     eps: float | None, shard_size: int) -> None:
    """Mass-produce verified adversarial samples with the suite's inverting generator.

    Samples stream to OUT in shards; running the same command again continues an interrupted run.
    """
    from robustinv.jobs.inversion import generate_samples

    suite, base_dir = load_suite_file(suite_path)
    shards = -(-n // shard_size)
    with click.progressbar(length=shards, label="shards", file=sys.stderr) as bar:
        request, produced = generate_samples(
            suite, model_name=model_name, defense=defense, n=n, out_dir=out, attack_label=attack_label, eps=eps,
            shard_size=shard_size, base_dir=base_dir, on_shard=lambda _shard, _done: bar.update(1),
        )
    refined = f", {request.refine_steps} refine steps" if request.refine_steps else ""
    say(f"{request.n} verified samples of {produced.distinct_inputs} distinct inputs ({request.shards} shards, "
        f"ε={request.eps:g}, {'targeted' if request.targeted else 'untargeted'}{refined}) in {out}")
    if produced.written_samples:
        say(f"{produced.written_samples} produced now in {produced.seconds:.1f}s: "
            f"{produced.samples_per_s:.1f} verified samples/s")


@click.command("invert")
@click.argument("suite_path", metavar="SUITE", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", "model_name", required=True, help="A model name of the suite.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--per-class", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True, help="Generator training steps.")
@handle_errors
def invert_command(suite_path: Path, model_name: str, out: Path, per_class: int, steps: int) -> None:
    """Free inversion: a PNG grid per class of what the model believes that class looks like."""
    from robustinv.jobs.inversion import invert_model
    from robustinv.report.images import save_grid

    suite, base_dir = load_suite_file(suite_path)
    reports = invert_model(suite, model_name=model_name, out_dir=out, per_class=per_class, steps=steps,
                           base_dir=base_dir, save_grid=save_grid)
    say("class  classified as that class  image")
    for report in reports:
        say(f"{report.label:<5}  {pct(report.hit_rate):>24}  {out / report.image}")
    overall = sum(r.hit_rate for r in reports) / len(reports)
    say(f"all    {pct(overall):>24}")
