"""End-to-end tests: the real `phi4bot run` process against local fakes."""
