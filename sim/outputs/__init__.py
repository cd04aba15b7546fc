"""What experiments leave behind: deterministic files and manifests (`files.py`,
`folders.py`), summaries (`results.py`), figures and reports (`figures.py`,
`report.py`, `validation_report.py`), and reading them back (`verify.py`,
`compare.py`, `discover.py`)."""
