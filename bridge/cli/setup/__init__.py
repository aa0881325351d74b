"""``devops-paradise setup``: one command from a checkout to Claude Code talking to your own servers.

``main`` reads the command line and does the small actions; ``machine`` and ``steps`` are the numbered steps;
``context`` is what one run knows and how it talks; ``claude`` registers the servers with Claude Code (also
used by ``mcp-config --claude``). Nothing is imported here, so ``bridge.cli.setup.claude`` loads alone."""
