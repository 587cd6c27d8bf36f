"""Onion encryption (CryptDB's design): RND outermost over DET (equality) and the order layer
(range), HOM (Paillier) alone; per-field policy, peeling, keys, keystore and the dataset format."""
