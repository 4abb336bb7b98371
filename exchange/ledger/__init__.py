"""The double-entry ledger: accounts, hash-chained journal entries, signed postings, verify.

`exchange.ledger.engine` (post_entry, and post_entries for many at once: one code path) is the only
writer of the ledger tables.
"""
