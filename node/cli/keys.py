"""`chapter-node keygen`: new Ed25519 key files for people and nodes."""

from __future__ import annotations

import click

from ..protocol.keys import generate_key, public_key, write_key_file
from .options import passphrase_option, passphrase_source

__all__ = ["COMMANDS"]


@click.command()
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Where to write the secret key file (created with mode 0600).")
@click.option("--encrypt/--no-encrypt", default=None,
              help="Seal the file with a passphrase (default: when --passphrase-env is given "
                   "or a terminal is attached, ask).")
@passphrase_option
def keygen(out: str, encrypt: bool | None, passphrase_env: str | None) -> None:
    """Write a new secret key file and print its public key (base64url, 43 chars).

    \b
    Example:
      chapter-node keygen --out amelie.key
      CN_PASS=... chapter-node keygen --out paris-node.key --passphrase-env CN_PASS
    """
    passphrase = None
    if encrypt is not False:
        if passphrase_env or encrypt:
            passphrase = passphrase_source(passphrase_env, confirm=True)()
        elif encrypt is None and click.get_text_stream("stdin").isatty():
            passphrase = passphrase_source(None, confirm=True)()
    key = generate_key()
    write_key_file(out, key, passphrase)
    click.echo(public_key(key))


COMMANDS = [keygen]
