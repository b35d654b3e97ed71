"""Names of the objects in a repository (format version 4; versions 1-3 are still read and written in
their own format) and the chunker/pack parameters it fixes."""

from __future__ import annotations

from dataclasses import dataclass

FORMAT_VERSION = 4  # 4: BLAKE3 object names (`names` in config), chunk ids keyed from each chunk's BLAKE3
# digest and a stream checksum over those digests (one hash pass per byte); 3: sealed documents
# carry their type as associated data; 2: keyed BLAKE3 chunk ids (`ids` in config); 1: HMAC-SHA256 ids, no
# `ids` field. Versions 1 and 2 seal documents without a type; versions 1-3 name objects by SHA-256.
TYPED_DOCUMENTS = 3  # the first version whose sealed documents carry their type
DOC_VERSION = 1  # index files and snapshot manifests: unchanged since format version 1
CONFIG = "config"
KEYS = "keys/"
DATA = "data/"
INDEX = "index/"
SNAPSHOTS = "snapshots/"
LOCKS = "locks/"

BLOB_DATA = 0  # a chunk of the backed-up stream
BLOB_LIST = 1  # a run of 32-byte chunk ids: part of a snapshot's content list


@dataclass(frozen=True)
class Params:
    """Per-repository constants recorded in `config` at init; changing them breaks dedup, not reads."""

    chunk_min: int = 128 * 1024
    chunk_avg: int = 512 * 1024
    chunk_max: int = 2 * 1024 * 1024
    pack_size: int = 4 * 1024 * 1024
    zstd_level: int = 1
    ids_per_list_blob: int = 16384
    ids: str = "blake3-digest-keyed"  # chunk ids; format 1: "hmac-sha256", formats 2-3: "blake3-keyed"
    names: str = "blake3"  # object name and stream checksum hash; format versions 1-3 use "sha256"

    def to_json(self) -> dict:
        return {
            "chunker": {
                "algorithm": "fastcdc",
                "min": self.chunk_min,
                "avg": self.chunk_avg,
                "max": self.chunk_max,
            },
            "pack_size": self.pack_size,
            "compression": {"algorithm": "zstd", "level": self.zstd_level},
            "ids_per_list_blob": self.ids_per_list_blob,
            "ids": {"algorithm": self.ids},
            **({"names": {"algorithm": self.names}} if self.names != "sha256" else {}),
        }

    @classmethod
    def from_json(cls, doc: dict) -> Params:
        ch = doc.get("chunker") or {}
        return cls(
            chunk_min=int(ch.get("min", cls.chunk_min)),
            chunk_avg=int(ch.get("avg", cls.chunk_avg)),
            chunk_max=int(ch.get("max", cls.chunk_max)),
            pack_size=int(doc.get("pack_size", cls.pack_size)),
            zstd_level=int((doc.get("compression") or {}).get("level", cls.zstd_level)),
            ids_per_list_blob=int(doc.get("ids_per_list_blob", cls.ids_per_list_blob)),
            ids=str((doc.get("ids") or {}).get("algorithm", "hmac-sha256")),
            names=str((doc.get("names") or {}).get("algorithm", "sha256")),
        )


def pack_name(pack_id: str) -> str:
    return f"{DATA}{pack_id[:2]}/{pack_id}"


def pack_id_of(name: str) -> str:
    return name.rsplit("/", 1)[-1]
