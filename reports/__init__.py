"""reports: self-contained HTML reports of datasets and evaluations."""
