"""The MCP reverse proxy's hot path: a client's request to its instance and back (the protocol and the
bridge's own MCP client stay in bridge.mcp)."""
