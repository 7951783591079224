"""File records (path, size, sha256) for manifests and reports; no heavy imports, so the
compiler adapters can use it without pulling in TensorFlow."""
import hashlib
import pathlib


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_record(path, relative_to=None):
    """``{path, bytes, sha256}``; the path relative to ``relative_to`` when given."""
    path = pathlib.Path(path)
    shown = path.relative_to(relative_to) if relative_to is not None else path
    return {"path": str(shown), "bytes": path.stat().st_size, "sha256": sha256(path)}


def package_versions(names: "tuple[str, ...]") -> "dict[str, str | None]":
    """{package: installed version, or None} for ``names``, and Python's: the toolchain a record
    was made with."""
    import sys
    from importlib import metadata
    versions: "dict[str, str | None]" = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = sys.version.split()[0]
    return versions
