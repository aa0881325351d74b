"""Language detection, the per-instance Serena project set-up and the operator's server file (no Serena run)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bridge.host import language_packs
from instances.serena import languages as L
from instances.serena import mounts as serena_mounts
from instances.serena import project, warmup
from instances.serena.config import write_serena_home

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "languages"


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [("typescript", ["typescript"]), ("javascript", ["javascript"]), ("go", ["go"]), ("cpp", ["cpp"]),
     ("bash", ["bash"]), ("php", ["php"]), ("mixed", ["typescript", "python"])],
)
def test_each_fixture_is_detected_as_its_language(fixture: str, expected: list[str]) -> None:
    assert L.detect(FIXTURES / fixture) == expected


def test_a_stray_file_is_not_a_language_but_a_manifest_makes_one(tmp_path: Path) -> None:
    for index in range(20):
        (tmp_path / f"m{index}.py").write_text("x = 1\n")
    (tmp_path / "tool.sh").write_text("echo\n")  # 1 of 21 files: under the share
    assert L.detect(tmp_path) == ["python"]
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "go.mod").write_text("module x\n")  # a manifest one level down counts
    (tmp_path / "svc" / "main.go").write_text("package main\n")
    assert L.detect(tmp_path) == ["python", "go"]


def test_dependencies_and_hidden_dirs_are_not_the_workspace_s_code(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("x = 1\n")
    for skipped in ("node_modules/lib", ".venv/lib", ".git/hooks"):
        (tmp_path / skipped).mkdir(parents=True)
        for index in range(5):
            (tmp_path / skipped / f"f{index}.js").write_text("x\n")
    assert L.detect(tmp_path) == ["python"]


def test_a_package_json_of_python_tooling_is_no_javascript(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text("{}")
    (tmp_path / "app.py").write_text("x = 1\n")
    assert L.detect(tmp_path) == ["python"]


def test_names_are_normalized_and_unknown_ones_refused() -> None:
    assert L.normalize(["TS", "js", "c++", "C", "golang", "sh", "python"]) == [
        "typescript", "javascript", "cpp", "go", "bash", "python"]
    with pytest.raises(L.LanguageError, match="unknown language 'cobol'"):
        L.normalize(["cobol"])
    # TypeScript and JavaScript share one Serena server
    assert L.serena_ids(["typescript", "javascript", "python"]) == ["typescript", "python"]


def test_operator_server_file(tmp_path: Path) -> None:
    servers = tmp_path / "servers.toml"
    servers.write_text('rust = "/opt/ra/rust-analyzer"\nGolang = "/opt/go/bin/gopls"\n')
    assert L.load_operator_servers(servers) == {"rust": Path("/opt/ra/rust-analyzer"), "go": Path("/opt/go/bin/gopls")}
    servers.write_text('rust = "relative/ra"\n')
    with pytest.raises(L.LanguageError, match="absolute path"):
        L.load_operator_servers(servers)
    servers.write_text("rust = \n")
    with pytest.raises(L.LanguageError, match="PARADISE_SERENA_LANGUAGE_SERVERS"):
        L.load_operator_servers(servers)
    assert L.load_operator_servers(None) == {}


def fake_venv(tmp_path: Path, packs: tuple[str, ...]) -> Path:
    """A Serena venv with pyright and the named npm packs' executables (empty scripts)."""
    venv = tmp_path / "venv"
    executables = [venv / "bin" / "pyright-langserver"]
    executables += [L.packs_dir(venv) / name / L.PACKS[name].executable for name in packs]
    for path in executables:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    return venv


def test_the_home_lists_served_languages_links_packs_and_names_operator_servers(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path, ("typescript",))
    operator = tmp_path / "opt" / "rust-analyzer"
    operator.parent.mkdir()
    operator.write_text("#!/bin/sh\n")
    operator.chmod(0o755)
    ws = tmp_path / "shop"
    ws.mkdir()
    home = tmp_path / "home"
    config = write_serena_home(home, serena_venv=venv, workspace=ws, languages=["python", "typescript", "php", "rust"],
                               operator_servers={"rust": operator})
    # php has no pack here: left out of project.yml (Serena would try to download it), reported by the bridge
    yml = (home / ".serena" / "workspaces" / "shop" / "project.yml").read_text()
    assert 'language_servers: ["python", "typescript", "rust"]' in yml.splitlines()
    link = project.resource_dir(home / ".serena") / "TypeScriptLanguageServer" / "ts-lsp"
    assert link.is_symlink() and link.resolve() == (L.packs_dir(venv) / "typescript").resolve()
    line = next(x for x in config.read_text().splitlines() if x.startswith("ls_specific_settings:"))
    settings = json.loads(line.split(":", 1)[1])
    assert settings == {"python": {"ls_path": str(venv / "bin" / "pyright-langserver")},
                        "rust": {"ls_path": str(operator)}}


