"""Suite files: validation messages name file, key and problem; paths resolve; the dump round-trips."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from robustinv.suite import SuiteError, dump_suite, load_suite, parse_suite

from conftest import TINY_SUITE, write_suite

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_tiny_suite_validates(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, TINY_SUITE))
    assert suite.name == "tiny" and suite.dataset.n_eval == 60
    pgd = suite.attacks[1]
    assert pgd.name == "pgd" and pgd.steps == 5 and pgd.random_start is True  # type: ignore[attr-defined]
    assert suite.models[0].arch == "smallcnn" and suite.models[0].train is not None


def test_resolved_dump_round_trips(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, TINY_SUITE))
    again = parse_suite(tomllib.loads(dump_suite(suite)))
    assert again == suite
    assert "steps = 5" in dump_suite(suite)


def test_relative_paths_resolve_against_the_suite_folder(tmp_path: Path) -> None:
    folder = tmp_path / "suites"
    folder.mkdir()
    text = TINY_SUITE.replace('name = "digits"', 'name = "idx"\nroot = "../data"')
    suite = load_suite(write_suite(folder, text))
    assert suite.dataset.root == (tmp_path / "data").resolve()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t + "\n[[models\n", "malformed TOML"),
        (lambda t: t.replace('name = "tiny"\n', ""), "name: missing key"),
        (lambda t: t.replace("seed = 1", 'seed = "one"'), "seed: Input should be a valid integer"),
        (lambda t: t.replace("eps = [0.1, 0.3]", "eps = [0.0, 0.3]", 1), "attacks[0].eps: every ε must be > 0"),
        (lambda t: t.replace("eps = [0.1, 0.3]", "eps = [0.1, 1.5]", 1), "an Linf ε above 1"),
        (lambda t: t.replace('name = "digits"', 'name = "digitz"'), "unknown dataset 'digitz'; valid datasets: cifar10"),
        (lambda t: t.replace('name = "pgd"', 'name = "cw"'), "attacks[1].name: unknown attack 'cw'; valid attacks: apgd, autoattack, cascade, fab, fgsm"),
        (lambda t: t.replace('name = "smallcnn"', 'name = "m"\narch = "resnet"'), "unknown model 'resnet'"),
        (lambda t: t.replace("steps = 5", "stepz = 5"), "attacks[1].stepz: unknown key; did you mean 'steps'?"),
        (lambda t: t.replace("epochs = 2", "epochs = 0"), "models[0].train.epochs"),
        (lambda t: t.replace("steps = 5", "steps = 5\nrestarts = 3\nrandom_start = false"), "restarts > 1 needs"),
    ],
)
def test_errors_name_file_key_and_problem(tmp_path: Path, edit: object, message: str) -> None:
    path = write_suite(tmp_path, edit(TINY_SUITE))  # type: ignore[operator]
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    text = str(caught.value)
    assert text.startswith(str(path)), text
    assert message in text, text
    assert "\n" not in text


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="no such suite file"):
        load_suite(tmp_path / "nope.toml")


def test_duplicate_attack_names_need_labels(tmp_path: Path) -> None:
    text = TINY_SUITE + '\n[[attacks]]\nname = "pgd"\neps = [0.1]\nsteps = 10\n'
    with pytest.raises(SuiteError, match="attack names repeat: pgd"):
        load_suite(write_suite(tmp_path, text))
    suite = load_suite(write_suite(tmp_path, text.replace("steps = 10", 'steps = 10\nlabel = "pgd-10"')))
    assert [a.display_name for a in suite.attacks] == ["fgsm", "pgd", "pgd-10"]
