"""MkDocs hook: the blog plugin reads every post's front matter with LibYAML.

Why: on every build, dirty rebuilds under `studylog serve` included, mkdocs-material's blog
plugin reads the front matter of every post with PyYAML's pure-Python `SafeLoader`; at 3650
posts that is about a third of a dirty rebuild (bench/README.md). PyYAML's `CSafeLoader` is
the same loader (same resolver and constructors) over the C LibYAML parser.

What: point the plugin's module at `CSafeLoader` when PyYAML has it; otherwise, or where the
plugin no longer has that name, do nothing. Loaded by MkDocs through `hooks:`, never
imported by studylog; tests/test_engine_hooks.py checks that a build with the hooks is
byte-identical to one without.
"""

from __future__ import annotations

import yaml

try:
    from material.plugins.blog import structure
except ImportError:  # another theme: nothing to speed up
    structure = None

if structure is not None and getattr(structure, "SafeLoader", None) is yaml.SafeLoader and hasattr(yaml, "CSafeLoader"):
    structure.SafeLoader = yaml.CSafeLoader
