"""pytest fixtures for a local fake platform server (to be built)."""
