"""Providers: the outside systems stashplan talks to (databases, object stores), one package each."""
