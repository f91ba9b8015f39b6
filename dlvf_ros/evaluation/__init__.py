"""Evaluation: localization errors against ground truth, metrics, plots, TUM export."""