def test_a_workspace_with_its_own_serena_project_keeps_it(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path, ())
    ws = tmp_path / "ws"
    (ws / ".serena").mkdir(parents=True)
    (ws / ".serena" / "project.yml").write_text("language_servers: [python]\n")
    write_serena_home(tmp_path / "home", serena_venv=venv, workspace=ws, languages=["python"])
    assert not (tmp_path / "home" / ".serena" / "workspaces" / "ws").exists()


def test_chosen_languages_detects_only_without_a_list(tmp_path: Path) -> None:
    (tmp_path / "a.go").write_text("package a\n")
    assert project.chosen_languages(tmp_path, "") == ["go"]
    assert project.chosen_languages(tmp_path, "ts,python") == ["typescript", "python"]


def test_notes_name_each_language_without_a_server(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path, ("typescript",))
    notes = language_packs.language_notes(FIXTURES / "mixed", ["python", "typescript", "php"], venv, None)
    assert len(notes) == 1 and notes[0].startswith("no language server for php: its pack is not installed")
    broken = tmp_path / "servers.toml"
    broken.write_text('ruby = "/nonexistent/solargraph"\n')
    (note,) = language_packs.language_notes(FIXTURES / "mixed", ["ruby"], venv, broken)
    assert "/nonexistent/solargraph (PARADISE_SERENA_LANGUAGE_SERVERS) is not executable" in note


def test_doctor_table_says_installed_or_how_to_add(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path, ("php",))
    rows = {row["language"]: row for row in language_packs.language_table(venv, None)}
    assert rows["php"]["installed"] and rows["php"]["version"] == "intelephense@1.14.4" and rows["php"]["how"] == ""
    assert not rows["typescript"]["installed"] and "--languages typescript" in rows["typescript"]["how"]
    assert not rows["rust"]["installed"] and "PARADISE_SERENA_LANGUAGE_SERVERS" in rows["rust"]["how"]
    assert "jdtls_path" in rows["java"]["how"]  # not one server path: the setting cannot add it
    assert os.fspath(rows["python"]["server"]).endswith("pyright-langserver")


def test_on_docker_the_image_carries_every_pack(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path, ())  # nothing on the host: it does not matter for a container
    notes = language_packs.language_notes(FIXTURES / "mixed", ["python", "typescript", "php", "ruby"], venv, None,
                                          image=True)
    assert len(notes) == 1 and notes[0].startswith("no language server for ruby")


def test_on_docker_an_operator_server_counts_too(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path, ())
    server = tmp_path / "opt" / "ruby-lsp"
    server.parent.mkdir()
    server.write_text("#!/bin/sh\n")
    server.chmod(0o755)
    servers = tmp_path / "servers.toml"
    servers.write_text(f'ruby = "{server}"\n')
    assert language_packs.language_notes(FIXTURES / "mixed", ["ruby"], venv, servers, image=True) == []
    server.chmod(0o644)  # not executable: named, with the setting
    (note,) = language_packs.language_notes(FIXTURES / "mixed", ["ruby"], venv, servers, image=True)
    assert "(PARADISE_SERENA_LANGUAGE_SERVERS) is not executable" in note


def test_operator_servers_are_mounted_read_only_at_their_paths_without_hiding_the_image(tmp_path: Path) -> None:
    own_dir = tmp_path / "opt" / "rust-analyzer" / "bin"
    own_dir.mkdir(parents=True)
    (own_dir / "rust-analyzer").write_text("#!/bin/sh\n")
    system = Path("/usr/bin/env")  # a server among the image's own files: that file alone
    servers = tmp_path / "servers.toml"
    servers.write_text(f'rust = "{own_dir / "rust-analyzer"}"\nruby = "{system}"\n')
    mounts = serena_mounts.operator_mounts({"SERENA_LANGUAGE_SERVERS": str(servers)})
    assert mounts == {str(p): {"bind": str(p), "mode": "ro"} for p in (servers, own_dir, system)}
    assert serena_mounts.operator_mounts({"SERENA_LANGUAGE_SERVERS": ""}) == {}
    servers.write_text("rust = 1\n")  # refused by the instance itself, which says why
    assert serena_mounts.operator_mounts({"SERENA_LANGUAGE_SERVERS": str(servers)}) == {}


