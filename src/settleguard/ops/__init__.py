"""Operations: backups that restore (backup.py, backup_manifest.py), health (doctor); docs/operations.md."""
