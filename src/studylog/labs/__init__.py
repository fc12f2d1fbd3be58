"""The labs pipeline: a lab's source, its run key, execution (with read tracking), the
store of its runs, the environment they ran in, and the Jupyter twins."""
