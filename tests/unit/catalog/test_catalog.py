from __future__ import annotations

import json
import re

import pytest

from bridge.catalog import CatalogError, ServiceSpec, load_catalog
from bridge.catalog.instance_spec import instance_spec
from bridge.catalog.packages import MANIFEST, Package, PackageError, installed_program, packages_dir
from bridge.catalog.services import DATA_CATALOG, describe_service, refresh_catalog
from bridge.settings import load_settings

VALUES = {
    "port": "8201",
    "host": "127.0.0.1",
    "workspace": "/ws",
    "client": "alice",
    "data_dir": "/d",
    "profile": "quick",
    "instance_dir": "/d/i",
    "python": "/py",
    "serena_venv": "/venv",
}


def test_builtins_are_serena_and_quality() -> None:
    catalog = load_catalog()
    assert {"serena", "quality"} <= set(catalog)
    quality = catalog["quality"].render_command(VALUES)
    assert quality[:3] == ["/py", "-m", "instances.quality"]
    assert "--port" in quality and quality[quality.index("--port") + 1] == "8201"
    assert catalog["serena"].image and catalog["serena"].path == "/mcp"
    assert catalog["serena"].memory_bytes == 2 * 1024**3


def test_user_file_overrides_field_by_field_and_adds(tmp_path) -> None:
    extra = tmp_path / "c.toml"
    extra.write_text(
        '[services.quality]\nmemory = "3g"\n\n'
        '[services.echo]\ncommand = ["{python}", "-m", "echo", "--port", "{port}", "--ws", "{workspace}"]\n'
        'env = { LOG_LEVEL = "info", WHO = "{client}" }\npath = "/rpc/"\n'
    )
    catalog = load_catalog(extra)
    assert catalog["quality"].memory == "3g"
    assert catalog["quality"].command is not None  # kept from the built-in
    echo = catalog["echo"]
    assert echo.render_command(VALUES) == ["/py", "-m", "echo", "--port", "8201", "--ws", "/ws"]
    assert echo.render_env(VALUES) == {"LOG_LEVEL": "info", "WHO": "alice"}
    assert echo.path == "/rpc"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[services.x\n", "not valid TOML"),
        ('[services.x]\ncommand = ["run", "{nope}"]\n', "unknown placeholder {nope}"),
        ('[services.x]\npath = "mcp"\n', "path must start with '/'"),
        ('[services.x]\nmemory = "huge"\n', "not a memory size"),
        ("[services.x]\ncontainer_port = 0\n", "container_port"),
        ("services = 3\n", "expected [services.NAME] tables"),
    ],
)
def test_bad_catalogs_name_the_problem(tmp_path, text, words) -> None:
    extra = tmp_path / "c.toml"
    extra.write_text(text)
    with pytest.raises(CatalogError) as caught:
        load_catalog(extra)
    assert words in str(caught.value)


def test_missing_catalog_file(tmp_path) -> None:
    with pytest.raises(CatalogError, match="No such file"):
        load_catalog(tmp_path / "absent.toml")


# ---- registry packages (bridge/catalog/packages.py) and stdio services ---------------------------------------


@pytest.mark.parametrize(
    ("ref", "registry", "name", "version"),
    [
        ("npm:@modelcontextprotocol/server-everything@2026.8.31", "npm", "@modelcontextprotocol/server-everything",
         "2026.8.31"),
        ("npm:left-pad@1.3.0", "npm", "left-pad", "1.3.0"),
        ("pypi:mcp-server-git==2026.10.19", "pypi", "mcp-server-git", "2026.10.19"),
    ],
)
def test_pinned_packages_parse(ref, registry, name, version) -> None:
    package = Package.parse(ref)
    assert (package.registry, package.name, package.version) == (registry, name, version)
    assert package.ref == ref and "/" not in package.slug and package.slug.endswith(version)


