"""Interoperability: other tools' formats in and out, ontology versions and label migrations.

One module per format, all speaking one intermediate shape (:class:`records.Record`),
the way Label Studio's converter has one internal representation and a writer per format:

    records.py      the shared record shape; reading a run's records; storing imported
                    records as a gold set or as human decisions (one transaction)
    labelstudio.py  Label Studio tasks + predictions, labeling config XML, JSON import
    hf.py           Hugging Face ``datasets`` (save_to_disk / Parquet, ClassLabel features)
    entities.py     spaCy DocBin export/import and CoNLL/BIO export (alignment report)
    versions.py     stored ontology versions and ``ontology diff``
    migrate.py      label migrations (rename / merge / split / remove), audited
    snapshot.py     versioned dataset snapshots with a manifest

Heavy libraries (``datasets``, ``spacy``, ``label_studio_sdk``) are imported only inside
the module that needs them, and only when called.
"""
