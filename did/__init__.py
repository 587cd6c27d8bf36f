"""Identities: DIDs bound to chain accounts, role credentials, challenge-response and sealed delivery."""
