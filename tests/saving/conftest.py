"""Saving tests: models rebuilt by load_model compile with the default core, so pin it to the test's core."""
import pytest


@pytest.fixture(autouse=True)
def _same_engine_on_load(request, monkeypatch):
    name = next((name for name in ("core", "engine") if name in request.fixturenames), None)
    monkeypatch.setenv("FASTFIT_ENGINE", request.getfixturevalue(name) if name else "python")
