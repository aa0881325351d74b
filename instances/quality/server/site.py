"""What every capability's tool registration (tools_*.py) shares: the server, the workspace, the profile
lookup, the `invoke` envelope (envelope.py) and the parameter types that go into each tool's input schema.
Split out of server.py so that each capability registers its tools in a short function of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from ..core.datadir import where_files_go
from ..core.profiles import Profile, pick_profile
from ..core.progress import Progress
from ..core.workspace import Workspace

ToolResult = Annotated[CallToolResult, dict[str, Any]]
Invoke = Callable[..., Awaitable[CallToolResult]]
WorkspaceTool = Callable[..., Awaitable[dict[str, Any]]]
"""A tool's body: `body(ws, profile, *, progress, **arguments)` -> its result."""

# Parameters most tools take, with the descriptions that go into each tool's input schema. `detail` is a
# plain string on purpose: sizing.py turns a wrong value into a structured bad_argument error.
ProfileName = Annotated[
    str | None, Field(description="Profile to run with (list_profiles names them); default: the instance's.")
]
Detail = Annotated[
    str,
    Field(
        description="'summary' keeps the reply under 40 KB; 'full' returns every item (up to ~1 MB) of the kept run "
        "(`run_id`, default this tool's last run) without running again; a tool's first call runs."
    ),
]
Page = Annotated[
    int,
    Field(
        description="Which page of the lists a reply shortened (see `more`); a page after the first is read "
        "from the kept run (`run_id`, default this tool's last run), without running again."
    ),
]
RunId = Annotated[
    str | None,
    Field(
        description="A kept run's id (every reply has one): `page`/`detail` are then read from that run, "
        "and nothing runs again."
    ),
]
TimeoutSeconds = Annotated[
    float | None, Field(description="Time limit of the call in seconds (up to 86400); default: the profile's.")
]


@dataclass
class Site:
    """One workspace's server, as the tool registrations see it."""

    server: MCPServer
    ws: Workspace
    profiles: dict[str, Profile]
    fallback: str
    invoke: Invoke

    def profile_for(self, name: str | None) -> Profile:
        return pick_profile(self.profiles, name or self.fallback)

    async def on_workspace(
        self, body: WorkspaceTool, profile: str | None, *, progress: Progress, **arguments: Any
    ) -> dict[str, Any]:
        """`body` on this workspace; the profile is looked up here, inside the call, so that an unknown
        name is a structured error like any other bad argument. The reply says where the tool's files are."""
        result = await body(self.ws, self.profile_for(profile), progress=progress, **arguments)
        result.setdefault("files_dir", where_files_go(self.ws))
        return result
