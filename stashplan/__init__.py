"""stashplan: Stash-style database backups, planned and applied like Terraform, run as a loop."""

__version__ = "0.1.0"
DEFAULT_IMAGE = f"stashplan:{__version__}"  # what `make image` tags (.ci/image.sh); install, the chart and plans
