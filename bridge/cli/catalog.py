"""``devops-paradise catalog add|list|rm``: MCP servers from the registries, one command each.

``catalog add git pypi:mcp-server-git==2026.10.19 --arg=--repository --arg={workspace}`` installs the package
once, pinned, under ``DATA_DIR/packages`` (with the installer's progress), and writes the service into
``DATA_DIR/catalog.toml``, which the running bridge of that data dir follows (bridge/catalog_watch.py): the
next ``client add --service git`` gets its own instance, no restart. Like ``roots``, this works on the bridge's
machine as its user (it writes the bridge's data dir). ``rm`` asks the running bridge first whether a client
still uses it and refuses then, unless ``--force``: the bridge then stops those instances (their routes answer
404), and ``rm`` removes the install once they are gone.

For the Docker runtime (``PARADISE_RUNTIME=docker|swarm``, or ``--image``) ``add`` builds the package's image
instead (images/package/Dockerfile, with the build's progress): the container needs no registry at run time.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bridge.catalog.packages import Package, PackageError, install, installed_program, packages_dir, remove_tree
from bridge.catalog.services import DATA_CATALOG, CatalogError, ServiceSpec, load_catalog
from bridge.cli.common import CliError, call, data_dir, emit, say, table

SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
BUILT_IN = ("serena", "quality")
RETIRE_WAIT = 60.0  # seconds `rm --force` waits for the bridge to stop the instances before removing the install


def catalog_file() -> Path:
    return data_dir() / DATA_CATALOG


def read_entries(path: Path) -> dict[str, dict[str, Any]]:
    try:
        return dict(tomllib.loads(path.read_text()).get("services", {}))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else str(value)


def write_entries(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    """The file, whole, replaced atomically (the bridge may read it at any moment)."""
    lines = ["# Written by `devops-paradise catalog add|rm`; read by the bridge on every registration.", ""]
    for name, fields in entries.items():
        lines += [f"[services.{name}]", *(f"{key} = {_toml_value(val)}" for key, val in fields.items()), ""]
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, path)


@contextlib.contextmanager
def catalog_lock(path: Path) -> Iterator[None]:
    """One read-modify-write of the catalog file at a time (two adds at once would lose one entry)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path.with_name(f".{path.name}.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def entry_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {"package": args.package, "transport": args.transport}
    if args.arg:
        fields["args"] = args.arg
    env = dict(item.split("=", 1) for item in args.env or [] if "=" in item)
    if len(env) != len(args.env or []):
        raise CliError("--env takes NAME=VALUE")
    if env:
        fields["env"] = env
    if args.memory:
        fields["memory"] = args.memory
    return fields


def where_it_runs(args: argparse.Namespace) -> tuple[bool, bool]:
    """(install on this host, build the image): the host for the process runtime, the image for an engine's,
    both for ``auto`` with ``--image``. PARADISE_RUNTIME as the bridge of this shell reads it."""
    runtime = os.environ.get("PARADISE_RUNTIME", "auto").strip().lower()
    on_engine = runtime in ("docker", "swarm")
    return not on_engine, bool(args.image) if args.image is not None else on_engine


def build_image(package: Package, progress: Any) -> str:
    from bridge.host.images import ImageBuildError, build_images

    try:
        build_images([package.ref], progress=progress)
    except ImageBuildError as exc:
        raise CliError(str(exc)) from None
    return package.image_tag


def cmd_catalog_add(args: argparse.Namespace) -> None:
    if not SERVICE_NAME.fullmatch(args.name) or args.name in BUILT_IN:
        raise CliError(f"{args.name!r} cannot be a service name: use 1-40 of a-z 0-9 '-' '_', not {BUILT_IN}")
    fields = entry_fields(args)
    try:
        spec = ServiceSpec(name=args.name, **fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "entry"
        raise CliError(f"service {args.name}: {where}: {first['msg'].removeprefix('Value error, ')}") from None
    package = spec.registry_package
    assert package is not None
    began = time.monotonic()
    progress = (lambda line: None) if args.json else say
    on_host, image = where_it_runs(args)
    argv, fresh = None, False
    if on_host:
        try:
            argv, fresh = install(package, packages_dir(data_dir()), progress=progress)
        except PackageError as exc:
            raise CliError(str(exc)) from None
    tag = build_image(package, progress) if image else None
    path = catalog_file()
    with catalog_lock(path):
        entries = read_entries(path)
        entries[args.name] = fields
        write_entries(path, entries)
    seconds = round(time.monotonic() - began, 1)
    data = {"service": args.name, "package": package.ref, "installed_now": fresh, "seconds": seconds,
            "program": argv, "image": tag, "catalog": str(path)}
    hint = "" if image else f"\non the Docker runtime, build its image: devops-paradise images build {package.ref}"
    emit(args, data, f"added service {args.name} ({package.ref}, {spec.transport}) to {path} in {seconds}s"
         + (f"; image {tag}" if tag else "") + hint
         + f"\nuse it: devops-paradise client add CLIENT --workspace DIR --service {args.name}")


def _source(name: str, mine: dict[str, Any], extra: Path | None) -> str:
    if extra is not None and name in read_entries(extra):
        return "PARADISE_CATALOG"
    return DATA_CATALOG if name in mine else "built-in"


def image_state() -> Any:
    """A function telling whether a package's image is built ("yes"/"no"), or "?" for all without an engine."""
    try:
        import docker

        images = docker.from_env()
        images.ping()
    except Exception:
        return lambda package: "?"

    def state(package: Package) -> str:
        try:
            images.images.get(package.image_tag)
        except docker.errors.ImageNotFound:
            return "no"
        return "yes"

    return state


def cmd_catalog_list(args: argparse.Namespace) -> None:
    extra = Path(os.environ["PARADISE_CATALOG"]).expanduser() if os.environ.get("PARADISE_CATALOG") else None
    try:
        catalog = load_catalog(extra, data_dir())
    except CatalogError as exc:
        raise CliError(str(exc)) from None
    mine = read_entries(catalog_file())
    image = image_state() if any(spec.package for spec in catalog.values()) else None
    rows = []
    for name, spec in catalog.items():
        package = spec.registry_package
        installed = "-" if package is None else (
            "yes" if installed_program(package, packages_dir(data_dir())) else "no")
        rows.append({"service": name, "source": _source(name, mine, extra), "transport": spec.transport,
                     "runs": package.ref if package else " ".join((spec.command or [spec.image or "?"])[:1]),
                     "installed": installed, "image": image(package) if image and package else "-"})
    emit(args, rows, table([list(r.values()) for r in rows],
                           ["SERVICE", "SOURCE", "TRANSPORT", "RUNS", "INSTALLED", "IMAGE"]))


def clients_using(name: str) -> list[str] | None:
    """Clients of the running bridge with an instance of ``name``; None when no bridge answers."""
    try:
        clients = call("GET", "/clients")
    except CliError as exc:
        if "cannot reach the bridge" in str(exc) or "no admin token" in str(exc):
            return None
        raise
    return [c["client_id"] for c in clients if any(i["service"] == name for i in c["instances"])]


def wait_retired(name: str, timeout: float = RETIRE_WAIT) -> list[str]:
    """Clients still running ``name`` once the bridge retired them (it looks at its catalog every second), or
    when ``timeout`` ran out; [] when none is left."""
    deadline = time.monotonic() + timeout
    while (users := clients_using(name) or []) and time.monotonic() < deadline:
        time.sleep(0.5)
    return users


def remove_install(package: Package) -> list[str]:
    """The host install and the image of a package no entry names any more; what was removed."""
    removed = []
    directory = package.directory(packages_dir(data_dir()))
    if directory.exists():
        remove_tree(directory)
        removed.append(str(directory))
    with contextlib.suppress(Exception):  # no engine, no SDK, or the image is in use: the image stays
        import docker

        docker.from_env().images.remove(package.image_tag)
        removed.append(package.image_tag)
    return removed


def cmd_catalog_rm(args: argparse.Namespace) -> None:
    path = catalog_file()
    entries = read_entries(path)
    if args.name not in entries:
        raise CliError(f"{args.name} is not in {path} (only services added with `catalog add` are removed here)",
                       code=4)
    users = clients_using(args.name)
    if users and not args.force:
        raise CliError(f"clients {', '.join(users)} still run {args.name}; remove them first "
                       "(devops-paradise client rm NAME), or add --force: the running bridge then stops and removes "
                       "their instances of it (their other services stay)")
    with catalog_lock(path):
        entries = read_entries(path)
        fields = entries.pop(args.name, {})
        write_entries(path, entries)
    left = wait_retired(args.name) if users else []
    try:
        package = Package.parse(fields.get("package", ""))
    except PackageError:
        package = None
    removed: list[str] = []
    if package and not left and not any(e.get("package") == package.ref for e in entries.values()):
        removed = remove_install(package)
    text = f"removed service {args.name} from {path}" + (f" and {', '.join(removed)}" if removed else "")
    if users:
        text += f"; the bridge stopped the instances of {', '.join(u for u in users if u not in left) or 'none'}"
    if left:
        text += f"; still running for {', '.join(left)} after {RETIRE_WAIT:.0f}s: the install stays (rm it again)"
    if users is None:
        text += " (no bridge answered: a bridge started later stops its clients' instances of it)"
    emit(args, {"removed": args.name, "retired": [u for u in users or [] if u not in left], "still_running": left,
                "install_removed": removed}, text)


def add_catalog_parsers(sub: Any) -> None:
    catalog = sub.add_parser("catalog", help="MCP servers from the registries (npm, PyPI)").add_subparsers(
        dest="catalog_command", required=True
    )
    add = catalog.add_parser("add", help="install a pinned package once and make it a service")
    add.add_argument("name", help="service name (a-z 0-9 - _), as in `client add --service NAME`")
    add.add_argument("package", help="npm:NAME@VERSION or pypi:NAME==VERSION (an exact version)")
    add.add_argument("--arg", action="append", help="argument after the program, repeatable (use --arg=--flag); "
                     "placeholders {workspace} {client} {port} {host} {instance_dir}")
    add.add_argument("--transport", default="stdio", choices=["stdio", "streamable-http"],
                     help="stdio (default): served through the adapter; streamable-http: the package serves HTTP "
                     "itself on {port}")
    add.add_argument("--env", action="append", metavar="NAME=VALUE", help="environment of the server, repeatable")
    add.add_argument("--memory", help="memory limit (e.g. 512m)")
    add.add_argument("--image", action=argparse.BooleanOptionalAction, default=None,
                     help="build the package's Docker image (default: when PARADISE_RUNTIME is docker or swarm)")
    add.set_defaults(func=cmd_catalog_add)
    catalog.add_parser("list", help="every service and where it comes from").set_defaults(func=cmd_catalog_list)
    rm = catalog.add_parser("rm", help="remove a service catalog add made, and its install (a running bridge "
                            "follows at once)")
    rm.add_argument("name")
    rm.add_argument("--force", action="store_true", help="also when clients run it: the running bridge stops and "
                    "removes their instances of it, and answers 404 for it")
    rm.set_defaults(func=cmd_catalog_rm)
