"""diskv-journal: inspect, verify, dump and repair a diskv-trio journal directory.

Modelled on etcd-dump-logs and pg_waldump; reads the journal without changing it, except
`repair` (which always keeps a copy of what it changes).

Exit codes:
    0  clean (or the command did what was asked)
    1  torn tail, or a damaged snapshot that an older one replaces (repairable:
       `Journal.open` or `repair` fixes it)
    2  corrupt (refused without `repair --force`)
    3  error: missing directory, not a journal, permission denied, bad arguments
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import cbor2

from journal import JournalError, NotAJournalError, ScanReport, repair, scan
from journal._format import BODY_PREFIX, HEADER_BYTES, TYPE_NAMES, check_record_at
from journal._fs import RealFileSystem
from journal._scan import analyse

PROG = "diskv-journal"
EXIT_CLEAN = 0
EXIT_TORN = 1
EXIT_CORRUPT = 2
EXIT_ERROR = 3
# Below this size a journal is read in well under a second: no progress bar.
PROGRESS_BYTES_MIN = 8 * 1024 * 1024
# Bytes values longer than this are shown cut, with their length.
DUMP_BYTES_SHOWN_MAX = 32

_EXIT_HELP = "exit status: 0 clean, 1 torn tail, 2 corrupt, 3 error"


class _UsageError(Exception):
    pass


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 3, like every other failure
        raise _UsageError(message)


def _exit_code(report: ScanReport) -> int:
    if report.verdict.kind == "corrupt":
        return EXIT_CORRUPT
    if report.verdict.kind == "torn-tail" or report.damaged_snapshots:
        return EXIT_TORN
    return EXIT_CLEAN


def _verdict_line(report: ScanReport) -> str:
    line = f"verdict: {report.verdict}"
    if report.damaged_snapshots and report.verdict.kind != "corrupt":
        line += f" (damaged snapshot skipped: {', '.join(report.damaged_snapshots)})"
    return line


def _scan_with_progress(path: str) -> ScanReport:
    total = 0
    if os.path.isdir(path):
        for name in os.listdir(path):
            if name.endswith(".log"):
                total += os.path.getsize(os.path.join(path, name))
    if not (sys.stderr.isatty() and total >= PROGRESS_BYTES_MIN):
        return scan(path)
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("reading segments", total=total)
        return scan(path, progress=lambda done, _total: progress.update(task, completed=done))


def _cmd_inspect(args: argparse.Namespace) -> int:
    report = _scan_with_progress(args.dir)
    print(f"journal {report.path}")
    for snap in report.snapshots:
        state = "ok" if snap.valid else f"DAMAGED: {snap.reason}"
        print(f"  snapshot {snap.name}  lsn {snap.lsn}  {snap.size_bytes} bytes  {state}")
    for seg in report.segments:
        if seg.covered:
            detail = "covered by the snapshot (not read)"
        elif seg.record_count:
            detail = f"{seg.record_count} records, lsn {seg.first_lsn}..{seg.last_lsn}"
        else:
            detail = "no records"
        print(f"  segment {seg.name}  {seg.size_bytes} bytes  {detail}")
    for name in report.temp_files:
        print(f"  leftover {name} (removed at next open)")
    if report.forced_repair:
        print("  FORCED-REPAIR marker present: the server recovers as after disk loss")
    print(
        f"snapshot lsn {report.snapshot_lsn}, last lsn {report.last_lsn}, "
        f"{report.record_count} records read, {report.records_after_snapshot} after the snapshot, "
        f"{report.size_bytes} bytes"
    )
    print(_verdict_line(report))
    return _exit_code(report)


def _cmd_verify(args: argparse.Namespace) -> int:
    report = scan(args.dir)
    print(_verdict_line(report))
    return _exit_code(report)


def _show(value: Any, *, as_json: bool) -> Any:
    """Make a decoded CBOR value printable: bytes become hex with their length."""
    if isinstance(value, bytes | bytearray):
        shown = bytes(value[:DUMP_BYTES_SHOWN_MAX]).hex()
        if len(value) > DUMP_BYTES_SHOWN_MAX:
            shown += "..."
        return {"hex": shown, "len": len(value)} if as_json else f"h'{shown}'({len(value)})"
    if isinstance(value, dict):
        return {str(_show(k, as_json=as_json)): _show(v, as_json=as_json) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_show(v, as_json=as_json) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


def _decode_payload(payload: bytes, *, as_json: bool) -> tuple[str, Any]:
    try:
        return "cbor", _show(cbor2.loads(payload), as_json=as_json)
    except Exception:  # any undecodable payload is shown raw
        return "raw", _show(payload, as_json=as_json)


def _records(path: str) -> Iterator[tuple[int, int, bytes]]:
    """Yield (lsn, type, payload) of every valid record on disk, oldest first."""
    analysis = analyse(path, RealFileSystem(), collect_records=False, from_first_segment=True)
    for seg in analysis.report.segments:
        data = RealFileSystem().read_file(os.path.join(path, seg.name))
        offset = 0
        while offset < seg.valid_bytes:
            found = check_record_at(data, offset)
            assert found is not None  # the analysis validated these bytes
            record_type, lsn, size = found
            yield lsn, record_type, data[offset + HEADER_BYTES + BODY_PREFIX.size : offset + size]
            offset += size
    if analysis.report.verdict.kind != "clean":
        print(f"{PROG}: stopped: {analysis.report.verdict}", file=sys.stderr)


def _cmd_dump(args: argparse.Namespace) -> int:
    report = scan(args.dir)  # not-a-journal and missing checks
    for lsn, record_type, payload in _records(args.dir):
        if args.from_lsn is not None and lsn < args.from_lsn:
            continue
        if args.to_lsn is not None and lsn > args.to_lsn:
            break
        kind, shown = _decode_payload(payload, as_json=args.json)
        type_name = TYPE_NAMES.get(record_type, str(record_type))
        if args.json:
            line = {"lsn": lsn, "type": type_name, "size": len(payload), kind: shown}
            print(json.dumps(line, sort_keys=True))
        else:
            print(f"lsn={lsn} type={type_name} size={len(payload)} {kind}={shown!r}")
    return _exit_code(report)


def _cmd_repair(args: argparse.Namespace) -> int:
    result = repair(args.dir, force=args.force, dry_run=args.dry_run)
    print(f"verdict: {result.verdict_before}")
    if result.refused:
        print(
            f"{PROG}: journal is corrupt; refusing to repair without --force "
            "(which cuts it back and makes the server recover as after disk loss)",
            file=sys.stderr,
        )
        return EXIT_CORRUPT
    if not result.actions:
        print("nothing to repair")
    prefix = "would " if args.dry_run else ""
    for action in result.actions:
        print(f"{prefix}{action}")
    return EXIT_CLEAN


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog=PROG,
        description="Inspect, verify, dump and repair a diskv-trio journal directory.",
        epilog=_EXIT_HELP,
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    inspect = commands.add_parser(
        "inspect",
        help="list segments and snapshots with a verdict",
        epilog=_EXIT_HELP,
        description="List segments, snapshots, record counts, LSN ranges and sizes, then one verdict line.",
    )
    inspect.add_argument("dir", help="journal directory")
    inspect.set_defaults(run=_cmd_inspect)

    verify = commands.add_parser(
        "verify",
        help="print the verdict; exit status says it",
        epilog=_EXIT_HELP,
        description="Check every record and snapshot CRC; print the verdict.",
    )
    verify.add_argument("dir", help="journal directory")
    verify.set_defaults(run=_cmd_verify)

    dump = commands.add_parser(
        "dump",
        help="print records, one per line",
        epilog=_EXIT_HELP,
        description="Print every valid record on disk (lsn, type, size, decoded CBOR payload).",
    )
    dump.add_argument("dir", help="journal directory")
    dump.add_argument("--from", dest="from_lsn", type=int, metavar="LSN", help="first LSN to show")
    dump.add_argument("--to", dest="to_lsn", type=int, metavar="LSN", help="last LSN to show")
    dump.add_argument("--json", action="store_true", help="JSON lines")
    dump.set_defaults(run=_cmd_dump)

    repair_parser = commands.add_parser(
        "repair",
        help="fix a torn tail (or, with --force, corruption)",
        epilog="exit status: 0 repaired or nothing to do, 2 corrupt and no --force, 3 error",
        description=(
            "Fix a torn tail: copy the segment aside as .broken, truncate the bad record. "
            "Corruption is refused unless --force, which copies damaged files aside, cuts the "
            "journal back to its last good record and writes the FORCED-REPAIR marker so the "
            "server recovers as after losing its disk."
        ),
    )
    repair_parser.add_argument("dir", help="journal directory")
    repair_parser.add_argument("--dry-run", action="store_true", help="print what would be done")
    repair_parser.add_argument("--force", action="store_true", help="also repair corruption")
    repair_parser.set_defaults(run=_cmd_repair)
    return parser


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        return _fail(str(exc))
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    path = args.dir
    try:
        if not os.path.lexists(path):
            return _fail(f"no such directory: {path}")
        if not os.path.isdir(path):
            return _fail(f"not a journal directory (a file): {path}")
        code: int = args.run(args)
        return code
    except NotAJournalError:
        return _fail(f"not a journal directory (no segments or snapshots): {path}")
    except PermissionError as exc:
        return _fail(f"permission denied: {exc.filename or path}")
    except FileNotFoundError as exc:
        return _fail(f"no such file or directory: {exc.filename or path}")
    except BrokenPipeError:
        return EXIT_ERROR
    except (OSError, JournalError) as exc:
        return _fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
