"""Local stand-ins for the servers phi4bot talks to, reused by tests and benchmarks."""
