"""Certification reviews, certificates, objections and the cross-border white list."""
