"""Deciding verdicts: bounds, the float64 reference, comparisons, expected failures, outcomes, the diff gate."""
