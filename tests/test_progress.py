"""Progress output: tqdm on a terminal, plain lines (no carriage returns) in a log file."""

import io
from pathlib import Path

import pdec
from pdec.train.progress import LineProgress, progress_bar
from tqdm.std import tqdm

ROOT = Path(__file__).resolve().parents[1]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_file_gets_lines_terminal_gets_tqdm():
    assert isinstance(progress_bar(10, 0, "p/kfac", True, io.StringIO()), LineProgress)
    bar = progress_bar(10, 0, "p/kfac", True, _Terminal())
    assert isinstance(bar, tqdm) and not bar.disable
    bar.close()
    off = progress_bar(10, 0, "p/kfac", False, io.StringIO())
    assert isinstance(off, tqdm) and off.disable


def test_line_progress_writes_every_interval_and_the_end():
    out = io.StringIO()
    bar = LineProgress(total=5, initial=2, desc="heat1d/adam", file=out, interval=0.0)
    bar.set_postfix({"loss": "1.0e-01", "rel_l2": "2.00e-01"})
    bar.update(1)
    bar.set_postfix({"loss": "5.0e-02"})
    bar.update(2)
    bar.close()   # the last state is already written: no repeat
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("heat1d/adam: step 3/5, ") and lines[0].endswith("loss=1.0e-01, rel_l2=2.00e-01")
    assert lines[1].startswith("heat1d/adam: step 5/5, ") and lines[1].endswith("loss=5.0e-02")

    quiet = io.StringIO()
    bar = LineProgress(total=None, initial=0, desc="d", file=quiet, interval=3600.0)
    bar.update(7)
    assert quiet.getvalue() == ""
    bar.close()
    assert quiet.getvalue().startswith("d: step 7, ")


def test_training_into_a_log_file_has_no_carriage_returns(tmp_path, capsys):
    compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / "heat1d.py"), hidden=(6,), write=False)
    pdec.train(compiled, "adam", steps=4, seed=0, run_root=tmp_path, n_interior=20, n_condition=8,
               n_eval=50, eval_every=2, progress=True)
    err = capsys.readouterr().err   # pytest's capture is not a terminal
    assert "\r" not in err
    assert "heat1d/adam: step 4/4, " in err and "rel_l2=" in err
