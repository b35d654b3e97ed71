"""stashplan: Stash-style database backups, planned and applied like Terraform, run as a loop."""

__version__ = "0.1.0"
