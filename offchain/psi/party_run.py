"""One party's side of a PSI session as a unit that runs where that party's data is: built with
the party's IDs and its endpoint (listening from construction), started once the coordinator has
every party's address, joined for its result. ``run_psi`` runs one per party in one process; a
provider's party node (``offchain.collab.party_api``) runs only its own, behind its endpoint."""
from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from offchain.psi.errors import PsiConfigError, PsiProtocolError
from offchain.psi.normalize import normalize
from offchain.psi.protocol import PartyMachine

# (slot, did, x25519 key): slot None is the consumer, else the recipient's DID
SealTo = tuple[str | None, str, bytes]


@dataclass(frozen=True)
class PartyResult:
    """What one party ended with: the size and transcript every party must agree on, and (the
    leader, mode ``intersection``) the intersection sealed to each recipient, by slot."""

    did: str
    size: int
    transcript: bytes
    sealed: dict[str | None, bytes] = field(default_factory=dict)


class PartyRun:
    """Party ``index`` of ``dids`` in session ``session_id``, over ``endpoint``."""

    def __init__(self, party: Any, index: int, dids: Sequence[str], session_id: str, mode: str, endpoint: Any,
                 processes: int = 1):
        if dids[index] != party.identity.did:
            raise PsiConfigError(f"party {index} of the session is {dids[index]}, not {party.identity.did}")
        self.party, self.index, self.dids = party, index, list(dids)
        self.session_id, self.mode, self.endpoint = session_id, mode, endpoint
        self.machine = PartyMachine(index, self.dids, session_id, mode, normalize(party.ids, party.rules), processes)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._sealed: dict[str | None, bytes] = {}

    @property
    def did(self) -> str:
        return self.party.identity.did

    @property
    def address(self) -> tuple[str, int] | None:
        """Where the peers reach this party (TCP endpoints; None in memory)."""
        return getattr(self.endpoint, "address", None)

    def start(self, addresses: Mapping[str, tuple[str, int]] | None, timeout: float,
              seal_to: Sequence[SealTo] = ()) -> None:
        """Connect to the peers (when ``addresses`` are given) and run the protocol in a thread;
        the leader then seals the intersection to each of ``seal_to``."""
        from offchain.psi.session import seal_intersection, serve_party

        if self._thread is not None:
            raise PsiConfigError(f"PSI session {self.session_id}: party {self.index} was already started")
        if seal_to and (self.index != 0 or self.mode != "intersection"):
            raise PsiConfigError("only the leader seals, and only an intersection")

        def main() -> None:
            try:
                if addresses is not None:
                    self.endpoint.connect(addresses, timeout)
                serve_party(self.machine, self.endpoint, timeout)
                for slot, did, key in seal_to:
                    self._sealed[slot] = seal_intersection(self.party.identity, self.session_id, self.dids,
                                                           self.machine.intersection or [], did, key)
            except BaseException as exc:  # noqa: BLE001 - handed to result()
                self._error = exc
            finally:
                self.endpoint.close()

        self._thread = threading.Thread(target=main, name=f"psi-party-{self.index}", daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def result(self, timeout: float | None = None) -> PartyResult:
        """Wait for the run; raise its error, or return what this party ended with."""
        if self._thread is None:
            raise PsiConfigError(f"PSI session {self.session_id}: party {self.index} was never started")
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"PSI session {self.session_id}: party {self.index} is still running")
        if self._error is not None:
            raise self._error
        if self.machine.size is None:
            raise PsiProtocolError(self.did, "the protocol ended without a size")
        return PartyResult(self.did, self.machine.size, self.machine.transcript or b"", dict(self._sealed))

    def close(self) -> None:
        self.endpoint.close()


def agreed(results: Sequence[PartyResult]) -> PartyResult:
    """The leader's result, once every party's transcript is the same (else PsiProtocolError)."""
    if len({r.transcript for r in results}) != 1 or len({r.size for r in results}) != 1:
        raise PsiProtocolError(results[0].did, "the parties ended with different transcripts")
    return results[0]
