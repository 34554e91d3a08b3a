"""Use cases: the learning engine (train, fine-tune, gate, evaluate) and the server's
images, references, analyses, corrections, model versions, jobs, DICOM sync and export.

Each service receives exactly the collaborators it uses (the database, the blob store,
the job queue, the model pool), never the whole runtime; :mod:`medloop.runtime` wires
them. Services reach the ML engine (torch) through :mod:`medloop.ml` lazily, inside
functions.
"""
