"""The compute provider: follows JobRequested events, accepts jobs, fetches the committed
parameters, computes on ciphertext with keys the provider's key service releases, and posts the
sealed answer's CID and hash back on chain — exactly once, across crashes and reorgs."""
