"""The ground floor: what training and serving both build on, and nothing else of ours.

* :mod:`app.core.schema`   the dataset schema (``DatasetSchema``) that drives everything
* :mod:`app.core.validate` rows checked against a schema (training data and batch-scoring input)
* :mod:`app.core.features` the feature transformer (``CreditFeatures``) shared by training and serving
* :mod:`app.core.labels`   probabilities to class labels through the decision threshold
* :mod:`app.core.bundle`   the model bundle format and its verification
* :mod:`app.core.profile`  the reference profile of training data a bundle carries for drift monitoring
* :mod:`app.core.fairness` approval/TPR/FPR rates across protected groups (training and monitor reports)

No module here imports another ``app`` package (the import-linter contract in ``.importlinter`` checks it), so
the serving image, the training job and the monitor all stand on the same floor without pulling each other in.
"""
