"""Benchmarks that print their figures beside the targets: `python -m bench.<name>`.

Each exits non-zero when a target is missed or a configuration could not run, so a run that
measured nothing never reads as a pass.
"""
