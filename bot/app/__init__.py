"""The application: the manager facade that wires everything, the scheduler, the CLI, the monitor
and the one ``/metrics`` + ``/healthz`` handler."""
