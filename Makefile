# Thin wrappers around ./dev (which sets up .venv on first use).
.PHONY: demo test bench

demo:
	./dev demo

test:
	./dev test

bench:
	./dev bench
