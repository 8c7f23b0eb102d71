"""Rule params carry each run's metadata, rule inputs its files: join the two back in a rule script."""

from collections.abc import Mapping, Sequence


def with_files(records: Sequence[Mapping], key: str, paths: Sequence[str]) -> list[dict]:
    """Each record with its input file under ``key``: ``paths`` holds one file per record, in order."""
    if len(records) != len(paths):
        raise ValueError(f"{len(records)} records but {len(paths)} {key!r} files: {list(paths)}")
    return [{**record, key: str(path)} for record, path in zip(records, paths, strict=True)]


def files_by_name(names: Sequence[str], paths: Sequence[str]) -> dict[str, str]:
    """``{name: path}`` of one input file per name (e.g. a dataset's test pairs), in order."""
    if len(names) != len(paths):
        raise ValueError(f"{len(names)} names {list(names)} but {len(paths)} files: {list(paths)}")
    return {name: str(path) for name, path in zip(names, paths, strict=True)}


def with_some_files(records: Sequence[Mapping], key: str, paths: Sequence[str], flag: str) -> list[dict]:
    """Each record with its input file under ``key`` where ``record[flag]`` is true (``paths``: one per such
    record, in order), and ``None`` there for the others."""
    joined = iter(with_files([record for record in records if record[flag]], key, paths))
    return [next(joined) if record[flag] else {**record, key: None} for record in records]
