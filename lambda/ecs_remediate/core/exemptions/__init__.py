"""Exemptions the registrant cannot grant: the registry's items (records), whether a claim holds (judgement), whether
an approval covers a revision (scope), and the verdict on a revision from every source (evaluate)."""
