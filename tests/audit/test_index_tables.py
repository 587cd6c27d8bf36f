"""The index's table layer: job ids (grantId << 32 | use) past 2^63 — a grant id of 2^31 or more —
stored, compared and ordered exactly (U256: NUMERIC(78) on PostgreSQL, zero-padded text on SQLite);
values outside uint256 refused."""
from __future__ import annotations

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import StatementError

from audit.index_tables import jobs, open_engine, payments

BIG_GRANT = 2**31 + 5
BIG_JOB = BIG_GRANT << 32 | 7  # > 2**63: a BIGINT column would overflow
JOBS = [1 << 32 | 1, BIG_JOB, (2**40) << 32 | 2, 2**256 - 1]


def _job(job_id: int, grant_id: int) -> dict:
    return {"job_id": job_id, "grant_id": grant_id, "asset_id": 1, "consumer": "0x" + "11" * 20, "status": "requested",
            "amount": "1", "operation": 4, "params_hash": "0x", "payment_token": "0x" + "00" * 20, "deadline": 0,
            "requested_block": 1}


def check_u256(url: str) -> None:
    """Store JOBS, read them back equal, in numeric order, found by equality and by range."""
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(jobs), [_job(j, min(j >> 32, 2**62)) for j in reversed(JOBS)])
        conn.execute(insert(payments).values(block=1, log_index=0, contract="Collaborations", kind="credit",
                                             payee="0x" + "22" * 20, token="0x" + "00" * 20, job_id=BIG_JOB,
                                             amount="5", share="provider", tx="0x"))
    with engine.connect() as conn:
        assert list(conn.execute(select(jobs.c.job_id).order_by(jobs.c.job_id)).scalars()) == JOBS
        assert conn.execute(select(jobs.c.grant_id).where(jobs.c.job_id == BIG_JOB)).scalar() == BIG_GRANT
        over = select(jobs.c.job_id).where(jobs.c.job_id > 2**63).order_by(jobs.c.job_id)
        assert list(conn.execute(over).scalars()) == JOBS[1:]
        assert conn.execute(select(payments.c.job_id).where(payments.c.job_id.in_([BIG_JOB]))).scalar() == BIG_JOB
    for bad in (-1, 2**256):
        with pytest.raises(StatementError, match="not a uint256"), engine.begin() as conn:
            conn.execute(insert(jobs).values(**_job(bad, 1)))
    engine.dispose()


def test_job_ids_past_2_63_on_sqlite(tmp_path):
    check_u256(f"sqlite:///{tmp_path / 'i.sqlite'}")
