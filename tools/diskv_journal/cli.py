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
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from journal import (
    JournalContents,
    JournalError,
    NotAJournalError,
    ScanReport,
    read_journal,
    repair,
    scan,
)

from ._dump import (
    KINDS,
    DumpRecord,
    decode_record,
    show,
    snapshot_keys,
    snapshot_sections,
)

PROG = "diskv-journal"
EXIT_CLEAN = 0
EXIT_TORN = 1
EXIT_CORRUPT = 2
EXIT_ERROR = 3
EXIT_INTERRUPTED = 130
# Below this size a journal is read in well under a second: no progress bar.
PROGRESS_BYTES_MIN = 8 * 1024 * 1024

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


def report_json(report: ScanReport) -> dict[str, Any]:
    """What `inspect` prints, as one JSON object (`verify --json` too)."""
    return {
        "path": str(report.path),
        "verdict": report.verdict.kind,
        "verdict_text": str(report.verdict),
        "exit_status": _exit_code(report),
        "snapshots": [
            {
                "name": s.name,
                "lsn": s.lsn,
                "size_bytes": s.size_bytes,
                "valid": s.valid,
                "reason": s.reason,
            }
            for s in report.snapshots
        ],
        "damaged_snapshots": list(report.damaged_snapshots),
        "segments": [
            {
                "name": g.name,
                "size_bytes": g.size_bytes,
                "covered": g.covered,
                "record_count": g.record_count,
                "first_lsn": g.first_lsn,
                "last_lsn": g.last_lsn,
            }
            for g in report.segments
        ],
        "leftover_files": list(report.temp_files),
        "forced_repair": bool(report.forced_repair),
        "snapshot_lsn": report.snapshot_lsn,
        "last_lsn": report.last_lsn,
        "record_count": report.record_count,
        "records_after_snapshot": report.records_after_snapshot,
        "size_bytes": report.size_bytes,
    }


def _cmd_inspect(args: argparse.Namespace) -> int:
    report = _scan_with_progress(args.dir)
    if args.json:
        print(json.dumps(report_json(report)))
        return _exit_code(report)
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
    if args.json:
        summary = report_json(report)
        print(
            json.dumps(
                {
                    k: summary[k]
                    for k in (
                        "path",
                        "verdict",
                        "verdict_text",
                        "exit_status",
                        "damaged_snapshots",
                        "last_lsn",
                    )
                }
            )
        )
    else:
        print(_verdict_line(report))
    return _exit_code(report)


def _dump_line(
    lsn: int, type_name: str, payload: bytes, record: DumpRecord, *, as_json: bool
) -> str:
    if as_json:
        row: dict[str, Any] = {
            "lsn": lsn,
            "type": type_name,
            "size": len(payload),
            "kind": record.kind,
        }
        if record.kind == "other":
            row["cbor"] = show(record.fields["cbor"], as_json=True)
        elif record.kind == "undecodable":
            row["raw"] = show(record.fields["bytes"], as_json=True)
        else:
            row["fields"] = show(record.fields, as_json=True)
        return json.dumps(row, sort_keys=True)
    fields = " ".join(
        f"{name}={show(value, as_json=False)!r}" for name, value in record.fields.items()
    )
    return f"lsn={lsn} type={type_name} size={len(payload)} {record.kind} {fields}".rstrip()


def _dump_snapshot(contents: JournalContents, *, as_json: bool) -> None:
    if contents.snapshot is None:
        print(json.dumps({"snapshot": None}) if as_json else "no snapshot")
        return
    lsn, state = contents.snapshot
    sections = snapshot_sections(state)
    keys = list(snapshot_keys(state))
    if as_json:
        shown = [
            {"where": k.where, "key": show(k.key, as_json=True), "value_bytes": k.value_bytes}
            for k in keys
        ]
        print(
            json.dumps(
                {"snapshot": {"lsn": lsn, "size_bytes": len(state), **sections, "keys": shown}}
            )
        )
        return
    print(
        f"snapshot lsn={lsn} size={len(state)} applied={sections.get('applied')} "
        f"sections={','.join(sections.get('sections', []))} keys={len(keys)}"
    )
    for k in keys:
        print(f"  {k.where}  {k.key!r}  {k.value_bytes} bytes")


def _cmd_dump(args: argparse.Namespace) -> int:
    report = scan(args.dir)  # not-a-journal and missing checks
    contents = read_journal(args.dir)
    if args.snapshot:
        _dump_snapshot(contents, as_json=args.json)
    kinds = set(args.kind or KINDS)
    for lsn, payload in contents.records():
        if args.from_lsn is not None and lsn < args.from_lsn:
            continue
        if args.to_lsn is not None and lsn > args.to_lsn:
            break
        record = decode_record(payload)
        if record.kind in kinds:
            print(_dump_line(lsn, "data", payload, record, as_json=args.json))
    if contents.report.verdict.kind != "clean":
        print(f"{PROG}: stopped: {contents.report.verdict}", file=sys.stderr)
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
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    inspect = commands.add_parser(
        "inspect",
        help="list segments and snapshots with a verdict",
        epilog=_EXIT_HELP,
        description="List segments, snapshots, record counts, LSN ranges and sizes, then one verdict line.",
    )
    inspect.add_argument("dir", help="journal directory")
    inspect.add_argument("--json", action="store_true", help="one JSON object")
    inspect.set_defaults(run=_cmd_inspect)

    verify = commands.add_parser(
        "verify",
        help="print the verdict; exit status says it",
        epilog=_EXIT_HELP,
        description="Check every record and snapshot CRC; print the verdict.",
    )
    verify.add_argument("dir", help="journal directory")
    verify.add_argument(
        "--json", action="store_true", help="one JSON object: verdict and exit status"
    )
    verify.set_defaults(run=_cmd_verify)

    dump = commands.add_parser(
        "dump",
        help="print records by kind and field, one per line",
        epilog=_EXIT_HELP + "; example: dump DIR --kind accept --kind decide --from 100",
        description=(
            "Print every valid record on disk: lsn, type, size, then its kind (a Paxos record: "
            f"{', '.join(KINDS[:-2])}; else other or undecodable) and its fields by name. "
            "--snapshot first shows the snapshot in use and every key it holds."
        ),
    )
    dump.add_argument("dir", help="journal directory")
    dump.add_argument("--from", dest="from_lsn", type=int, metavar="LSN", help="first LSN to show")
    dump.add_argument("--to", dest="to_lsn", type=int, metavar="LSN", help="last LSN to show")
    dump.add_argument(
        "--kind",
        action="append",
        choices=KINDS,
        metavar="KIND",
        help=f"show only records of this kind (repeatable): {', '.join(KINDS)}",
    )
    dump.add_argument(
        "--snapshot", action="store_true", help="first show the snapshot and its keys"
    )
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


def _package_version() -> str:
    try:
        return version("diskv-trio")
    except PackageNotFoundError:
        return "unknown"


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
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (OSError, JournalError) as exc:
        return _fail(str(exc))
