"""Refusals of the PSI engine. Each class carries the thing that was wrong (rule, party, peer
DID, sequence number, frame size) so a caller prints one precise line and a test asserts on the
field. All derive from :class:`offchain.errors.DataPlaneError`."""
from __future__ import annotations

from typing import Any

from offchain.errors import DataPlaneError


class PsiError(DataPlaneError):
    """Base class of every PSI refusal."""


# --- inputs ----------------------------------------------------------------------------------
class UnknownNormalisationRule(PsiError):
    """A normalisation rule is not one :mod:`offchain.psi.normalize` knows, or its argument is
    malformed; names the ``rule``."""

    def __init__(self, rule: Any, detail: str = "") -> None:
        self.rule = rule
        super().__init__(f"unknown or malformed normalisation rule {rule!r}"
                         + (f": {detail}" if detail else ""))


class UnknownPsiMode(PsiError):
    def __init__(self, mode: str, modes: tuple[str, ...]) -> None:
        self.mode = mode
        super().__init__(f"PSI mode {mode!r} is unknown; use one of {', '.join(modes)}")


class EmptyPsiSet(PsiError):
    """A party's ID set is empty after normalisation (refused before anything is sent)."""

    def __init__(self, party: str) -> None:
        self.party = party
        super().__init__(f"party {party} has no IDs left after normalisation; refusing to run PSI "
                         "on an empty set")


class PsiConfigError(PsiError):
    """The session is mis-specified (fewer than two parties, a DID twice, no consumer key ...)."""


class LowOrderPoint(PsiError):
    """A point is of low order (X25519 would output all zeros): a peer sent a point that is not
    a blinded hash, or the input is corrupt. Names the ``index`` in the batch."""

    def __init__(self, index: int) -> None:
        self.index = index
        super().__init__(f"point #{index} is of low order (all-zero X25519 output); refusing it — "
                         "the peer did not send blinded hashes")


# --- protocol --------------------------------------------------------------------------------
class PsiProtocolError(PsiError):
    """A peer sent a message the protocol does not allow at this point (wrong sender, wrong key
    chain, wrong size, a second copy ...). Names the ``peer``."""

    def __init__(self, peer: str, reason: str) -> None:
        self.peer, self.reason = peer, reason
        super().__init__(f"protocol violation by {peer}: {reason}")


class PsiPeerLost(PsiError):
    """A peer closed its connection or stayed silent past the timeout before the protocol
    ended; no result is produced. Names the ``peer`` (its DID)."""

    def __init__(self, peer: str, reason: str) -> None:
        self.peer, self.reason = peer, reason
        super().__init__(f"PSI peer {peer} lost: {reason}; no result was produced")


# --- channel ---------------------------------------------------------------------------------
class ChannelError(PsiError):
    """A frame on the PSI channel was refused. Names the ``peer`` the frame came from."""

    def __init__(self, peer: str, message: str) -> None:
        self.peer = peer
        super().__init__(message)


class FrameTooLarge(ChannelError):
    def __init__(self, peer: str, size: int, limit: int, what: str = "frame") -> None:
        self.size, self.limit = size, limit
        super().__init__(peer, f"{what} of {size} bytes from {peer} exceeds the limit of {limit} bytes")


class MalformedFrame(ChannelError):
    def __init__(self, peer: str, reason: str) -> None:
        self.reason = reason
        super().__init__(peer, f"malformed frame from {peer}: {reason}")


class FrameFromWrongSender(ChannelError):
    def __init__(self, peer: str, sender: str) -> None:
        self.sender = sender
        super().__init__(peer, f"frame on the channel of {peer} is signed as {sender}; refused")


class FrameTampered(ChannelError):
    def __init__(self, peer: str, reason: str) -> None:
        self.reason = reason
        super().__init__(peer, f"frame from {peer} does not authenticate ({reason}); refused")


class FrameWrongSession(ChannelError):
    def __init__(self, peer: str, session: str, expected: str) -> None:
        self.session, self.expected = session, expected
        super().__init__(peer, f"frame from {peer} belongs to session {session!r}, not {expected!r}")


class FrameReplayed(ChannelError):
    """A frame's sequence number was already used (replay) or skips ahead (a frame is missing)."""

    def __init__(self, peer: str, seq: int, expected: int) -> None:
        self.seq, self.expected = seq, expected
        kind = "replayed" if seq < expected else "out of order"
        super().__init__(peer, f"frame #{seq} from {peer} is {kind} (expected #{expected}); refused")
