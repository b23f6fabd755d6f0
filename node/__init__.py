"""chapter-node: one chapter's node in a federation that governs itself with no central server.

Core modules: `events` (the signed envelope), `charter` (trust root), `keys`, `store`,
`schema`; `governance/` holds the decision rules as pure functions; `federation/` holds the
HTTP server, peer client, signatures, sync and seals.
"""

__version__ = "0.1.0"
