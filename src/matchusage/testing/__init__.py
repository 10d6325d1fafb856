"""Test helpers for code that uses matchusage: Hypothesis strategies and adapter contract tests.

Importing these modules needs the ``test`` extra (pytest and Hypothesis).
"""
