"""The MCP protocol as the bridge speaks it: revisions and header names, the one MCP client (probes,
readiness, ``check``), an instance proving its key, the images' health check, Claude Code's configuration.
The reverse proxy's request path is bridge.proxy, which uses this package (never the other way)."""
