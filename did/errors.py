"""Refusals of the identity layer: one class per reason, each message says what and what to do.

All derive from :class:`IdentityError`, itself an :class:`chain.errors.TdsError`, so the CLI
prints one line instead of a traceback.
"""
from __future__ import annotations

from chain.crypto_profile import CryptoProfileMismatch as _ProfileMismatch
from chain.errors import TdsError


class IdentityError(TdsError):
    """Base class of every identity refusal."""


# --- keys and storage ---------------------------------------------------------------------------
class WrongPassword(IdentityError):
    """A keystore could not be decrypted with the given password."""


class KeystoreCorrupt(IdentityError):
    """A keystore file is malformed or was altered."""


class KdfParametersRefused(KeystoreCorrupt):
    """A keystore's KDF parameters are unknown or absurd (refused before any key is derived).

    Carries the ``source`` (file or keystore), the ``parameter`` and its ``value``."""

    def __init__(self, source: str, parameter: str, value: object, reason: str) -> None:
        self.source, self.parameter, self.value = source, parameter, value
        super().__init__(f"{source}: KDF parameter {parameter}={value!r} {reason}; refused before deriving "
                         "any key (re-create the keystore with standard parameters: scrypt N=2^17, r=8, p=1)")


class IdentityNotFound(IdentityError):
    """No stored identity has that name."""


class IdentityExists(IdentityError):
    """An identity of that name is already stored (refusing to overwrite keys)."""


class UnknownDid(IdentityError):
    """A DID is not a did:key Ed25519 DID we can resolve offline, or is not bound on chain."""


class InvalidDocument(IdentityError):
    """A DID document does not match its DID or lacks its key-agreement key."""


class DidkitError(IdentityError):
    """didkit refused an operation (message carries didkit's reason)."""


# --- binding ------------------------------------------------------------------------------------
class DidNotBound(IdentityError):
    """The DID and the Ethereum account are not bound to each other (both ways)."""


# --- credentials --------------------------------------------------------------------------------
class MalformedCredential(IdentityError):
    """The credential is not a role credential of this system (missing fields, bad JSON)."""


class TamperedCredential(IdentityError):
    """The credential's proof does not verify: it was altered after issue or forged."""


class CredentialExpired(IdentityError):
    """The credential's validity period has ended."""


class CredentialNotYetValid(IdentityError):
    """The credential's validity period has not started."""


class CredentialRevoked(IdentityError):
    """The operator revoked the credential (on the registry or the local revocation list)."""


class UntrustedIssuer(IdentityError):
    """The credential was issued by a DID that is not a trusted operator."""


class SubjectMismatch(IdentityError):
    """The credential is about another DID or account than the one presenting it."""


class RoleMismatch(IdentityError):
    """The credential states another role than the one required."""


# --- challenge-response -------------------------------------------------------------------------
class UnknownChallenge(IdentityError):
    """The challenge was not issued by this verifier (or was altered)."""


class ChallengeReplayed(IdentityError):
    """The challenge was already answered once."""


class ChallengeExpired(IdentityError):
    """The challenge's expiry passed before the answer arrived."""


class DomainMismatch(IdentityError):
    """The presentation was made for another domain than this verifier's."""


class TamperedPresentation(IdentityError):
    """The presentation's proof does not verify (altered, or signed by another key)."""


class AuthenticationRequired(IdentityError):
    """The request carries no presentation: answer the challenge first."""


class RequestNotBound(IdentityError):
    """The service accepts only presentations bound to their request, and this one names none."""


class RequestMismatch(IdentityError):
    """The presentation is bound to another request (HTTP method, path or body sha-256 differ)."""


# --- envelopes ----------------------------------------------------------------------------------
class MalformedEnvelope(IdentityError):
    """The bytes are not a canonical sealed envelope."""


class EnvelopeNotForYou(IdentityError):
    """The envelope is sealed to another recipient (DID or key-agreement key)."""


class EnvelopeAuthError(IdentityError):
    """The envelope's sender signature or ciphertext does not verify."""


# --- cryptography profiles ----------------------------------------------------------------------
class CryptoProfileMismatch(IdentityError, _ProfileMismatch):
    """A DID, proof or envelope of one cryptography profile met a verifier of the other (an SM2
    did:key where ``default`` is in force, an Ed25519 one under ``sm``): refused by name.

    The same refusal as :class:`chain.crypto_profile.CryptoProfileMismatch` (it is one, with
    ``expected``, ``found`` and ``subject``), and an identity refusal, so the DID guards answer
    it with 401 and ``kind`` ``CryptoProfileMismatch`` like any other failed authentication."""
