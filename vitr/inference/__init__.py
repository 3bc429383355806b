"""Running a model over many videos: the device's inference plan, feature extraction into the cache, evaluation.

Sits above `vitr.model` (what a model is) and below indexing and training (what they do with it).
"""
