"""Loading restic blobs through the shared pack reader (`repository.blobreader`): restic's decrypt, decompress, verify.

Every blob is decompressed into at most its recorded length (bounded by restic's largest blob, see
`index.check_bounds`) and checked against its id (the SHA-256 of what was produced); a failure names the
blob, its pack and what it was read for.
"""

from __future__ import annotations

import hashlib

import zstandard

from providers.storage import Storage
from stashplan.errors import RepositoryError
from stashplan.repository.blobreader import PackReader, TooLarge, decompress_capped
from stashplan.repository.formats import ResticLayout
from stashplan.repository.restic.crypto import ResticCorrupt, ResticKey
from stashplan.repository.restic.index import BlobLoc, ResticIndex


class BlobLoader:
    """Blobs by id through the index: the shared pack reader with restic's opening; thread-safe."""

    def __init__(
        self, storage: Storage, key: ResticKey, layout: ResticLayout, index: ResticIndex, context: str
    ) -> None:
        self.storage = storage
        self.key = key
        self.layout = layout
        self.index = index
        self.context = context
        self.packs: PackReader[BlobLoc, bytes] = PackReader(
            storage, self._open, layout.pack, context, pack_label=lambda pack: pack[:8]
        )

    def loc(self, blob_id: bytes, what: str) -> BlobLoc:
        loc = self.index.get(blob_id)
        if loc is None:
            raise RepositoryError(
                f"{self.context}: {what} blob {blob_id.hex()[:16]} is not in the index (its pack is lost); run check"
            )
        return loc

    def load(self, blob_id: bytes, what: str) -> bytes:
        return self.load_run([self.loc(blob_id, what)], what)[0]

    def load_run(self, locs: list[BlobLoc], what: str = "data") -> list[bytes]:
        """The plaintexts of blobs stored back to back in one pack, fetched with one ranged read."""
        return self.packs.read_run(locs, f"{what} blob")

    def open(self, loc: BlobLoc, sealed: memoryview) -> bytes:
        """Decrypt, decompress and verify one stored blob; RepositoryError naming it if anything is off."""
        return self._open(loc, sealed, self.packs.decompressor())

    def _open(self, loc: BlobLoc, sealed: memoryview, dec: zstandard.ZstdDecompressor) -> bytes:
        label = f"{loc.kind} blob {loc.id.hex()[:16]} in pack {loc.pack[:8]}"
        try:
            plain = self.key.open(sealed, what=label)
            if loc.compressed:
                plain = decompress_capped(dec, plain, loc.raw_length)
        except ResticCorrupt as exc:
            raise RepositoryError(f"{self.context}: {exc}") from None
        except zstandard.ZstdError:
            raise RepositoryError(f"{self.context}: {label} is corrupt (bad zstd data)") from None
        except TooLarge as exc:
            raise RepositoryError(
                f"{self.context}: {label} is corrupt (its zstd data {exc}; its index records {loc.raw_length})"
            ) from None
        if len(plain) != loc.raw_length or hashlib.sha256(plain).digest() != loc.id:
            raise RepositoryError(f"{self.context}: {label} is corrupt (content does not match its id)")
        return plain
