"""Shared by every test directory: pytest puts this directory on sys.path for its helpers
(``playbook_output``)."""
