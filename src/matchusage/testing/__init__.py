"""Test helpers for code that uses matchusage.

- [`oracle`][matchusage.testing.oracle]: the counting rules by brute force, the
  reference for property tests (plain Python, no test dependency).
- [`strategies`][matchusage.testing.strategies]: Hypothesis strategies for records.
- [`contracts`][matchusage.testing.contracts]: base test classes for adapters of the ports.

Importing `strategies` and `contracts` needs the ``test`` extra (pytest and Hypothesis).
"""
