"""The BFV secret key and the only path by which the key service decrypts a BFV aggregate.

One decryption opens every slot of a ciphertext. So the key service never decrypts what a
worker hands it: :meth:`BfvSecretKey.open_total` takes the (recomputed) aggregate, **reduces**
it — rotate-and-sum over all N slots (row rotations by 1, 2, …, N/4, then the column swap), after
which every slot holds the same total and the plaintext is the constant polynomial — **floods**
its noise, and only then decrypts. After decryption it checks the plaintext is constant (all
slots equal); anything else raises :class:`~offchain.errors.UnreducedCiphertext` and nothing is
returned. :meth:`decrypt_reduced` accepts only a :class:`ReducedTotal`, which only
:meth:`reduce` creates.

**Noise flooding, and its limit.** Before decryption the key service adds ``Enc(0)·R·2^k``: a
fresh symmetric encryption of zero times a uniformly random plaintext polynomial R, scaled by
2^k with k as large as the measured remaining noise budget allows (leaving ``FLOOD_MARGIN``
bits). Measured, its noise exceeds the computation's by ~2^50–2^70 for 10^5–10^8-row columns,
which rerandomises the ciphertext and drowns the selection-dependent noise. The limit: it is not
a smudging distribution with a proof (SEAL/TenSEAL expose no control of the error distribution;
Enc(0)·R is a sum of products of Gaussian and uniform terms, not a fresh discrete Gaussian of
chosen width). BFV decryption rounds the noise away, the key service publishes only the
total, and the only party that ever sees the noise is the data owner itself."""
from __future__ import annotations

import hashlib
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from offchain.errors import UnreducedCiphertext
from offchain.onion.bfv import BfvParams, context, ct_from_bytes, saved_bytes, seal

FLOOD_MARGIN = 10      # bits of noise budget left after flooding
_REDUCED = object()    # capability: only reduce() makes a ReducedTotal


class ReducedTotal:
    """A ciphertext whose every slot holds the same total (made only by :meth:`BfvSecretKey.reduce`)."""

    def __init__(self, token: object, params: BfvParams, ct: Any, flood_bits: int) -> None:
        if token is not _REDUCED:
            raise TypeError("a ReducedTotal is made only by BfvSecretKey.reduce")
        self.params, self.ct, self.flood_bits = params, ct, flood_bits


