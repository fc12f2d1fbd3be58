"""studylog: a learning log and executable labs, rendered into a static site."""

__version__ = "0.1.0"
