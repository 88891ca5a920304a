"""The query machinery behind ``BaseDao`` and ``QueryBuilder``; internal to the kit.

Module map: ``builder`` (the generative ``QueryBuilder``), ``lookups`` (``field__op``
filters), ``ordering`` (sort specs and the keyset predicate), ``cursors`` (signed keyset
cursors), ``pages`` (result pages), ``writes`` (update values and audit bookkeeping),
``upsert`` (one-statement upserts per dialect), ``limits`` (per-dialect statement limits).
Imports nothing of :mod:`pkg.database.lifecycle`.
"""
