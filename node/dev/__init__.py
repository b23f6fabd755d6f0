"""Development tools: real federations on loopback (devcluster), `make demo` (demo), and
thousands of in-memory nodes on virtual time (devsim). Nothing in the product imports these."""
