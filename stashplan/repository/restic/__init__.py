"""Reading restic repositories (the format every Stash backup is in), versions 1 and 2, from restic's design
document: keys, config, index, packs, snapshots, trees, blobs. Read-only; `migrate` copies into stashplan's format.
"""
