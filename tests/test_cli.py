"""The command line's own surface: help texts and the version."""

from __future__ import annotations

import pytest

import pdec


def test_every_command_documents_itself(capsys):
    """Every command and every option of every command has a help text, and --version prints
    pdec's version."""
    import argparse

    from pdec.cli import build_parser, main

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {c.dest for c in commands._choices_actions} == set(commands.choices) == {
        "compile", "inspect", "check", "list", "train", "settings", "plot", "compare"}
    assert all(c.help for c in commands._choices_actions)
    for name, sub in commands.choices.items():
        undocumented = [a.dest for a in sub._actions if not a.help]
        assert not undocumented, (name, undocumented)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"pdec {pdec.__version__}"



def test_settings_lists_every_key_with_its_default(capsys):
    """pdec settings prints each training setting and each optimizer's hyperparameters with the
    defaults the run would use; every key has a line of help."""
    from pdec.cli import main
    from pdec.optim import OPTIMIZERS, get_optimizer
    from pdec.train.config import SETTING_HELP, TRAIN_KEYS

    assert set(SETTING_HELP) == TRAIN_KEYS
    assert main(["settings", "--optimizer", "kfac"]) == 0
    out = capsys.readouterr().out
    assert "  n_interior = 900 " in out and "kfac hyperparameters:" in out and "adam hyperparameters:" not in out
    assert "  damping = 1.544099e-12 " in out and "λ added to every Kronecker factor" in out and "[≥ 0]" in out
    # TOML values, so that a line can be copied into a config file
    assert "  adaptive_damping = false " in out and '  init = "identity" ' in out and "[identity or zero]" in out
    assert "  hidden = [64] " in out and "  progress = true " in out
    import tomllib
    line = next(l for l in out.splitlines() if l.startswith("  hidden = "))
    assert tomllib.loads(line.split("  ", 2)[1].strip())["hidden"] == [64]
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    for name in OPTIMIZERS:
        assert f"{name} hyperparameters:" in out
        for key in get_optimizer(name).HYPERPARAMETERS:
            assert f"\n  {key} = " in out
    assert main(["settings", "--optimizer", "kfca"]) == 2
    assert "did you mean 'kfac'" in capsys.readouterr().err
    assert main(["settings", "--optimizer", ""]) == 2


def test_list_takes_spec_files(capsys):
    from conftest import ROOT
    from pdec.cli import main

    kdv = ROOT / "tests" / "specs" / "kdv.py"
    assert main(["list", str(kdv), str(ROOT / "nope.py")]) == 1   # a bad file does not hide the others
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == [str(kdv), "kdv", "taylor"]
    assert "error:" in out[1] and "nope.py" in out[1]
    assert main(["list", str(ROOT / "tests" / "specs")]) == 2   # a folder's scripts would run too
    assert "is a folder: name its spec files" in capsys.readouterr().err


def test_only_rank_0_prints_pdec_warnings(monkeypatch):
    import warnings

    from pdec.cli import _plain_warnings

    def ignored(category) -> bool:
        return any(action == "ignore" and issubclass(category, cat) and msg is None
                   for action, msg, cat, mod, line in warnings.filters)

    with warnings.catch_warnings():
        monkeypatch.setenv("RANK", "0")
        _plain_warnings()
        assert not ignored(pdec.PdecWarning)
        monkeypatch.setenv("RANK", "1")
        _plain_warnings()
        assert ignored(pdec.PdecWarning) and not ignored(UserWarning)
