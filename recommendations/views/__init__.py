"""The widget-facing HTTP API, one module per endpoint family (widget: GET /api/v1/recommendations)."""
