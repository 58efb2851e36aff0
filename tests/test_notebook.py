"""notebooks/quickstart.ipynb runs top to bottom in a fresh kernel and shows what it promises."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


@pytest.fixture(scope="module")
def executed() -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # kernel "python3" with argv[0] "python" is started with sys.executable: this environment's interpreter
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    return nb


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out["text"])
            elif "text/plain" in out.get("data", {}):
                parts.append(out["data"]["text/plain"])
    return "\n".join(parts)


def test_notebook_runs_without_errors(executed: nbformat.NotebookNode) -> None:
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert all(c.get("execution_count") for c in executed.cells if c.cell_type == "code")


def test_notebook_resolves_the_incident_and_prints_the_log(executed: nbformat.NotebookNode) -> None:
    text = _text(executed)
    assert "alert(s) firing" in text
    assert "outcome: resolved" in text
    assert "Transaction log of inc-" in text
    assert "undone by TNR: " in text
    assert "status=committed  verdict=commit" in text
    assert "$ kubectl " in text and "mongodb-rate" in text
    assert "path through the graph: detect -> diagnose -> plan_mitigation -> begin" in text
    assert "-> report" in text


def test_notebook_plots_health_with_verdicts(executed: nbformat.NotebookNode) -> None:
    images = [o for c in executed.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 1
    text = _text(executed)
    assert "detect" in text and "validate  commit" in text
