"""Saving tests: models rebuilt by load_model compile with the default engine, so pin it to the test's engine."""
import pytest


@pytest.fixture(autouse=True)
def _same_engine_on_load(request, monkeypatch):
    engine = request.getfixturevalue("engine") if "engine" in request.fixturenames else "python"
    monkeypatch.setenv("FASTFIT_ENGINE", engine)
