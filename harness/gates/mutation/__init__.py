"""Mutation strength on the changed lines (stage `mutation`): mutants of the changed code run against the
item's new tests; too many survivors and the tests are too weak to prove the change.

    operators   which rewrites are made (cosmic-ray's operators, a chosen few, and two of ours)
    mutants     where they apply on the changed lines, which are chosen, the mutated sources
    gate        the stage: copies of the tree, the mutants in parallel, the score, gates/mutation.json

On for an item with `- Mutation: required`, or for every item with `gates.mutation.enabled: true`.
"""
