"""Benchmarks (`dlvf bench NAME`): each prints a table and writes JSON; comparisons are side by side in one run."""
