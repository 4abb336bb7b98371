"""The exchange kernel: config, database, errors, identity, auth, idempotency, ledger, payments."""
