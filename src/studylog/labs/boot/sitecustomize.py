"""Started by every Python process of a lab run (studylog.labs.tracking puts this folder first on
PYTHONPATH): record what the process reads. A process that cannot import studylog (another
interpreter) runs untracked rather than failing."""

try:
    from studylog.labs.tracking import watch_from_environment
except ImportError:
    pass
else:
    watch_from_environment()
