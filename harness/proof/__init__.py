"""Proof: RED at the base commit with the test files only and GREEN with the change (`red_green`), the
suite gates (`suite_gates`: collect, regression, full suite against known failures), the verdicts over
pytest runs (`verdicts`), the stage records (`stage_records`), running stages in order or at once
(`stage_runner`), and which changed files form the change (`changes`)."""
