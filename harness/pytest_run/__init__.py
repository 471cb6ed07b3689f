"""Running pytest on any repository: one subprocess per run (`runner`), the harness's own recorder plugin
loaded into it (`recorder`), its events read back (`events`) and folded into one result per test
(`results`), and how many xdist workers the full suite gets (`xdist_jobs`)."""
