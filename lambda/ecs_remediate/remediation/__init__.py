"""The remediation path shared by the function and the sweep: describe, judge, copy once, prove the copy
ours, keep the family's latest, notify; then (opt-in) roll services onto the copy and retire the source."""