def test_javascript_without_a_config_gets_a_project_outside_the_workspace(tmp_path: Path) -> None:
    ws, home = tmp_path / "ws", tmp_path / "home"
    (ws / "lib").mkdir(parents=True)
    (ws / "lib" / "calc.js").write_text("module.exports = {};\n")
    (ws / "node_modules" / "dep").mkdir(parents=True)
    (ws / "node_modules" / "dep" / "jsconfig.json").write_text("{}")  # a dependency's config is not the project's
    (implicit,) = warmup.projects_to_open(home, ws)
    assert implicit.is_relative_to(home) and sorted(p.name for p in ws.iterdir()) == ["lib", "node_modules"]
    config = json.loads(implicit.read_text())
    assert f"{ws}/**/*.js" in config["include"] and f"{ws}/**/node_modules" in config["exclude"]
    assert config["compilerOptions"]["allowJs"] and config["compilerOptions"]["noEmit"]
    request = warmup.open_request([implicit])
    assert request["arguments"][0] == "openExternalProject"
    assert request["arguments"][1]["rootFiles"] == [{"fileName": str(implicit)}]


def test_a_workspace_s_own_configs_are_loaded_and_the_implicit_one_goes(tmp_path: Path) -> None:
    ws, home = tmp_path / "ws", tmp_path / "home"
    warmup.projects_to_open(home, ws.parent)  # an earlier start without a config wrote one
    (ws / "web").mkdir(parents=True)
    (ws / "web" / "tsconfig.json").write_text("{}")
    (ws / "jsconfig.json").write_text("{}")
    assert warmup.projects_to_open(home, ws) == [ws / "jsconfig.json", ws / "web" / "tsconfig.json"]
    assert not warmup.implicit_path(home).exists()
    for index in range(warmup.MAX_PROJECTS):
        (ws / f"pkg{index}").mkdir()
        (ws / f"pkg{index}" / "tsconfig.json").write_text("{}")
    assert warmup.projects_to_open(home, ws) == []  # too many to load at start: tsserver loads them on demand


def test_a_go_mod_with_a_toolchain_line_is_named_as_beyond_debian_s_gopls(tmp_path: Path) -> None:
    """Measured: gopls 0.5.0 on Go 1.19 answers find_symbol but fails find_referencing_symbols ("no package
    metadata") on a module whose go.mod has a toolchain directive (Go 1.21+); a plain ``go 1.22`` line works."""
    venv = fake_venv(tmp_path, ())
    ws = tmp_path / "ws"
    (ws / "svc").mkdir(parents=True)
    (ws / "svc" / "go.mod").write_text("module example.com/svc\n\ngo 1.22\n")
    assert language_packs.language_notes(ws, ["go"], venv, None, image=True) == []
    (ws / "svc" / "go.mod").write_text("module example.com/svc\n\ngo 1.22\n\ntoolchain go1.22.3\n")
    (note,) = language_packs.language_notes(ws, ["go"], venv, None, image=True)
    assert note.startswith("go: svc/go.mod has a toolchain directive") and "PARADISE_SERENA_LANGUAGE_SERVERS" in note
    gopls = tmp_path / "opt" / "gopls"
    gopls.parent.mkdir()
    gopls.write_text("#!/bin/sh\n")
    gopls.chmod(0o755)
    (tmp_path / "servers.toml").write_text(f'go = "{gopls}"\n')  # the operator's newer gopls: no note
    assert language_packs.language_notes(ws, ["go"], venv, tmp_path / "servers.toml", image=True) == []


def test_java_cannot_be_one_server_path_and_says_so(tmp_path: Path) -> None:
    """Serena 2.1.0 ignores ls_path for Java (it wants jdtls_path, lombok_path, a JDK 21) and would download its
    own: an operator's Java path is reported, left out of project.yml, never silently used."""
    venv = fake_venv(tmp_path, ())
    jdtls = tmp_path / "opt" / "jdtls" / "bin" / "jdtls"
    jdtls.parent.mkdir(parents=True)
    jdtls.write_text("#!/bin/sh\n")
    jdtls.chmod(0o755)
    servers = tmp_path / "servers.toml"
    servers.write_text(f'java = "{jdtls}"\n')
    for image in (False, True):
        (note,) = language_packs.language_notes(FIXTURES / "mixed", ["java"], venv, servers, image=image)
        assert note.startswith("no language server for java: Serena's Java server (Eclipse JDT LS) takes jdtls_path")
    home = tmp_path / "home"
    write_serena_home(home, serena_venv=venv, workspace=FIXTURES / "mixed", languages=["java"],
                      operator_servers=L.load_operator_servers(servers))
    yml = (home / ".serena" / "workspaces" / "mixed" / "project.yml").read_text()
    assert "language_servers: []" in yml.splitlines()