@dataclass
class BfvSecretKey:
    """64 bytes of seed; the SEAL secret key is derived from it (deterministic key generation
    under a seeded Blake2xb PRNG), one per parameter set (same polynomial, other plain modulus)."""

    seed: bytes
    _sk: dict = field(default_factory=dict, repr=False, compare=False)
    _galois: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.seed) != 64:
            raise ValueError("a BFV key seed is 64 bytes")

    @property
    def key_id(self) -> str:
        return "bfv:" + hashlib.sha256(b"tds-bfv-key|" + self.seed).hexdigest()[:24]

    def to_dict(self) -> dict:
        return {"seed": self.seed.hex()}

    @classmethod
    def from_dict(cls, d: dict) -> "BfvSecretKey":
        return cls(bytes.fromhex(d["seed"]))

    def secret(self, params: BfvParams) -> Any:
        if params not in self._sk:
            parms = seal.EncryptionParameters(seal.SCHEME_TYPE.BFV)
            parms.set_poly_modulus_degree(params.poly_degree)
            parms.set_coeff_modulus(seal.CoeffModulus.Create(params.poly_degree, list(params.coeff_bits)))
            parms.set_plain_modulus(params.plain_modulus)
            parms.set_random_generator(seal.Blake2xbPRNGFactory(list(struct.unpack("<8Q", self.seed))))
            seeded = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
            # the key is used with the unseeded context (same parms_id; fresh randomness for encryption)
            self._sk[params] = seal.KeyGenerator(seeded).secret_key()
        return self._sk[params]

    def _galois_keys(self, params: BfvParams) -> Any:
        if params not in self._galois:
            gk = seal.GaloisKeys()
            seal.KeyGenerator(context(params), self.secret(params)).create_galois_keys(gk)
            self._galois[params] = gk
        return self._galois[params]

    # provider side: encryption -------------------------------------------------------------
    def encrypt_blocks(self, params: BfvParams, values: np.ndarray) -> list[bytes]:
        """Seeded symmetric encryptions of ``values`` (uint64 slot values), N rows per block."""
        ctx = context(params)
        encoder, encryptor = seal.BatchEncoder(ctx), seal.Encryptor(ctx, self.secret(params))
        out = []
        for start in range(0, len(values), params.slots):
            plain = seal.Plaintext()
            encoder.encode(values[start:start + params.slots].tolist(), plain)
            out.append(saved_bytes(encryptor.encrypt_symmetric(plain)))
        return out

    # key service side: the release path ---------------------------------------------------------
    def reduce(self, params: BfvParams, aggregate: bytes) -> ReducedTotal:
        """Rotate-and-sum every slot into every slot, then flood the noise."""
        ctx, gk = context(params), self._galois_keys(params)
        ev = seal.Evaluator(ctx)
        ct = ct_from_bytes(params, aggregate)
        if ct.is_ntt_form() or ct.size() != 2:
            raise UnreducedCiphertext(self.key_id, "not a canonical two-component aggregate")
        step = 1
        while step < params.slots // 2:            # rows of N/2 slots: steps 1 … N/4
            rotated = seal.Ciphertext()
            ev.rotate_rows(ct, step, gk, rotated)
            ev.add_inplace(ct, rotated)
            step *= 2
        swapped = seal.Ciphertext()
        ev.rotate_columns(ct, gk, swapped)
        ev.add_inplace(ct, swapped)
        return ReducedTotal(_REDUCED, params, ct, self._flood(params, ct, ev))

    def _flood(self, params: BfvParams, ct: Any, ev: Any) -> int:
        """Add Enc(0)·R·2^k, k as large as the noise budget allows (``FLOOD_MARGIN`` bits kept);
        returns k."""
        ctx, sk = context(params), self.secret(params)
        decryptor = seal.Decryptor(ctx, sk)
        zero = seal.Ciphertext()
        seal.Encryptor(ctx, sk).encrypt_zero_symmetric(zero)
        uniform = np.frombuffer(secrets.token_bytes(8 * params.slots), dtype=np.uint64) % np.uint64(params.plain_modulus)
        rand = seal.Plaintext()
        seal.BatchEncoder(ctx).encode(uniform.tolist(), rand)
        ev.multiply_plain_inplace(zero, rand)
        k = 0
        while True:        # scale by 2^step (a plaintext constant must stay below t) until the budget is spent
            step = min(params.t_bits - 2, decryptor.invariant_noise_budget(zero) - FLOOD_MARGIN - 1)
            if step <= 0:
                break
            ev.multiply_plain_inplace(zero, seal.Plaintext(format(1 << step, "X")))
            k += step
        ev.add_inplace(ct, zero)
        if decryptor.invariant_noise_budget(ct) <= 0:
            raise UnreducedCiphertext(self.key_id, "no noise budget left after flooding")
        return k

    def decrypt_reduced(self, total: ReducedTotal) -> int:
        """Decrypt a reduced total: every slot must hold the same value (a constant plaintext)."""
        if not isinstance(total, ReducedTotal):
            raise UnreducedCiphertext(self.key_id, f"a {type(total).__name__} is not a reduced total")
        ctx = context(total.params)
        plain = seal.Plaintext()
        seal.Decryptor(ctx, self.secret(total.params)).decrypt(total.ct, plain)
        if plain.significant_coeff_count() > 1:      # not constant: the slots differ
            raise UnreducedCiphertext(self.key_id, "the slots of the decrypted total differ")
        return int(seal.BatchEncoder(ctx).decode_uint64(plain)[0])

    def open_total(self, params: BfvParams, aggregate: bytes) -> int:
        """The slot total of an aggregate: reduce, flood, decrypt, check (the only way in)."""
        return self.decrypt_reduced(self.reduce(params, aggregate))


def new_bfv_key() -> BfvSecretKey:
    return BfvSecretKey(secrets.token_bytes(64))


__all__ = ["BfvSecretKey", "ReducedTotal", "new_bfv_key"]
