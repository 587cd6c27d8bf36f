"""Live sources (000 §9.2–9.4, §10.2): databases through SQLAlchemy, MQTT streams, REST feeds.

Each source turns records into committed *versions* of one encrypted dataset: records are typed
against the source's schema (bad rows go to the quarantine), cleaned, scored, onion-encrypted
with the dataset's existing keys and appended as new chunks under a new manifest. A version,
the source's watermark (or the keys of the messages it consumed) and its quarantined rows are
committed in one SQLite transaction, so a crash resumes from the last committed version with
no gap and no duplicate. See docs/sources.md."""