@pytest.mark.parametrize(
    "ref",
    ["npm:left-pad", "npm:left-pad@^1.3.0", "npm:left-pad@~1.3", "npm:left-pad@1.x", "npm:left-pad@latest x",
     "npm:left-pad@*", "pypi:mcp-server-git>=1.0", "pypi:mcp-server-git", "pypi:x==1.0 ; rm -rf /",
     "docker:foo@1", "npm:../../etc@1.0.0"],
)
def test_anything_but_an_exact_version_is_refused(ref) -> None:
    with pytest.raises(PackageError, match="not a pinned registry package"):
        Package.parse(ref)


def test_a_package_entry_runs_its_installed_program_behind_the_adapter(tmp_path) -> None:
    settings = load_settings(data_dir=tmp_path)
    spec = ServiceSpec(name="git", package="pypi:mcp-server-git==2026.10.19", transport="stdio",
                       args=["--repository", "{workspace}"])
    assert spec.instance_key and spec.http_transport == "streamable-http"
    with pytest.raises(CatalogError, match="is not installed; run `devops-paradise catalog add git"):
        instance_spec(settings, spec, "alice", 8201, "/ws", "quick")
    package = spec.registry_package
    target = package.directory(packages_dir(tmp_path))
    target.mkdir(parents=True)
    (target / MANIFEST).write_text(json.dumps({"package": package.ref, "argv": [f"{target}/bin/mcp-server-git"]}))
    command = instance_spec(settings, spec, "alice", 8201, "/ws", "quick").command
    adapter, program = command[: command.index("--")], command[command.index("--") + 1:]
    assert adapter[1:3] == ["-m", "instances.stdio_adapter"]
    assert adapter[adapter.index("--port") + 1] == "8201" and adapter[adapter.index("--cwd") + 1] == "/ws"
    assert adapter[adapter.index("--package") + 1] == str(target)  # named: the sandbox mounts it whole
    assert program == [f"{target}/bin/mcp-server-git", "--repository", "/ws"]


def test_a_manifest_of_another_version_is_not_an_install(tmp_path) -> None:
    package = Package.parse("npm:left-pad@1.3.0")
    target = package.directory(packages_dir(tmp_path))
    target.mkdir(parents=True)
    (target / MANIFEST).write_text(json.dumps({"package": "npm:left-pad@1.2.0", "argv": ["/usr/bin/node", "x"]}))
    assert installed_program(package, packages_dir(tmp_path)) is None


def test_a_stdio_command_of_ones_own_is_wrapped_too() -> None:
    spec = ServiceSpec(name="mine", command=["/opt/srv/bin/server", "--root", "{workspace}"], transport="stdio")
    settings = load_settings(data_dir="/d")
    command = instance_spec(settings, spec, "alice", 8202, "/ws", "quick").command
    assert command[1:3] == ["-m", "instances.stdio_adapter"] and "--package" not in command
    assert command[command.index("--") + 1:] == ["/opt/srv/bin/server", "--root", "/ws"]
    assert describe_service({"mine": spec}, "mine") == ("/mcp", "streamable-http")


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"package": "npm:x@1.0.0", "command": ["/bin/x"]}, "not both"),
        ({"package": "npm:x@1.0.0", "transport": "sse"}, "runs over stdio"),
        ({"package": "npm:x@1.0.0", "args": ["{secret}"]}, "unknown placeholder {secret}"),
        ({"package": "npm:x@latest"}, "exact version"),
    ],
)
def test_bad_package_entries_name_the_problem(fields, words) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        ServiceSpec(name="x", **fields)


def test_the_data_dir_catalog_is_layered_and_reread(tmp_path) -> None:
    (tmp_path / DATA_CATALOG).write_text('[services.git]\npackage = "pypi:mcp-server-git==2026.10.19"\n'
                                         'transport = "stdio"\n')
    user = tmp_path / "user.toml"
    user.write_text('[services.git]\nmemory = "512m"\n')
    catalog = load_catalog(user, tmp_path)
    assert catalog["git"].package == "pypi:mcp-server-git==2026.10.19" and catalog["git"].memory == "512m"
    held = catalog
    (tmp_path / DATA_CATALOG).write_text('[services.files]\npackage = "npm:@modelcontextprotocol/server-filesystem'
                                         '@2026.8.31"\ntransport = "stdio"\nargs = ["{workspace}"]\n')
    refresh_catalog(held, None, tmp_path)
    assert "files" in held and "git" in held  # added at once; one in use is never dropped under the bridge
    (tmp_path / DATA_CATALOG).write_text("not toml [")
    refresh_catalog(held, None, tmp_path)  # a broken file leaves the catalog in use alone
    assert {"files", "git", "serena"} <= set(held)


