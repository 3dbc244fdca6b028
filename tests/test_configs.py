"""The paper's run configurations in configs/: every optimizer table resolves, and the net in each
file has the parameter count D its name claims (configs/<spec>-<D>[-variant].toml)."""

from __future__ import annotations

import re
import tomllib

import pytest

import pdec
from pdec.train.config import TRAIN_KEYS, resolve_config
from conftest import ROOT

CONFIGS = sorted((ROOT / "configs").glob("*.toml"))
NAME = re.compile(r"^(?P<spec>[a-z0-9]+)-(?P<D>\d+)(?:-[a-z]+)?$")
TOP_LEVEL = {"hidden", "n_interior", "n_condition", "n_eval", "resample_every"}
# the ones benchmarks/paper.py runs
REQUIRED = {"poisson2d-257", "heat1d-257", "poisson5d-449", "heat4d-449"}


def _parameter_count(widths: list[int]) -> int:
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))


def _tables(path) -> dict[str, dict]:
    data = tomllib.loads(path.read_text())
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def test_paper_configs_present():
    assert REQUIRED <= {p.stem for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_header_and_top_level_keys(path):
    assert NAME.match(path.stem), f"{path.name}: name must be <spec>-<D>[-variant].toml"
    first = path.read_text().splitlines()[0]
    assert first.startswith("#")
    assert re.search(r"§A\.\d+", path.read_text()), f"{path.name}: cite the paper's appendix section"
    top = {k for k, v in tomllib.loads(path.read_text()).items() if not isinstance(v, dict)}
    assert TOP_LEVEL <= top, f"{path.name}: missing top-level {sorted(TOP_LEVEL - top)}"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_optimizer_table_resolves(path):
    tables = _tables(path)
    assert tables, f"{path.name}: no optimizer tables"
    for name, table in tables.items():
        cfg, hyper = resolve_config({"optimizer": name, "steps": 1}, path)
        assert cfg.optimizer == name
        for key, value in table.items():  # the table's values are what the run gets
            got = getattr(cfg, key) if key in TRAIN_KEYS else hyper[key]
            assert got == value, f"{path.name} [{name}] {key}: {got!r} != {value!r}"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_hidden_gives_the_parameter_count_in_the_name(path):
    m = NAME.match(path.stem)
    spec = ROOT / "specs" / f"{m['spec']}.py"
    assert spec.is_file(), f"{path.name}: no spec {spec.name}"
    problem = pdec.load_spec(spec)
    for name in _tables(path) or {"kfac": {}}:
        cfg, _ = resolve_config({"optimizer": name, "steps": 1}, path)
        widths = [len(problem.variables), *cfg.hidden, len(problem.unknowns)]
        assert _parameter_count(widths) == int(m["D"]), f"{path.name} [{name}]: widths {widths}"


@pytest.mark.parametrize("stem", sorted(REQUIRED))
def test_small_nets_compile_to_that_many_parameters(stem):
    spec, D = stem.rsplit("-", 1)
    cfg, _ = resolve_config({"optimizer": "kfac", "steps": 1}, ROOT / "configs" / f"{stem}.toml")
    compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / f"{spec}.py"), hidden=cfg.hidden, write=False)
    assert sum(p.numel() for p in compiled.model.parameters()) == int(D)
