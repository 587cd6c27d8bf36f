"""Ingestion: read CSV / JSON / Excel, type by a declared or inferred schema, clean, score
quality (000 §5.1.4, §10.3.4) and classify (000 §5.1.3)."""
