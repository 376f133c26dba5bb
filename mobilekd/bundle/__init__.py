"""The app developer's bundle: manifest (manifest.py + manifest.schema.json), golden test vectors
(golden.py + golden.schema.json), MODEL_CARD.md (model_card.py), a safe zip (archive.py), and the
checks behind `mobilekd bundle verify` / `inspect` (verify.py, inspect.py). Heavy runtimes are
imported inside functions, so importing this package stays cheap."""
