"""The pure core: no AWS calls. What a task definition holds (taskdef), what reaches the host (hostroot), the
verdict and exemptions (policy, exemptions), events parsed, results and the text of notices. Everything above
builds on it."""
