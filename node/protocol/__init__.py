"""The protocol core (PROTOCOL §1-§3): what every implementation must agree on byte for byte.

events (strict signed events), schema (the JSON Schemas), charter (the federation's founding
document), keys (Ed25519 key files), merkle (the acts root of a seal), times (timestamps),
errors (the one exception root, with stable codes). Nothing here reads a database or a socket.
"""
