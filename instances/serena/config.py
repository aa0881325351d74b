"""Configuration of one Serena instance: its private $HOME, its environment and its command line.

The same functions serve the process runtime (``python -m instances.serena`` on the host) and the
Docker image (the same entrypoint inside the container), so both run Serena identically:

* ``write_serena_home`` renders ``<home>/.serena/serena_config.yml`` from the shipped template, with the
  language servers installed ahead of time (pyright, and the packs of instances/serena/languages.py: no
  run-time downloads), one project.yml listing every language of the workspace, no GUI,
  no browser, the dashboard off unless asked, and project data kept out of the client's workspace.
* ``serena_environment`` gives the variables the Serena process needs (HOME, SERENA_HOME, no usage ping).
* ``serena_command`` is Serena's own argv; ``guarded_serena_command`` runs the same command line in the
  same process through ``guarded.py``, which enforces the instance key (``instances.keyguard``).

Standard library only: this module is imported by the bridge, which has no YAML dependency; every
value is inserted as a JSON scalar, which is valid YAML.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from importlib import resources
from pathlib import Path

from instances.serena.project import set_up_languages

TEMPLATE_NAME = "serena_config.template.yml"
GUARDED_LAUNCHER = Path(__file__).resolve().with_name("guarded.py")
SERENA_DIR_NAME = ".serena"
CONFIG_FILE_NAME = "serena_config.yml"
WORKSPACE_DATA_DIR_NAME = "workspaces"
SERENA_CONTEXT = "ide"
AGENT_INTERFACE = "tools"
LOG_LEVEL_INFO = 20

_PLACEHOLDER_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_AUTH_SECRET_RE = re.compile(r"^auth_secret:\s*[\"']?([0-9A-Za-z-]{8,})[\"']?\s*$", re.MULTILINE)


def venv_executable(venv: Path, name: str) -> Path:
    """Path of a console script or interpreter inside a virtualenv (POSIX ``bin``, Windows ``Scripts``)."""
    if os.name == "nt":
        return Path(venv) / "Scripts" / f"{name}.exe"
    return Path(venv) / "bin" / name


def serena_executable(serena_venv: Path) -> Path:
    return venv_executable(serena_venv, "serena")


def pyright_langserver_path(serena_venv: Path) -> Path:
    return venv_executable(serena_venv, "pyright-langserver")


def serena_home_dir(home: Path) -> Path:
    """The directory Serena uses as SERENA_HOME for an instance whose $HOME is ``home``."""
    return Path(home) / SERENA_DIR_NAME


def serena_command(
    serena_venv: Path, host: str, port: int, workspace: Path | str, *, dashboard: bool = False
) -> list[str]:
    """The argv that starts Serena's MCP server (streamable HTTP at ``http://host:port/mcp``)."""
    return [
        str(serena_executable(serena_venv)),
        "start-mcp-server",
        "--transport",
        "streamable-http",
        "--host",
        host,
        "--port",
        str(int(port)),
        "--project",
        os.fspath(workspace),
        "--context",
        SERENA_CONTEXT,
        "--agent-interface",
        AGENT_INTERFACE,
        "--enable-web-dashboard",
        str(bool(dashboard)),
        "--open-web-dashboard",
        "False",
        "--enable-gui-log-window",
        "False",
    ]


def guarded_serena_command(
    serena_venv: Path, host: str, port: int, workspace: Path | str, *, dashboard: bool = False
) -> list[str]:
    """``serena_command`` run by the venv's Python through ``guarded.py``: the same Serena server, which then
    refuses requests without the instance key. The key itself stays in the environment, never in argv."""
    serena_argv = serena_command(serena_venv, host, port, workspace, dashboard=dashboard)
    return [str(venv_executable(serena_venv, "python")), str(GUARDED_LAUNCHER), *serena_argv[1:]]


def serena_environment(home: Path) -> dict[str, str]:
    """Environment overrides for the Serena process (merged over the inherited environment)."""
    home = Path(home).absolute()
    return {
        "HOME": str(home),
        "SERENA_HOME": str(serena_home_dir(home)),
        # Serena pings oraios-software.de at start-up unless this is "false"; there is no config key.
        "SERENA_USAGE_REPORTING": "false",
        # pyright's wrapper must never look up the latest version on PyPI
        "PYRIGHT_PYTHON_IGNORE_WARNINGS": "1",
        "PYTHONUNBUFFERED": "1",
    }


def load_template() -> str:
    return resources.files(__package__).joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")


