"""studylog: a learning log and executable labs, rendered into a static site.

Labs import `record`, `record_median` and `record_environment` from here; nothing else is imported, so a lab's dependency on
studylog is this file and record.py only.
"""

from studylog.record import record, record_environment, record_median

__version__ = "0.1.0"
__all__ = ["record", "record_environment", "record_median"]
