"""The embedded demo: a small real repository and a scripted agent (see `harness demo`)."""
