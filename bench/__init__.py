"""Benchmarks of the service against two floors (``make bench``); see bench/RESULTS.md."""
