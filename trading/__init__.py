"""Procurement, matching, offers, contracts, trades and settlement."""
