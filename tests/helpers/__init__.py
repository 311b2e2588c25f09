"""What tests share: tiny models and their parts, the family contract, run-folder helpers.
Imported as ``helpers.<module>`` (pytest puts ``tests/`` on the path: ``pythonpath`` in pyproject)."""
