"""The ``tds`` command line: one subcommand group per concern."""
from __future__ import annotations

import sys

import click

from tds.cli.audit import audit
from tds.cli.backup import backup
from tds.cli.collab import collab, node
from tds.cli.collab_nodes import party
from tds.cli.chain import chain, compile_cmd, deploy_cmd, setup_cmd
from tds.cli.data import data
from tds.cli.demo import demo
from tds.cli.gateway import gateway
from tds.cli.identity import identity
from tds.cli.index import index
from tds.cli.store import store
from tds.cli.assets import asset, catalog
from tds.cli.earnings import earnings
from tds.cli.grants import grant
from tds.cli import offers  # noqa: F401  (registers grant sign, submit, cancel-offer)
from tds.cli import onboarding  # noqa: F401  (registers id apply, applications, review, admit)
from tds.cli.jobs import job
from tds.cli.ratings import rate
from tds.cli.services import oracle, provider
from tds.cli.oversight import monitor, regulator
from tds.cli import disputes  # noqa: F401  (registers job dispute|release-held, regulator disputes|decide)
from tds.cli.compliance import compliance
from tds.cli.governance import gov
from tds.cli.sources import source
from tds.cli.output import fail
from chain.errors import TdsError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trusted-data-space")
def cli() -> None:
    """Trusted Data Space: data stays with its owner; ciphertext, permission and proof move."""


cli.add_command(setup_cmd)
cli.add_command(chain)
cli.add_command(compile_cmd)
cli.add_command(deploy_cmd)
cli.add_command(demo)
cli.add_command(store)
cli.add_command(data)
cli.add_command(identity)
cli.add_command(audit)
cli.add_command(gateway)
cli.add_command(index)
cli.add_command(oracle)
cli.add_command(provider)
cli.add_command(asset)
cli.add_command(catalog)
cli.add_command(grant)
cli.add_command(job)
cli.add_command(earnings)
cli.add_command(rate)
cli.add_command(collab)
cli.add_command(node)
cli.add_command(party)
cli.add_command(monitor)
cli.add_command(regulator)
cli.add_command(compliance)
cli.add_command(gov)
cli.add_command(source)
cli.add_command(backup)


def main() -> None:
    """Console entry point: user errors print one line and exit 1, never a traceback."""
    try:
        cli.main(standalone_mode=False)
    except TdsError as exc:
        fail(str(exc))
    except click.exceptions.Abort:
        fail("aborted")
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
