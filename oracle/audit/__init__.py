"""Audit: operation logs (000 §12.3.1), their Merkle batches, and trail reconstruction."""
