"""Backup and restore of a TDS_HOME (docs/backup.md): :mod:`collect` says what goes in,
:mod:`archive` is the encrypted, chunked and authenticated file format, :mod:`shamir` splits the
backup key k of n, :mod:`ops` creates, verifies and restores."""
