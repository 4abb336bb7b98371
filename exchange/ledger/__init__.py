"""The double-entry ledger: accounts, hash-chained journal entries, signed postings, verify.

`exchange.ledger.engine.post_entry` is the only writer of the ledger tables.
"""
