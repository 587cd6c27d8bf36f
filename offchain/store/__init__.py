"""Embedded content-addressed store: Kubo-identical CIDs, pinning, GC and a Kubo RPC subset."""
