"""Evaluation, all scoring: errors against ground truth, the success criteria, the through-the-nodes and per-frame
protocols (`dlvf evaluate`, `dlvf test`), reports, plots, TUM export."""
