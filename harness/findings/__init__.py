"""The findings: standalone repros of what the matrix found in others' software (repros.py), and
docs/findings/README.md's index of the cells each explains (index.py)."""
