"""`robustinv explain`: explainer GANs that reproduce a model's interpretation maps, and how well they do."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from robustinv.commands.common import load_suite_file
from robustinv.terminal import handle_errors, say

MODES = ("gsft", "lsft", "amortized")  # ExplainMode's values; importing it would load torch for --help


@click.command("explain")
@click.argument("suite_path", metavar="SUITE", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", "model_name", required=True, help="A model name of the suite.")
@click.option("--defense", default="standard", show_default=True, help="Which of the model's defenses.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--mode", "modes", type=click.Choice(MODES), multiple=True,
              help="conditioned on cumulative maps (gsft: one condition network; lsft: one SFT block per map), "
                   "or amortized (image only). Repeat for several; all three by default.")
@click.option("--eps", type=float, help="ε of the adversarial inputs (default: the middle of the suite's PGD grid).")
@click.option("--n-train", type=click.IntRange(min=2), default=4000, show_default=True,
              help="Training images (each also attacked).")
@click.option("--epochs", type=click.IntRange(min=1), help="GAN training epochs (default: the recipe's).")
@handle_errors
def explain_command(suite_path: Path, model_name: str, defense: str, out: Path, modes: tuple[str, ...],
                    eps: float | None, n_train: int, epochs: int | None) -> None:
    """Train explainer GANs on a model's Grad-CAM maps; write explain.json, explain.md and PNG grids to OUT.

    GANs are cached like the other generators: running it again only measures.
    """
    from robustinv.interpret.gan import ExplainerRecipe, ExplainMode
    from robustinv.jobs.explain import ExplainRequest, explain_model
    from robustinv.jobs.explain_outputs import write_explained
    from robustinv.report.explainer import render_explainer

    suite, base_dir = load_suite_file(suite_path)
    recipe = ExplainerRecipe() if epochs is None else ExplainerRecipe(epochs=epochs)
    request = ExplainRequest(suite, model_name, defense, tuple(ExplainMode(m) for m in (modes or MODES)), eps,
                             n_train, recipe, base_dir)

    def progress(mode: str, epoch: int, total: int) -> None:
        print(f"\r{mode}: epoch {epoch}/{total}", end="" if epoch < total else "\n", file=sys.stderr, flush=True)

    explained = explain_model(request, on_epoch=progress)
    for path in write_explained(explained, out):
        say(f"wrote {path}")
    say(render_explainer(explained.outcome))
