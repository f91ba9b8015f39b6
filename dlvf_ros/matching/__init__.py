"""Matching: differentiable soft matching (training) and descriptor matching (localization)."""