def render_serena_config(
    *,
    python_ls_path: Path,
    project_data_dir: Path,
    ls_specific_settings: dict | None = None,
    auth_secret: str,
    dashboard: bool = False,
    log_level: int = LOG_LEVEL_INFO,
) -> str:
    """Render the configuration text; ``project_data_dir`` receives one ``<workspace name>`` folder."""
    data_dir = str(project_data_dir)
    if "$" in data_dir:
        raise ValueError(f"the instance home must not contain '$' (Serena treats it as a placeholder): {data_dir}")
    values = {
        "web_dashboard": dashboard,
        "log_level": int(log_level),
        "ls_specific_settings": ls_specific_settings or {"python": {"ls_path": str(python_ls_path)}},
        "project_serena_folder_location": f"{data_dir}/$projectFolderName",
        "auth_secret": auth_secret,
    }
    return _fill_placeholders(load_template(), {key: json.dumps(val) for key, val in values.items()})


def _fill_placeholders(template: str, values: dict[str, str]) -> str:
    """Replace every ``${name}`` (only that form; a bare ``$word`` is left alone) and refuse unknown names."""
    missing = sorted(set(_PLACEHOLDER_RE.findall(template)) - values.keys())
    if missing:
        raise KeyError(f"no value for template placeholder(s): {', '.join(missing)}")
    return _PLACEHOLDER_RE.sub(lambda match: values[match.group(1)], template)


def write_serena_home(
    home: Path,
    *,
    serena_venv: Path,
    log_dir: Path | None = None,
    dashboard: bool = False,
    workspace: Path | None = None,
    languages: list[str] | None = None,
    operator_servers: dict[str, Path] | None = None,
) -> Path:
    """Create ``home/.serena/serena_config.yml`` for one instance and return its path.

    Safe to call on every start: the file is rewritten (our settings win over anything Serena saved),
    but the instance's ``auth_secret`` is kept. When ``log_dir`` is given, ``home/.serena/logs`` becomes
    a symlink to it, because Serena has no setting for its log location. With ``workspace``, the project's
    ``languages`` get their servers and a project.yml listing them (instances/serena/project.py).
    """
    home = Path(home).absolute()
    serena_home = serena_home_dir(home)
    project_data_dir = serena_home / WORKSPACE_DATA_DIR_NAME
    project_data_dir.mkdir(parents=True, exist_ok=True)
    if log_dir is not None:
        _link_log_dir(serena_home / "logs", Path(log_dir).absolute())
    else:
        (serena_home / "logs").mkdir(exist_ok=True)

    config_path = serena_home / CONFIG_FILE_NAME
    ls_settings = None
    if workspace is not None:  # the languages' servers and the project.yml listing them all
        ls_settings = set_up_languages(
            serena_home, project_data_dir, Path(workspace).absolute(), Path(serena_venv).absolute(),
            languages=languages or [], operator=operator_servers or {},
        )
    text = render_serena_config(
        python_ls_path=pyright_langserver_path(Path(serena_venv).absolute()),
        project_data_dir=project_data_dir,
        ls_specific_settings=ls_settings,
        auth_secret=_existing_auth_secret(config_path) or str(uuid.uuid4()),
        dashboard=dashboard,
    )
    tmp_path = config_path.with_name(config_path.name + ".tmp")
    tmp_path.write_text(text, encoding="utf-8")
    os.chmod(tmp_path, 0o600)  # Serena insists on 0600 (the file holds auth_secret)
    os.replace(tmp_path, config_path)
    return config_path


def _existing_auth_secret(config_path: Path) -> str | None:
    try:
        match = _AUTH_SECRET_RE.search(config_path.read_text(encoding="utf-8"))
    except OSError:
        return None
    return match.group(1) if match else None


def _link_log_dir(link: Path, target: Path) -> None:
    """Make ``link`` a symlink to ``target``, moving logs of earlier runs over if it was a directory."""
    target.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        if link.resolve() == target.resolve():
            return
        link.unlink()
    elif link.is_dir():
        _merge_move(link, target)
    link.symlink_to(target, target_is_directory=True)


def _merge_move(source: Path, target: Path) -> None:
    """Move the contents of directory ``source`` into ``target`` (merging sub-directories), then drop it."""
    for entry in source.iterdir():
        destination = target / entry.name
        if entry.is_dir() and not entry.is_symlink() and destination.is_dir():
            _merge_move(entry, destination)
        elif not destination.exists():
            shutil.move(str(entry), str(destination))
    shutil.rmtree(source)
