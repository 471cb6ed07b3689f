"""The test-integrity gate (stage `integrity`): the change against the base commit B must not weaken the
tests that prove it. Each finding names its kind, the file and the test node id:

    test-removed          a test collected at B (in a file the change touches or deletes) is no longer
    test-skipped          a test gains a skip/skipif/xfail mark, a skip or xfail call, an early return, a
                          condition around its definition or its checks; or it passed at B and is now
                          skipped or xfailed
    assertions-removed    a test ends with fewer checks than at B (assert, pytest.raises/warns/approx,
                          numpy.testing and torch.testing asserts, unittest's self.assert*)
    assertions-weakened   a test gains a check that cannot fail (`assert True`, `assert x == x`, ...)
    expected-values-changed  a test's check keeps its form with other constants, or the test does
    known-failures-added  the known-failures file gains an entry
    selection-narrowed    pytest's configuration or harness.yaml's pytest arguments, pytest.command or
                          PYTEST_ADDOPTS in pytest.env gain a filter (-k, -m, --deselect, --ignore, a path,
                          -x, ...), or a conftest.py gains collect_ignore entries or a collection/run hook
    gates-weakened        harness.yaml switches a gate off or loosens it (collect, regression, full suite,
                          integrity, mutation, lint, holdout), loads or disables a plugin, starts pytest
                          through another program, sets a variable pytest reads (PYTEST_PLUGINS, PYTHONPATH,
                          ...) or no longer parses; judged against B's harness.yaml, which the whole proof
                          runs under (harness.config.judging), so the stage runs whenever B had it on
    test-machinery-changed  what runs inside pytest or how it reads its settings changes: `pytest_plugins`
                          bound, a pytest11 entry point, a pytest setting that changes how tests run, a
                          configuration file that takes over from another, a hook pytest ran with that
                          the change brings or edits
    code-under-test-replaced  a conftest.py, a test-side helper, or a test module's module-level code or
                          autouse fixtures put something else in place of the project's own code
    runner-detected       a changed line of product code asks whether a test runs it
    always-equal          a changed line of product code makes a value equal to anything (an `__eq__`
                          that ignores its argument, `mock.ANY`)

    test_facts      what a test module's source says about each test (pure, from `ast`)
    check_values    what a test's checks compare: checks that cannot fail, constants changed (pure)
    pytest_options  what pytest options do, read as pytest reads them (pure)
    pytest_config   pytest's configuration files as pytest reads them; what a change to a setting does (pure)
    plugin_scan     `pytest_plugins` and pytest11 entry points gained (pure)
    replacement_scan  test-side code that replaces the project's objects, however spelt (pure)
    product_scan    runner detection and always-equal values on the changed lines of product code (pure)
    hook_scan       the hooks pytest ran with (from the collect stage's runs) that the change brings (pure)
    config_scan     selection-narrowed, known-failures-added and gates-weakened, from the changed files (pure)
    gate            the stage: reads both versions, runs the touched test files at B and with the change,
                    writes gates/integrity.json

The kinds are the ledger's INTEGRITY_KINDS; an item lifts named kinds with `- Allow: kind, kind`.
"""
