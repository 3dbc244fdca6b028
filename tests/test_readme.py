"""The README's example spec is the shipped file's text, and its links resolve."""

import re

from conftest import ROOT


def test_readme_spec_is_the_shipped_heat1d():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("`specs/heat1d.py`, without its docstring and its `description=` line:\n\n```python\n",
                         1)[1].split("```", 1)[0]
    spec = (ROOT / "specs" / "heat1d.py").read_text()
    body = spec.split('"""', 2)[2].lstrip("\n")
    assert block == "\n".join(line for line in body.split("\n") if "description=" not in line)


def test_readme_links_to_files_resolve():
    readme = (ROOT / "README.md").read_text()
    targets = {t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", readme) if "://" not in t}
    missing = sorted(t for t in targets if t and not (ROOT / t).exists())
    assert not missing, missing
