//! The end-of-run report: a summary table for people (stdout) and a JSON document for scripts
//! (`--json FILE`).
