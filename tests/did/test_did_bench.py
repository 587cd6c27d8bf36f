"""The identity benchmark runs and reports every operation beside its baseline (guards bench/ against rot)."""
from bench.identity import main, run


def test_bench_reports_each_operation_with_baseline(capsys):
    result = run(reps=2, payload_size=64)
    assert set(result["ops"]) >= {"issue_credential", "verify_credential", "seal", "open", "challenge_round_trip"}
    for r in result["ops"].values():
        assert r["mean_ms"] > 0 and r["baseline_mean_ms"] > 0 and r["baseline"]
    assert main(["--reps", "1", "--payload", "16"]) == 0
    assert "issue_credential" in capsys.readouterr().err
