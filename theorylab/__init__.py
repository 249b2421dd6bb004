"""theorylab: reproducing the theory of machine-learning papers on small examples."""

__version__ = "0.1.0"
