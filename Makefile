# The two commands: `make run` starts Nurture on this machine; `make test` runs every test.
.PHONY: run test lint bench

run:
	@scripts/setup
	.venv/bin/nurture up

test:
	@scripts/setup --test
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/pytest

bench:
	@scripts/setup
	.venv/bin/python bench/enrolments.py
	.venv/bin/python bench/simulate.py
	PYTHONPATH=. .venv/bin/python bench/editor.py
	PYTHONPATH=. .venv/bin/python bench/ingest.py
	PYTHONPATH=. .venv/bin/python bench/reports.py
	PYTHONPATH=. .venv/bin/python bench/reports.py --postgres
