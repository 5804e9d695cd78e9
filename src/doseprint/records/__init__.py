"""records stage of doseprint: the tamper-evident batch record of every print.

One module per concept, each importing only those listed before it:

* :mod:`~doseprint.records.states` -- event kinds, statuses, the transitions, derive_status
* :mod:`~doseprint.records.values` -- Event, Signature, Record, RecordSummary (frozen)
* :mod:`~doseprint.records.chain` -- canonical JSON, content and event hashes, verify_record
* :mod:`~doseprint.records.signing` -- Ed25519 keys sealed by passwords, Signer, checks
* :mod:`~doseprint.records.policy` -- the site policy: roles per signed act, lock-out
* :mod:`~doseprint.records.liveness` -- is the process that started a print still running
* :mod:`~doseprint.records.location` -- the default store, ``--db`` URLs, password masking
* :mod:`~doseprint.records.dialect` -- what differs between SQLite and PostgreSQL
* :mod:`~doseprint.records.site` -- the site chain: people, lots, approvals, sealed heads
* :mod:`~doseprint.records.people` -- accounts, Argon2 passwords, log-ins, who may sign what
* :mod:`~doseprint.records.content` -- a record content's tablets and materials, read once
* :mod:`~doseprint.records.lots` -- material lots received and blocked; checked at release
* :mod:`~doseprint.records.approvals` -- formulation file versions approved for dispensing
* :mod:`~doseprint.records.prescriptions` -- one prescription, one releasable batch:
  reprints need a reason and supersede the earlier records
* :mod:`~doseprint.records.store` -- RecordStore, open_store, the one row-to-event parser
* :mod:`~doseprint.records.accounts` -- sign in; add, change, disable users; set the policy
* :mod:`~doseprint.records.anchor` -- the heads signed by the site key, kept elsewhere
* :mod:`~doseprint.records.qc` -- Ph. Eur. 2.9.5 uniformity of mass, estimated doses
* :mod:`~doseprint.records.batch_report` -- the HTML batch report with a dispensing label
  (not :mod:`doseprint.report`, the preview of a job before it is printed)
* :mod:`~doseprint.records.batch_report_pdf` -- the same report as a PDF (fpdf2)
* :mod:`~doseprint.records.export` -- the lossless JSON form and ``record export`` files
"""
