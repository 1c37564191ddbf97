"""Runtimes: code that loads one kind of model and answers requests.

`base` defines the `Runtime` interface (with `RuntimeConfig` and `Capabilities`);
`registry` finds runtimes by framework name (built-ins and the `podium.runtimes`
entry-point group). This package imports nothing itself, and `registry.known_runtimes()`
imports no runtime module, so listing frameworks never loads numpy, scikit-learn or torch.
"""
