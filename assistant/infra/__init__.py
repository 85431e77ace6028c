"""Infrastructure the core uses: supervised processes, entry points, Prometheus metrics, background tasks."""
