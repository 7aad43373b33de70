"""fastfc benchmarks (run with ``python -m bench``; see bench/README or the project README)."""
