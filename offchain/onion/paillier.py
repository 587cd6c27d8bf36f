"""Paillier for throughput: g = n+1, short-exponent randomizers with fixed-base tables, CRT.

Encryption ``c = (1 + m·n) · hs^α mod n²`` where ``hs = h^n mod n²`` for ``h = -x² mod n`` and
α is a fresh uniform ``exponent_bits``-bit secret (Damgård–Jurik–Nielsen's variant, IJIS 2010,
§4; parameter choice as in Ma et al., "Optimized Paillier's cryptosystem with fast encryption
and decryption", ACSAC 2021: 448-bit α for 112-bit security). ``hs^α`` is computed from a
precomputed fixed-base comb table (one table row per w-bit window of α: 56 multiplications
for w = 8 on the public path; the key owner uses w = 11, i.e. 41 multiplications, in the two
halves mod p² and q² (CRT), each ~4x cheaper than a product mod n²). α comes from
:mod:`secrets` for every ciphertext, never reused.
Security: IND-CPA under DCR plus the short-exponent indistinguishability assumption; the best
known generic attack on a 448-bit exponent (Pollard lambda) costs ~2^224 > 2^112.
Decryption uses the CRT form of the original paper (two exponentiations mod p², q²); when the
caller knows the plaintext is shorter than p (a packed aggregate whose layout bounds it), one
exponentiation mod p² suffices, since m = m mod p then."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import gmpy2
from gmpy2 import mpz

from offchain.errors import KeyAuthenticationError

DEFAULT_BITS = 2048
DEFAULT_EXPONENT_BITS = 448
PUBLIC_WINDOW = 8     # table mod n²: 56 rows x 256 entries (~7 MB for 2048-bit n)
OWNER_WINDOW = 11     # tables mod p², q²: 41 rows x 2048 entries each (~45 MB, built in ~0.5 s)


def _comb_table(base: mpz, modulus: mpz, exponent_bits: int, window: int) -> list[list[mpz]]:
    """rows[i][b] = base^(b · 2^(window·i)) mod modulus."""
    rows = []
    step = base
    for _ in range((exponent_bits + window - 1) // window):
        row = [mpz(1), step]
        for _ in range(2, 1 << window):
            row.append(row[-1] * step % modulus)
        rows.append(row)
        step = row[-1] * step % modulus
    return rows


def _comb_pow(table: list[list[mpz]], exponent: int, modulus: mpz, window: int) -> mpz:
    """base^exponent from a comb table: one multiplication per non-zero window digit."""
    acc, mask = mpz(1), (1 << window) - 1
    for row in table:
        digit = exponent & mask
        exponent >>= window
        if digit:
            acc = acc * row[digit] % modulus
    return acc


@dataclass
class PaillierPublicKey:
    """n and the public randomizer base hs. Anyone holding it can encrypt and add."""

    n: int
    hs: int
    exponent_bits: int = DEFAULT_EXPONENT_BITS
    _table: list | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.n, self.hs = mpz(self.n), mpz(self.hs)
        self.n2 = self.n * self.n
        self.width = (int(self.n2).bit_length() + 7) // 8

    @property
    def bits(self) -> int:
        return int(self.n).bit_length()

    @property
    def key_id(self) -> str:
        digest = hashlib.sha256(b"tds-paillier|" + int(self.n).to_bytes(self.width // 2 + 1, "big")
                                + b"|" + int(self.hs).to_bytes(self.width, "big")).hexdigest()
        return "hom:" + digest[:24]

    @property
    def max_plaintext(self) -> int:
        return int(self.n) - 1

    def to_dict(self) -> dict:
        return {"n": hex(self.n), "hs": hex(self.hs), "exponent_bits": self.exponent_bits}

    @classmethod
    def from_dict(cls, d: dict) -> "PaillierPublicKey":
        return cls(int(d["n"], 16), int(d["hs"], 16), int(d["exponent_bits"]))

    def _randomizer(self) -> mpz:
        if self._table is None:
            self._table = _comb_table(self.hs, self.n2, self.exponent_bits, PUBLIC_WINDOW)
        alpha = secrets.randbits(self.exponent_bits)
        return _comb_pow(self._table, alpha, self.n2, PUBLIC_WINDOW)

    def encrypt(self, m: int) -> mpz:
        """Public-key encryption (no factorisation needed; slower than the owner's path)."""
        return (1 + (m % self.n) * self.n) * self._randomizer() % self.n2

    def add(self, a: int, b: int) -> mpz:
        return a * b % self.n2

    def sum(self, ciphertexts: Iterable[int]) -> mpz:
        """Homomorphic sum of many ciphertexts (product mod n²)."""
        n2 = self.n2
        acc = mpz(1)
        for c in ciphertexts:
            acc = acc * c % n2
        return acc

    def mul_const(self, c: int, k: int) -> mpz:
        return gmpy2.powmod(c, k, self.n2)

    def zero(self) -> mpz:
        """The trivial encryption of 0 (the neutral element of :meth:`sum`)."""
        return mpz(1)

    def to_bytes(self, c: int) -> bytes:
        return int(c).to_bytes(self.width, "big")

    def from_bytes(self, raw: bytes) -> mpz:
        return mpz(int.from_bytes(raw, "big"))


@dataclass
class PaillierPrivateKey:
    """The factorisation; only the provider's key service ever holds it."""

    public: PaillierPublicKey
    p: int
    q: int
    _tables: tuple | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        p, q, n = mpz(self.p), mpz(self.q), self.public.n
        if p * q != n:
            raise ValueError("p·q does not match the public modulus")
        self.p, self.q = p, q
        self.p2, self.q2 = p * p, q * q
        self.p2_inv_q2 = gmpy2.invert(self.p2, self.q2)
        self.hp = gmpy2.invert((gmpy2.powmod(1 + n, p - 1, self.p2) - 1) // p, p)
        self.hq = gmpy2.invert((gmpy2.powmod(1 + n, q - 1, self.q2) - 1) // q, q)
        self.p_inv_q = gmpy2.invert(p, q)

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def to_dict(self) -> dict:
        return {"public": self.public.to_dict(), "p": hex(self.p), "q": hex(self.q)}

    @classmethod
    def from_dict(cls, d: dict) -> "PaillierPrivateKey":
        return cls(PaillierPublicKey.from_dict(d["public"]), int(d["p"], 16), int(d["q"], 16))

    def _crt_tables(self) -> tuple:
        if self._tables is None:
            bits = self.public.exponent_bits
            hs = self.public.hs
            self._tables = (_comb_table(hs % self.p2, self.p2, bits, OWNER_WINDOW),
                            _comb_table(hs % self.q2, self.q2, bits, OWNER_WINDOW))
        return self._tables

    def encrypt(self, m: int) -> mpz:
        """Owner-side encryption: same ciphertext distribution as the public path, computed
        mod p² and q² and recombined (CRT)."""
        tp, tq = self._crt_tables()
        n, p2, q2 = self.public.n, self.p2, self.q2
        alpha = secrets.randbits(self.public.exponent_bits)
        gm = 1 + (m % n) * n
        cp = gm % p2 * _comb_pow(tp, alpha, p2, OWNER_WINDOW) % p2
        cq = gm % q2 * _comb_pow(tq, alpha, q2, OWNER_WINDOW) % q2
        return cp + p2 * ((cq - cp) * self.p2_inv_q2 % q2)

    def encrypt_many(self, values: Sequence[int]) -> list[mpz]:
        return [self.encrypt(v) for v in values]

    def decrypt(self, c: int, bound_bits: int | None = None) -> int:
        """CRT decryption. A ciphertext outside Z*_{n²} (wrong key, tampering) is refused.
        ``bound_bits``: the caller guarantees m < 2^bound_bits; if that is below the smaller
        prime, m = m mod p and one exponentiation (mod p²) recovers it — half the work."""
        c = mpz(c)
        if not 0 < c < self.public.n2 or gmpy2.gcd(c, self.public.n) != 1:
            raise KeyAuthenticationError(self.key_id, "Paillier ciphertext")
        p, q = self.p, self.q
        mp = (gmpy2.powmod(c, p - 1, self.p2) - 1) // p * self.hp % p
        if bound_bits is not None and bound_bits < int(p).bit_length() - 1:
            return int(mp)
        mq = (gmpy2.powmod(c, q - 1, self.q2) - 1) // q * self.hq % q
        return int(mp + p * ((mq - mp) * self.p_inv_q % q))


def generate_keypair(bits: int = DEFAULT_BITS,
                     exponent_bits: int = DEFAULT_EXPONENT_BITS) -> PaillierPrivateKey:
    """Fresh key: two random primes of bits/2 with n of exactly ``bits`` bits."""
    if bits < 512:
        raise ValueError("Paillier modulus below 512 bits is not supported")
    half = bits // 2
    while True:
        p = gmpy2.next_prime(mpz(secrets.randbits(half)) | (mpz(3) << (half - 2)))
        q = gmpy2.next_prime(mpz(secrets.randbits(bits - half)) | (mpz(3) << (bits - half - 2)))
        n = p * q
        if p != q and n.bit_length() == bits and gmpy2.gcd(n, (p - 1) * (q - 1)) == 1:
            break
    while True:
        x = mpz(secrets.randbelow(int(n) - 2) + 2)
        if gmpy2.gcd(x, n) == 1:
            break
    h = (-x * x) % n
    hs = gmpy2.powmod(h, n, n * n)
    return PaillierPrivateKey(PaillierPublicKey(n, hs, exponent_bits), p, q)
