"""The code examples of docs/guide/scikit-learn.md and docs/guide/data.md run as written."""
import os
import re

import numpy as np
import pytest

pytest.importorskip("sklearn")
DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs", "guide")


def _blocks(page):
    with open(os.path.join(DOCS, page), encoding="utf-8") as file:
        return re.findall(r"```python\n(.*?)```", file.read(), flags=re.DOTALL)


@pytest.mark.skipif(not os.path.isdir(DOCS), reason="docs not found (not a source checkout)")
def test_scikit_learn_page_runs(capsys):
    namespace = {"__name__": "docs_example"}
    for block in _blocks("scikit-learn.md"):  # later blocks use the names of earlier ones, like a script
        exec(compile(block, "scikit-learn.md", "exec"), namespace)  # noqa: S102 - our own docs
    out = capsys.readouterr().out
    assert "accuracy" in out and "'units'" in out and "Total params: 2,410" in out
    assert namespace["grid"].best_params_["units"] in (16, 32)


@pytest.mark.skipif(not os.path.isdir(DOCS), reason="docs not found (not a source checkout)")
def test_csv_recipe_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    np.savetxt("pima-indians-diabetes.csv", np.column_stack([rng.random((5, 8)), rng.integers(0, 2, 5)]),
               delimiter=",")
    rows = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    rows += [f"{a:.1f},{b:.1f},1.4,0.2,{name}" for a, b, name in
             [(5.1, 3.5, "setosa"), (7.0, 3.2, "versicolor"), (6.3, 3.3, "virginica"), (4.9, 3.0, "setosa")]]
    (tmp_path / "iris.csv").write_text("\n".join(rows) + "\n")
    namespace = {}
    (block,) = _blocks("data.md")
    exec(compile(block, "data.md", "exec"), namespace)  # noqa: S102 - our own docs
    assert namespace["x"].shape == (5, 8) and namespace["features"].shape == (4, 4)
    assert list(namespace["classes"]) == ["setosa", "versicolor", "virginica"]
    assert list(namespace["labels"]) == [0, 1, 2, 0]
