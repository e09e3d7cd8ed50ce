"""``python -m tools.mcp.testing``: run the test server (options in ``serving``)."""

from tools.mcp.testing.serving import main

main()
