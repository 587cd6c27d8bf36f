"""Queries over ciphertext: a plan, a worker-side engine that never sees plaintext."""
