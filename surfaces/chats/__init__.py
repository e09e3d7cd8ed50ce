"""Chat sends over HTTP, SSE and WebSocket: parse a send into a turn, format its events."""
