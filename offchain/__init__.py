"""Provider-side data plane: ingestion and quality, onion encryption, the content store,
and queries over ciphertext. Pure functions for crypto and computation; I/O at the edges."""
