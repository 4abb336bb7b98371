"""Data products, revisions, catalog search, fairs and stalls."""
