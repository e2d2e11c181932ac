"""Pushes from recruitment systems: received, validated and stored by the service's HTTP server,
then delivered through field maps by ``worker.pipelines.inbound``."""
