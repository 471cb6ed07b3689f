"""`harness report`: the ledger review as a static web site (docs/specs/report.md).

    gather          everything read from the repository: ledger, evidence folders, commits, diffs, selectors
    item_pages      the item pages in chunks, in this process or spread over forked worker processes
    evidence_files  one evidence folder: inside the repository or not, its checksums, its files, attempt.json
    model           the index and item pages as frozen records (pure)
    selector_model  the selectors page: results per run, regressions (pure)
    charts          the attempts timeline as SVG geometry (pure)
    text            untrusted prose and diffs to escaped HTML (markdown-it-py, pygments)
    paths           the site's layout and safe relative links into the repository
    build           gather -> item_pages, index and selectors pages (templates in
                    harness/templates/report/) -> publish
    publish         the staging folder that replaces the site whole; which output folders are refused
    serve           `--serve`: loopback HTTP, only the site and the files it links, rebuilt on change
"""
