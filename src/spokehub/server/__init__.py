"""The HTTP server: REST API, webhooks and the dashboard (extra ``spokehub[server]``)."""