def test_two_installs_of_one_package_take_turns(tmp_path, monkeypatch) -> None:
    """The second install waits for the first and finds the package installed (no second download)."""
    import threading

    from bridge.catalog import packages

    package = Package.parse("npm:left-pad@1.3.0")
    runs: list[str] = []
    gate = threading.Event()

    def fake_npm(pkg, target, progress):
        runs.append(pkg.ref)
        gate.wait(5)
        target.mkdir()
        return ["/usr/bin/node", str(target / "index.js")]

    monkeypatch.setattr(packages, "_install_npm", fake_npm)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(packages.install(package, tmp_path, lambda _: None)[1]))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(10)
    assert runs == [package.ref] and sorted(results) == [False, True]
    assert installed_program(package, tmp_path) == ["/usr/bin/node", str(package.directory(tmp_path) / "index.js")]


def test_on_docker_a_package_runs_its_image_with_the_args_filled_for_the_container(tmp_path) -> None:
    settings = load_settings(data_dir=tmp_path)
    spec = ServiceSpec(name="git", package="pypi:mcp-server-git==2026.10.19+local.1",
                       args=["--repository", "{workspace}", "--state", "{instance_dir}"])
    # nothing installed on this host, and none needed: the image holds the install
    made = instance_spec(settings, spec, "alice", 8201, "/home/alice/ws", "quick", on_host=False)
    assert made.command is None
    assert made.image == "devops-paradise/package:pypi-mcp-server-git-2026.10.19_local.1"
    assert json.loads(made.env["PARADISE_PACKAGE_ARGS"]) == ["--repository", "/workspace", "--state", "/state"]


def test_the_adapter_in_an_image_runs_the_one_installed_package(tmp_path) -> None:
    from instances.stdio_adapter import installed_program as image_program

    with pytest.raises(ValueError, match="expected one installed package"):
        image_program(tmp_path, "[]")
    (tmp_path / "pypi-x-1.0").mkdir()
    (tmp_path / "pypi-x-1.0" / MANIFEST).write_text(json.dumps({"argv": ["/opt/packages/pypi-x-1.0/bin/x"]}))
    assert image_program(tmp_path, '["--root", "/workspace"]') == ["/opt/packages/pypi-x-1.0/bin/x", "--root",
                                                                   "/workspace"]
    with pytest.raises(ValueError, match="not a list of strings"):
        image_program(tmp_path, '{"--root": 1}')


def test_the_package_root_of_a_named_program_is_named_for_the_sandbox(tmp_path, monkeypatch) -> None:
    from bridge.catalog.program_roots import package_roots

    srv = tmp_path / "srv"
    (srv / "node_modules" / "tool" / "dist").mkdir(parents=True)
    (srv / "package.json").write_text("{}")
    (srv / "node_modules" / "tool" / "package.json").write_text("{}")
    (srv / "node_modules" / "tool" / "dist" / "cli.mjs").write_text("")
    (srv / "node_modules" / ".bin").mkdir()
    (srv / "node_modules" / ".bin" / "tool").symlink_to("../tool/dist/cli.mjs")
    named = ["/usr/bin/env", str(srv / "node_modules" / ".bin" / "tool"), str(srv), "--flag"]
    workspace, data_dir = tmp_path / "ws", tmp_path / "data"
    assert package_roots(named, workspace, data_dir) == [str(srv), str(srv / "node_modules" / "tool")]
    # never a root that holds the workspace or the data dir, nor the home directory
    assert package_roots(named, srv / "project", data_dir) == [str(srv / "node_modules" / "tool")]
    assert package_roots(named, workspace, srv / "data") == [str(srv / "node_modules" / "tool")]
    monkeypatch.setenv("HOME", str(srv))
    assert package_roots(named, workspace, data_dir) == [str(srv / "node_modules" / "tool")]
