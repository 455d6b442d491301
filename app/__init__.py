"""credit-score-mlops: training, registry and serving for credit-risk models.

Importing this package does no work: no directories, no tracking URI, no logging set-up.
"""

__version__ = "0.1.0"
