"""`robustinv explain`'s report: explain.md (tables) from an `ExplainerOutcome`; the figures are PNG grids.

The tables: each GAN's held-out MAE and SSIM against the baselines, clean and adversarial; the
ablation of each conditioning map; maps per second against captum. Text from suites is escaped.
"""

from __future__ import annotations

from robustinv.records import model_label
from robustinv.records.explainer import ExplainerOutcome, ModeOutcome
from robustinv.report.markdown import escape

SIDES = ("clean", "adversarial")


def render_explainer(outcome: ExplainerOutcome) -> str:
    """explain.md: what each explainer GAN learned, how it compares and how fast it is."""
    label = model_label(outcome.model, outcome.defense)
    lines = [
        f"### robustinv explain: {escape(label)} on {escape(outcome.dataset)}", "",
        f"Maps of the predicted class on {outcome.n_heldout} held-out inputs, clean and under "
        f"{escape(str(outcome.attack.get('name', '?')))} at ε={outcome.eps:g} (it fooled "
        f"{100 * outcome.adversarial_success:.1f}% of them); {outcome.conv_layers} conv layers; "
        f"each GAN trained on {outcome.n_train} training images, clean and attacked.", "",
        "| mode | target | inputs | GAN MAE | GAN SSIM | best baseline | its MAE | its SSIM | MAE ratio | train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in outcome.modes:
        for side in SIDES:
            name, best = mode.best_baseline(side)
            gan = getattr(mode.gan, side)
            lines.append(f"| {escape(mode.mode)} | {escape(mode.target)} | {side} | {gan.mae:.4f} | {gan.ssim:.3f} | "
                         f"{escape(name)} | {best.mae:.4f} | {best.ssim:.3f} | {mode.mae_ratio(side):.2f} | "
                         f"{mode.train_seconds:.0f} |")
    lines += ["", "Baselines (held-out MAE / SSIM, clean · adversarial):", ""]
    for mode in outcome.modes:
        for name, scores in mode.baselines.items():
            lines.append(f"- {escape(mode.mode)}, {escape(name)}: {scores.clean.mae:.4f} / {scores.clean.ssim:.3f} · "
                         f"{scores.adversarial.mae:.4f} / {scores.adversarial.ssim:.3f}")
    for mode in outcome.modes:
        lines += _ablation(mode)
    lines += ["", "| mode | maps/s | × captum |", "|---|---|---|",
              f"| captum (every layer's Grad-CAM, accumulated) | {outcome.captum_maps_per_s:.0f} | 1.0 |"]
    lines += [f"| {escape(m.mode)} GAN | {m.maps_per_s:.0f} | {m.maps_per_s / outcome.captum_maps_per_s:.1f} |"
              for m in outcome.modes]
    lines += ["", "Deviations from the reference code:", "", *(f"- {escape(d)}" for d in outcome.deviations)]
    return "\n".join(lines) + "\n"


def _ablation(mode: ModeOutcome) -> list[str]:
    if not mode.ablation:
        return []
    lines = ["", f"Ablation, {escape(mode.mode)}: SSIM lost when one conditioning map is zeroed (deepest first)", "",
             "| conditioning map | conv layers | SSIM drop clean | SSIM drop adversarial |", "|---|---|---|---|"]
    lines += [f"| c{a.first} | {a.first}–{a.last} | {a.drop_clean:.4f} | {a.drop_adversarial:.4f} |"
              for a in mode.ablation]
    return lines
