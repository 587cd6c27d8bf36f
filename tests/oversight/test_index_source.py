"""Which event index the monitor and compliance scans read (no chain needed): the one the gateway
and ``tds index run`` write — ``TDS_INDEX_URL`` when set, else ``$TDS_HOME/index/events.sqlite``
only once it exists (opening a missing SQLite file would create an empty index)."""
from __future__ import annotations

from dataclasses import replace

from audit.index_events import index_exists
from audit.index_tables import open_engine
from chain.config import Settings
from oversight.index_source import HOW, IndexUnavailable, configured_index


def test_the_default_index_is_read_only_once_it_exists(tmp_path):
    settings = Settings(home=tmp_path / "home")
    assert configured_index(settings) is None                      # nothing there: the node is read
    url = settings.index_database_url
    assert url == f"sqlite:///{tmp_path / 'home' / 'index' / 'events.sqlite'}" and not index_exists(url)
    open_engine(url).dispose()                                      # what `tds index run` creates
    assert configured_index(settings) == url and index_exists(url)


def test_a_configured_index_is_always_the_one_read(tmp_path):
    missing = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    settings = replace(Settings(home=tmp_path / "home"), index_url=missing)
    assert configured_index(settings) == missing and not index_exists(missing)   # open_index refuses it
    assert configured_index(replace(settings, index_url="postgresql://idx@db/tds")) == "postgresql://idx@db/tds"
    err = IndexUnavailable(missing, "there is no index database")
    assert missing in str(err) and HOW in str(err) and "tds index run" in HOW and "--from-chain" in HOW
