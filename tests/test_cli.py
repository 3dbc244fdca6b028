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
        "compile", "inspect", "check", "list", "train", "plot", "compare"}
    assert all(c.help for c in commands._choices_actions)
    for name, sub in commands.choices.items():
        undocumented = [a.dest for a in sub._actions if not a.help]
        assert not undocumented, (name, undocumented)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"pdec {pdec.__version__}"

