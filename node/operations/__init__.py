"""What an admin runs: the data directory (datadir), founding (charter_draft) and joining a
federation (joining), backups (backup), the offline audit of an export (audit), and the
health check (doctor)."""
