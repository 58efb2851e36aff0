"""``python -m stratus.cli``: the ``stratus`` command without its console script (tests, ``bench/perf.py``)."""

from stratus.cli import app

app(prog_name="stratus")
